import type { RequestHandler } from 'express';
import { HandshakeError } from '../gateway/gateway-errors';
import { apiError, type ApiErrorBody } from './api-error';
import { closeLingering } from './lingering-close';
import type { AuthFailureLimiter } from './rate-limit';

/** The 429 of an address past `api.authFailures`, on HTTP and socket.io alike. */
export function authFailuresError(retryAfterMs: number): ApiErrorBody {
  return apiError(429, `too many failed authentications from this address (api.authFailures); retry in ${retryAfterMs} ms`, { retryAfterMs });
}

/** The refused socket.io handshake of an address past `api.authFailures`. */
export function authFailuresHandshakeError(retryAfterMs: number): HandshakeError {
  const err = new HandshakeError(429, authFailuresError(retryAfterMs).message);
  err.data.retryAfterMs = retryAfterMs;
  return err;
}

/**
 * Express middleware in front of every `/v1` route (the bearer-token API and `/v1/inbound`): an address past its
 * failed authentications gets 429 with `Retry-After` before anything else happens (no body kept, no token compared,
 * the connection closed), and every 401 answered from here on counts as one failure of its address. Counting the
 * answers, not the checks, covers each way a route authenticates.
 */
export function authFailureGate(limiter: AuthFailureLimiter, onRefused: (origin: 'api' | 'inbound') => void): RequestHandler {
  return (req, res, next) => {
    const address = req.socket.remoteAddress ?? '';
    const decision = limiter.check(address);
    if (!decision.ok) {
      onRefused(req.path.startsWith('/inbound/') ? 'inbound' : 'api');
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
      // The connection is closed after the answer, lingering: a body still arriving is discarded, so a caller still
      // sending one reads its 429 rather than a reset.
      closeLingering(req, res);
      res.status(429).json(authFailuresError(decision.retryAfterMs));
      return;
    }
    res.on('finish', () => {
      if (res.statusCode === 401) limiter.fail(address);
    });
    next();
  };
}
