import type { ClientRequest, IncomingMessage } from 'node:http';
import { NodeWebSocket } from 'engine.io-client';
import type WebSocket from 'ws';
import { ConnectorError, describeError } from '../common/errors';
import { redactText } from '../common/redact';

/** Bytes of a refused handshake's body kept for classification and the message. */
const MAX_REFUSAL_BODY = 2048;
/** How long the body of a refused handshake is waited for. */
const REFUSAL_BODY_WAIT_MS = 2000;

/** A handshake the server answered with something other than 101: its status and the start of its body. */
export class HandshakeRefusal {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {}
}

/** Reads at most MAX_REFUSAL_BODY bytes of a refused handshake's answer; what does not come in time is left out. */
export function readRefusal(res: IncomingMessage): Promise<HandshakeRefusal> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(new HandshakeRefusal(res.statusCode ?? 0, Buffer.concat(chunks).subarray(0, MAX_REFUSAL_BODY).toString('utf8')));
      res.destroy();
    };
    const timer = setTimeout(done, REFUSAL_BODY_WAIT_MS);
    timer.unref?.();
    res.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX_REFUSAL_BODY) done();
    });
    res.once('end', done);
    res.once('error', done);
    res.once('close', done);
  });
}

/**
 * socket.io's Node WebSocket transport, except that a refused upgrade reports its status and body (a
 * HandshakeRefusal as the connect_error's `description`) instead of only "Unexpected server response".
 */
export class RefusalAwareWebSocket extends NodeWebSocket {
  override createSocket(uri: string, protocols: string | string[] | undefined, opts: Record<string, unknown>): WebSocket {
    // The payload cap of the connector's `transportOptions.websocket.maxPayload` (engine.io-client passes no such option on).
    const maxPayload = (this.opts as { maxPayload?: number }).maxPayload;
    const ws = super.createSocket(uri, protocols, maxPayload ? { ...opts, maxPayload } : opts) as WebSocket;
    ws.on('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
      void readRefusal(res).then((refusal) => {
        // Closes the transport, which aborts the handshake; a transport already closed (timeout) ignores it.
        this.onError('websocket error', refusal);
        if (ws.readyState === ws.CONNECTING) {
          ws.onerror = () => undefined;
          ws.terminate();
        }
      });
    });
    return ws;
  }
}

/** How one upstream's refusals read (socket.io and raw WebSocket connectors alike). */
export interface ConnectErrorRules {
  /** The credential, as messages name it (`API key`, `bearer`, `token`). */
  credential: string;
  /** Statuses of a refused upgrade that mean the credential was refused. */
  authStatuses: readonly number[];
  /** True for a refusal that says the upstream is not ready rather than the credential wrong. */
  notReady?(refusal: HandshakeRefusal): boolean;
  /** socket.io: what an unknown namespace means for this upstream. */
  invalidNamespace?: string;
  /** Statuses that say the URL is wrong (e.g. 404): retried at the slowest pace rather than hammered. */
  wrongUrlStatuses?: readonly number[];
}

type SocketIoError = Error & { description?: unknown; type?: unknown; data?: unknown };

/**
 * Maps a socket.io `connect_error` to a ConnectorError by its structure, never by the library's message text:
 * - socket.io v4: an error with an own `data` is a CONNECT_ERROR packet (the namespace or its middleware refused us;
 *   a numeric `code`/`status` in `data` of 429 or 5xx says not ready); a `TransportError` carries in `description`
 *   the refused upgrade (a HandshakeRefusal from RefusalAwareWebSocket), the HTTP status of a refused polling
 *   request (a number; `context` is the request), or the network error, whose errno `code` is kept.
 * - socket.io v2 (Smartsupp) has no CONNECT_ERROR packet and no refusal details: a refused websocket upgrade is a
 *   `TransportError` whose description is the `ws` library's error (no status), and a timeout the bare string
 *   `timeout`. Such errors fall back to a retriable `network` (or `connect_timeout`) failure, never an auth failure;
 *   a refused key shows in Smartsupp's `visitor.connect` ack instead.
 * The only texts compared are socket.io's own fixed ones (`Invalid namespace`, `timeout`).
 */
export function classifyConnectError(err: unknown, rules: ConnectErrorRules): ConnectorError {
  if (err === 'timeout' || (err instanceof Error && err.message === 'timeout' && !isPacketError(err))) return timeoutError(err);
  if (!(err instanceof Error)) return networkError(err);
  const e = err as SocketIoError;
  if (isPacketError(e)) {
    if (e.message === 'Invalid namespace') return new ConnectorError('invalid_namespace', rules.invalidNamespace ?? 'upstream has no such socket.io namespace', { retriable: true, cause: err });
    const status = statusIn(e.data);
    const said = redactText(e.message);
    if (status !== undefined && isNotReadyStatus(status)) return notReady(`upstream refused the connection for now (${status}): ${said}`, err);
    return new ConnectorError('auth_rejected', `upstream refused the ${rules.credential}: ${said}`, { retriable: true, authFailure: true, cause: err });
  }
  if (e.type === 'TransportError') {
    if (e.description instanceof HandshakeRefusal) return refusalError(e.description, rules, err);
    if (typeof e.description === 'number') return refusalError(new HandshakeRefusal(e.description, ''), rules, err);
    return networkError(e.description ?? err, err);
  }
  return networkError(err);
}

/**
 * A refused upgrade (an HTTP answer other than 101) by its status, the same rule for every connector: 429 and 5xx,
 * and what `rules.notReady` recognises, are an upstream not ready yet (normal schedule); `rules.authStatuses` refuse
 * the credential; `rules.wrongUrlStatuses` are retried at the slowest pace; anything else is a retriable refusal.
 */
export function refusalError(refusal: HandshakeRefusal, rules: ConnectErrorRules, cause?: unknown): ConnectorError {
  const body = redactText(refusal.body.trim().slice(0, 200));
  const detail = `HTTP ${refusal.status}${body ? `: ${body}` : ''}`;
  if (isNotReadyStatus(refusal.status) || rules.notReady?.(refusal)) return notReady(`upstream is not ready (${detail})`, cause);
  if (rules.authStatuses.includes(refusal.status)) {
    return new ConnectorError('auth_rejected', `upstream refused the handshake (${detail}): ${rules.credential} rejected`, { retriable: true, authFailure: true, cause });
  }
  const wrongUrl = rules.wrongUrlStatuses?.includes(refusal.status) ?? false;
  return new ConnectorError('handshake_refused', `upstream refused the handshake (${detail})${wrongUrl ? '; check the URL' : ''}`, { retriable: !wrongUrl, cause });
}

/**
 * A connection attempt that failed below HTTP (refused, reset, DNS, TLS), or with nothing more to go on: a retriable
 * `network` failure naming the library's error (its errno `code` when it has no message).
 */
export function networkError(err: unknown, cause: unknown = err): ConnectorError {
  const detail = describeDescription(err) ?? errnoOf(err) ?? describeError(err);
  return new ConnectorError('network', `cannot connect: ${redactText(detail)}`, { retriable: true, cause });
}

function timeoutError(cause: unknown): ConnectorError {
  return new ConnectorError('connect_timeout', 'connection attempt timed out', { retriable: true, cause });
}

function notReady(message: string, cause: unknown): ConnectorError {
  return new ConnectorError('upstream_not_ready', message, { retriable: true, cause });
}

/** socket.io v4's CONNECT_ERROR packet: the error has `data` as an own property (maybe undefined). */
function isPacketError(e: Error): boolean {
  return Object.prototype.hasOwnProperty.call(e, 'data');
}

function isNotReadyStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** A numeric `code` or `status` in a CONNECT_ERROR's data, when the server put one there. */
function statusIn(data: unknown): number | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as { code?: unknown; status?: unknown };
  const v = typeof d.code === 'number' ? d.code : d.status;
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

/** An errno code (`ECONNREFUSED`) on an error or the error it wraps. */
function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; error?: unknown };
  return typeof e.code === 'string' ? e.code : e.error !== undefined ? errnoOf(e.error) : undefined;
}

function describeDescription(d: unknown): string | undefined {
  if (typeof d === 'string') return d;
  if (d instanceof Error) return d.message || undefined;
  if (typeof d === 'object' && d !== null && 'message' in d && typeof d.message === 'string' && d.message) return d.message;
  if (typeof d === 'object' && d !== null && 'error' in d) return describeDescription(d.error);
  return undefined;
}
