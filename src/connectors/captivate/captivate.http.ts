import { CommandError } from '../../common/errors';
import { httpBody, type CaptivateWireEvent } from './captivate.commands';

/**
 * Status policy of Captivate's HTTP API (SDK ≥5 transport). Every row refused the request, so `sent` is false:
 * | status          | code           | retriable | why                                                        |
 * | 429             | rate_limited   | yes       | throttled before acting                                    |
 * | 5xx             | upstream_error | yes       | failed before acting (API Gateway/Lambda errors)           |
 * | 410             | socket_gone    | yes       | the socket_id is stale; the next connection brings a new one |
 * | 401, 403        | auth_rejected  | no        | the key is wrong; retrying will not fix it                 |
 * | other 4xx       | rejected       | no        | the request itself is wrong                                |
 */
export function statusError(status: number, what: string): CommandError {
  const opts = (retriable: boolean) => ({ retriable, sent: false });
  if (status === 429) return new CommandError('rate_limited', `${what}: HTTP 429`, opts(true));
  if (status >= 500) return new CommandError('upstream_error', `${what}: HTTP ${status}`, opts(true));
  if (status === 410) return new CommandError('socket_gone', `${what}: HTTP 410 (socket_id no longer connected)`, opts(true));
  if (status === 401 || status === 403) return new CommandError('auth_rejected', `${what}: HTTP ${status} (API key rejected)`, opts(false));
  return new CommandError('rejected', `${what}: HTTP ${status}`, opts(false));
}

/** Network errors (undici `cause.code`) raised before the request reached the server: it surely did not act. */
const NOT_SENT_ERRNOS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** A fetch that threw: refused/unresolvable = not sent; a timeout or a reset after the request left = ambiguous. */
export function fetchError(err: unknown, what: string): CommandError {
  // Read structurally: fetch's DOMException may come from another realm, where `instanceof Error` is false.
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; cause?: { code?: unknown } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new CommandError('timeout', `${what}: no answer in time (the upstream may have acted)`, { retriable: false, sent: true, cause: err });
  }
  const code = typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  if (code && NOT_SENT_ERRNOS.has(code)) return new CommandError('network', `${what}: ${code}`, { retriable: true, sent: false, cause: err });
  return new CommandError('network', `${what}: connection failed after sending${code ? ` (${code})` : ''}`, { retriable: false, sent: true, cause: err });
}

/** Captivate's HTTP endpoints: `POST /api/custom-channel/sockets/message` and `GET /api/transcript`. */
export class CaptivateHttp {
  private readonly base: string;

  constructor(baseUrl: string, private readonly apiKey: string, private readonly timeoutMs: number) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  /** Posts one event; resolves with the answer's body (JSON or text) on 2xx, else rejects with a CommandError. */
  postEvent(ev: CaptivateWireEvent, socketId: string | undefined): Promise<unknown> {
    return this.request('POST', '/api/custom-channel/sockets/message', `${ev.event_type} over HTTP`, httpBody(ev, socketId));
  }

  /** Reads a conversation's transcript (`{transcript: […]}`). */
  getTranscript(conversationId: string): Promise<unknown> {
    return this.request('GET', `/api/transcript?conversation_id=${encodeURIComponent(conversationId)}`, 'transcript');
  }

  private async request(method: 'GET' | 'POST', path: string, what: string, body?: string): Promise<unknown> {
    const headers: Record<string, string> = { 'x-api-key': this.apiKey, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw fetchError(err, what);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      // The status line arrived; only the body was cut. A 2xx still means the upstream accepted it.
      if (res.ok) return undefined;
      throw fetchError(err, what);
    }
    if (!res.ok) throw statusError(res.status, what);
    if (!(res.headers.get('content-type') ?? '').includes('json')) return text;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
}
