import { CommandError } from './errors';
import { redactText } from './redact';

/**
 * How an outbound COMMAND sent to an upstream's HTTP API failed, in one table for every provider.
 * The question is always "may the upstream have acted?" (docs/commands.md: retry only when it surely did not).
 *
 * | outcome                                   | code                 | retriable | sent  |
 * | HTTP 3xx (redirects are never followed)    | upstream_rejected    | no        | false | the configured URL is not the API's
 * | HTTP 401, 403                             | auth_rejected        | no        | false | the key is wrong
 * | HTTP 429, 500, 502, 503, 504              | upstream_unavailable | yes       | false | refused or failed before acting
 * | any other non-2xx                         | upstream_rejected    | no        | false | the request itself is wrong
 * | network error in NOT_SENT_ERRNOS          | network              | yes       | false | never reached the server
 * | timeout / abort while waiting             | timeout              | no        | true  | ambiguous: resolve through the echo
 * | any other failure after the request left  | no_answer            | no        | true  | ambiguous (reset mid-request)
 *
 * Providers put their own rows in front where the upstream gives a status a special meaning
 * (Captivate: 410 = stale socket_id). Webhook delivery to our subscribers has its own policy
 * (src/sinks/webhook/webhook.policy.ts): there every failure is retried, as the receiver dedupes.
 */
export const RETRYABLE_UPSTREAM_STATUS: ReadonlySet<number> = new Set([
  429, // rate limited
  500, // internal error
  502, // bad gateway (the proxy could not reach the backend)
  503, // unavailable / overloaded
  504, // gateway timeout at the proxy
]);

/** Errnos raised before a request could leave: the upstream surely did not act. */
export const NOT_SENT_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNREFUSED', // nothing listens
  'ENOTFOUND', // DNS: no such host
  'EAI_AGAIN', // DNS: temporary failure
  'EHOSTUNREACH', // no route to host
  'ENETUNREACH', // no route to network
  'UND_ERR_CONNECT_TIMEOUT', // undici: TCP connect timed out
]);

/**
 * `fetch` for every upstream REST call: redirects are never followed, since each request carries the upstream's
 * credentials (api key headers, tokens in the URL) and a redirect would hand them to wherever `Location` points.
 * A 3xx comes back as the answer, and the callers' non-2xx path turns it into an error (`describeStatus`).
 */
export function upstreamFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, redirect: 'manual' });
}

/** `HTTP <status>`, saying for a 3xx that the redirect was not followed. */
export function describeStatus(status: number): string {
  return status >= 300 && status < 400
    ? `HTTP ${status} (a redirect, not followed: upstream calls carry credentials; configure the URL the upstream answers at)`
    : `HTTP ${status}`;
}

/** The CommandError for a non-2xx answer; `body` (optional) is quoted, redacted and shortened. */
export function upstreamStatusError(status: number, what: string, body = ''): CommandError {
  const detail = body ? `: ${redactText(body).slice(0, 200)}` : '';
  const message = `${what}: ${describeStatus(status)}${detail}`;
  if (status === 401 || status === 403) return new CommandError('auth_rejected', message, { retriable: false, sent: false });
  if (RETRYABLE_UPSTREAM_STATUS.has(status)) return new CommandError('upstream_unavailable', message, { retriable: true, sent: false });
  return new CommandError('upstream_rejected', message, { retriable: false, sent: false });
}

/** The CommandError for a request that threw (fetch or undici). */
export function upstreamRequestError(err: unknown, what: string): CommandError {
  // Read structurally: fetch's DOMException may come from another realm, where `instanceof Error` is false.
  const name = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new CommandError('timeout', `${what}: no answer in time (the upstream may have acted)`, { retriable: false, sent: true, cause: err });
  }
  const errno = errnoOf(err);
  if (errno && NOT_SENT_ERRNOS.has(errno)) return new CommandError('network', `${what}: unreachable (${errno})`, { retriable: true, sent: false, cause: err });
  return new CommandError('no_answer', `${what}: connection failed after sending${errno ? ` (${errno})` : ''}; the upstream may have acted`, { retriable: false, sent: true, cause: err });
}

/** The first `code` along an error's `cause` chain (fetch wraps undici's errors once or twice). */
export function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
