import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ChannelRequestError } from '../channels/channel-mode';
import { apiError } from '../common/api-error';
import { closeLingering } from '../common/lingering-close';
import type { InboundAuthConfig } from '../config/config.schema';
import type { Metrics } from '../health/metrics';
import { needsBody, verifyBeforeBody, verifyInbound } from './inbound.auth';
import type { InboundReceiver } from './inbound.receiver';
import { channelIdOf, InboundBodyError, readBody } from './inbound.body';

/** Metric label for posts to channel ids that do not exist (any text could be posted; labels stay bounded). */
export const UNKNOWN_CHANNEL_LABEL = '(unknown)';

/** `Retry-After` of a 503 for a channel with `inbound.maxInFlight` bodies being read (seconds). */
export const INBOUND_RETRY_AFTER_S = 1;

/** What the gate needs: which channels take posts and how they authenticate, metrics and a logger. */
export interface InboundGateDeps {
  inbound: Pick<InboundReceiver, 'inboundAuth'>;
  metrics: Pick<Metrics, 'inboundRequests' | 'inboundInFlight' | 'refused'>;
  log: Logger;
}

/** Bodies the gate read and authenticated, by request: the controller takes nothing else. */
const admitted = new WeakMap<IncomingMessage, Buffer>();

/** The raw body of a post the gate admitted, or undefined when it did not pass the gate. */
export function admittedBody(req: IncomingMessage): Buffer | undefined {
  return admitted.get(req);
}

/**
 * Everything a `POST /v1/inbound/<id>` goes through before its body is used, cheapest refusal first, so an unknown
 * caller costs no memory: the channel (404, 409), then what the headers alone can prove (a token whole, an HMAC
 * signature's presence: 401), without reading the body; then a slot among the channel's `inbound.maxInFlight` bodies
 * being read (503 with Retry-After); then the body, at most `inbound.maxBodyBytes` (413) and, for HMAC, its
 * signature (401). A post refused before its body was read whole is answered with `Connection: close` and a lingering
 * close: what the caller still sends is read and discarded for a bounded while, so nothing of it is kept and the caller
 * reads its answer rather than a reset.
 */
export function inboundGate(deps: InboundGateDeps): RequestHandler {
  const inFlight = new Map<string, number>();
  const setInFlight = (channelId: string, n: number) => {
    if (n > 0) inFlight.set(channelId, n);
    else inFlight.delete(channelId);
    deps.metrics.inboundInFlight.set({ channel: channelId }, n);
  };

  return (req, res, next) => {
    if (req.method !== 'POST') return next();
    const channelId = channelIdOf(req.path);
    const count = (outcome: string, channel = channelId) => deps.metrics.inboundRequests.inc({ channel, outcome });

    let auth: InboundAuthConfig;
    try {
      auth = deps.inbound.inboundAuth(channelId);
    } catch (err) {
      if (!(err instanceof ChannelRequestError)) return next(err);
      const known = err.code !== 'unknown_channel';
      count(known ? 'refused' : 'unknown_channel', known ? channelId : UNKNOWN_CHANNEL_LABEL);
      return refuse(req, res, known ? 409 : 404, err.message);
    }
    const unauthorized = (reason: string) => {
      count('unauthorized');
      deps.log.warn({ channel: channelId, reason }, 'inbound post refused: not authenticated');
      refuse(req, res, 401, reason);
    };

    const pre = verifyBeforeBody(auth, req.headers);
    if (!pre.ok) return unauthorized(pre.reason);

    const used = inFlight.get(channelId) ?? 0;
    if (used >= auth.maxInFlight) {
      count('busy');
      deps.metrics.refused.inc({ origin: 'inbound', reason: 'in_flight' });
      res.setHeader('retry-after', String(INBOUND_RETRY_AFTER_S));
      return refuse(req, res, 503, `channel ${channelId} is reading ${used} inbound posts already (channels[].inbound.maxInFlight); retry in ${INBOUND_RETRY_AFTER_S} s`);
    }
    setInFlight(channelId, used + 1);
    // 'close' comes once the answer is written or the caller went away, whichever way the post ended.
    res.once('close', () => setInFlight(channelId, (inFlight.get(channelId) ?? 1) - 1));

    readBody(req, auth.maxBodyBytes).then((raw) => {
      if (needsBody(auth)) {
        const check = verifyInbound(auth, req.headers, raw);
        if (!check.ok) return unauthorized(check.reason);
      }
      admitted.set(req, raw);
      // body-parser's own mark of a body already read: the API's JSON parser behind this leaves it alone.
      (req as Request & { _body?: boolean })._body = true;
      next();
    }, (err: unknown) => {
      if (!(err instanceof InboundBodyError)) return next(err);
      if (err.status === 413) {
        count('too_large');
        deps.metrics.refused.inc({ origin: 'inbound', reason: 'too_large' });
      } else {
        count('unreadable');
      }
      // A caller that went away mid-body gets no answer.
      if (!req.socket.destroyed) refuse(req, res, err.status, err.message);
    });
  };
}

/**
 * Answers an error in the API's JSON shape, written straight to the socket (a flood of refusals costs no more than
 * it must); a body not read (whole) is discarded and the connection closed after, lingering.
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  if (!req.complete) closeLingering(req, res);
  const body = JSON.stringify(apiError(status, message));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
