import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

/**
 * An incoming `x-request-id` the bridge adopts: up to 128 letters, digits and `._:-` (UUIDs, ULIDs, W3C trace ids,
 * a proxy's ids). Anything else (too long, spaces, quotes, control characters) is replaced by a generated UUID, so a
 * client cannot put arbitrary text into the log.
 */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Probe and scrape routes, logged at debug: a kubelet and Prometheus call them every few seconds. */
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** The request id an incoming `x-request-id` header gives, or a new one. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

/**
 * Express middleware that writes one access log line per HTTP request once its response is finished or the
 * connection closed (docs/operations.md#logs): method, path without the query string (inbound tokens and signatures
 * never reach the log from there; the logger's redaction covers the rest), status, duration in ms, bytes sent
 * (headers included), request id and remote address. The request id is echoed as the `x-request-id` response header.
 */
export function accessLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const requestId = requestIdOf(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    const socket = req.socket;
    const writtenBefore = socket.bytesWritten;
    res.once('close', () => {
      const url = req.originalUrl;
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const level = QUIET_PATHS.has(path) ? 'debug' : 'info';
      // Per request on the API's hot paths (commands, inbound posts): nothing is built for a level that is off.
      if (!log.isLevelEnabled(level)) return;
      const fields: Record<string, unknown> = {
        requestId,
        method: req.method,
        path,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        bytes: socket.bytesWritten - writtenBefore,
        remoteAddress: socket.remoteAddress,
      };
      // The client went away before the whole answer was sent.
      if (!res.writableFinished) fields.aborted = true;
      log[level](fields, `${req.method} ${path} ${res.statusCode}`);
    });
    next();
  };
}
