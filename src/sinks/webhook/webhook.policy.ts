import { BridgeError } from '../../common/errors';

/** How an attempt's outcome is counted in metrics (`chatbridge_webhook_failures_total{class}`). */
export type OutcomeClass = '2xx' | '3xx' | '4xx' | '5xx' | 'timeout' | 'network';

/** What the endpoint worker does after an attempt. */
export type Action = 'delivered' | 'retry' | 'dead_letter' | 'disable';

/** One row of the status table. */
interface StatusRule {
  from: number;
  to: number;
  action: Action;
  /** Honour `retry-after` (seconds or HTTP date) instead of the schedule's next delay. */
  retryAfter: boolean;
  /** Counts as an endpoint failure for the circuit breaker. */
  breaker: boolean;
}

/**
 * THE status policy (docs/webhooks.md, Standard Webhooks "delivery semantics"). First matching row wins.
 *
 * | status    | action      | retry-after | breaker | why |
 * |-----------|-------------|-------------|---------|-----|
 * | 2xx       | delivered   | –           | success | the receiver has it |
 * | 410       | disable     | –           | no      | Gone: the receiver asks us to stop; every pending event is dead-lettered, `POST /v1/webhooks/:id/enable` undoes it |
 * | 429       | retry       | yes         | no      | throttled: the receiver is up and says when to come back (not before, see nextDelay) |
 * | 503       | retry       | yes         | yes     | unavailable: down, maybe saying when it is back |
 * | 408       | retry       | no          | yes     | the receiver timed the request out: the same as our own timeout |
 * | 3xx       | dead_letter | –           | no      | redirects are never followed (a signed POST must not land elsewhere); the same URL redirects again, so retrying cannot help: fix the URL, then replay |
 * | other 4xx | dead_letter | –           | no      | the receiver refused this event; retrying sends the same bytes |
 * | 5xx       | retry       | no          | yes     | the receiver failed; it may recover |
 * | other     | retry       | no          | yes     | 1xx as final status or non-standard codes: treated like 5xx |
 */
export const STATUS_POLICY: readonly StatusRule[] = [
  { from: 200, to: 299, action: 'delivered', retryAfter: false, breaker: false },
  { from: 410, to: 410, action: 'disable', retryAfter: false, breaker: false },
  { from: 429, to: 429, action: 'retry', retryAfter: true, breaker: false },
  { from: 503, to: 503, action: 'retry', retryAfter: true, breaker: true },
  { from: 408, to: 408, action: 'retry', retryAfter: false, breaker: true },
  { from: 300, to: 399, action: 'dead_letter', retryAfter: false, breaker: false },
  { from: 400, to: 499, action: 'dead_letter', retryAfter: false, breaker: false },
  { from: 500, to: 599, action: 'retry', retryAfter: false, breaker: true },
  { from: 0, to: 999, action: 'retry', retryAfter: false, breaker: true },
];

/**
 * Errors without a response, by `code` (Node errno, undici `UND_ERR_*`, or our own `attempt_timeout`).
 * Every one of them is retried on the schedule and counts for the breaker, except where it says `dead_letter`
 * (the request itself cannot be sent; trying again sends the same thing). Codes not listed: `network`, retried.
 */
export const ERROR_POLICY: Readonly<Record<string, { class: 'timeout' | 'network'; action: 'retry' | 'dead_letter' }>> = {
  attempt_timeout: { class: 'timeout', action: 'retry' }, // timeoutMs elapsed (connect + send + response headers)
  ETIMEDOUT: { class: 'timeout', action: 'retry' }, // TCP-level timeout
  UND_ERR_CONNECT_TIMEOUT: { class: 'timeout', action: 'retry' },
  UND_ERR_HEADERS_TIMEOUT: { class: 'timeout', action: 'retry' },
  UND_ERR_BODY_TIMEOUT: { class: 'timeout', action: 'retry' },
  ECONNREFUSED: { class: 'network', action: 'retry' }, // nothing listens: receiver down or redeploying
  ECONNRESET: { class: 'network', action: 'retry' }, // dropped mid-request (proxy restart, idle keep-alive closed)
  EPIPE: { class: 'network', action: 'retry' },
  ECONNABORTED: { class: 'network', action: 'retry' },
  EHOSTUNREACH: { class: 'network', action: 'retry' },
  ENETUNREACH: { class: 'network', action: 'retry' },
  EHOSTDOWN: { class: 'network', action: 'retry' },
  ENETDOWN: { class: 'network', action: 'retry' },
  EAI_AGAIN: { class: 'network', action: 'retry' }, // DNS temporarily failing
  ENOTFOUND: { class: 'network', action: 'retry' }, // DNS: no such name (yet: a Service being created)
  UND_ERR_SOCKET: { class: 'network', action: 'retry' }, // "other side closed"
  UND_ERR_CLOSED: { class: 'network', action: 'retry' },
  CERT_HAS_EXPIRED: { class: 'network', action: 'retry' }, // TLS: the receiver must fix it; retrying lets it recover
  DEPTH_ZERO_SELF_SIGNED_CERT: { class: 'network', action: 'retry' },
  ERR_TLS_CERT_ALTNAME_INVALID: { class: 'network', action: 'retry' },
  UND_ERR_INVALID_ARG: { class: 'network', action: 'dead_letter' }, // our request is malformed: the same again would fail
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: { class: 'network', action: 'dead_letter' },
};

/** Characters of the response body kept in errors and dead letters. */
export const EXCERPT_CHARS = 512;

/** One failed attempt: what happened and what to do. `retriable` = try again on the schedule. */
export class WebhookAttemptError extends BridgeError {
  /** Metrics class. */
  readonly outcome: Exclude<OutcomeClass, '2xx'>;
  /** `retry`, `dead_letter` or `disable`. */
  readonly action: Exclude<Action, 'delivered'>;
  /** HTTP status, when there was a response. */
  readonly status?: number;
  /** The receiver's `retry-after`, in ms, when the table honours it. */
  readonly retryAfterMs?: number;
  /** True when the failure says the endpoint is unhealthy (counts for the circuit breaker). */
  readonly opensBreaker: boolean;

  constructor(code: string, message: string, opts: { outcome: Exclude<OutcomeClass, '2xx'>; action: Exclude<Action, 'delivered'>; status?: number; retryAfterMs?: number; opensBreaker: boolean; cause?: unknown }) {
    super(code, message, { retriable: opts.action === 'retry', cause: opts.cause });
    this.name = 'WebhookAttemptError';
    this.outcome = opts.outcome;
    this.action = opts.action;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.opensBreaker = opts.opensBreaker;
  }
}

/** What the policy needs from a response. */
export interface ResponseFacts {
  status: number;
  retryAfter?: string;
  location?: string;
  /** The start of the body (non-2xx only). */
  excerpt?: string;
}

/** undefined for a delivery; otherwise the failure with its action (per STATUS_POLICY). */
export function classifyResponse(res: ResponseFacts, now: number = Date.now()): WebhookAttemptError | undefined {
  const rule = STATUS_POLICY.find((r) => res.status >= r.from && res.status <= r.to) ?? STATUS_POLICY[STATUS_POLICY.length - 1];
  if (rule.action === 'delivered') return undefined;
  const outcome: Exclude<OutcomeClass, '2xx'> = res.status >= 300 && res.status < 400 ? '3xx' : res.status >= 400 && res.status < 500 ? '4xx' : '5xx';
  const retryAfterMs = rule.retryAfter ? parseRetryAfter(res.retryAfter, now) : undefined;
  const parts = [`HTTP ${res.status}`];
  if (outcome === '3xx') parts.push(`redirect${res.location ? ` to ${stripQuery(res.location)}` : ''} not followed`);
  const excerpt = res.excerpt?.trim().slice(0, EXCERPT_CHARS);
  if (excerpt) parts.push(excerpt);
  return new WebhookAttemptError(`http_${res.status}`, parts.join(': '), { outcome, action: rule.action, status: res.status, retryAfterMs, opensBreaker: rule.breaker });
}

/** The failure of an attempt that got no response (per ERROR_POLICY; unknown codes are retried as `network`). */
export function classifyError(err: unknown): WebhookAttemptError {
  const code = errorCode(err) ?? 'network_error';
  const row = ERROR_POLICY[code] ?? { class: 'network', action: 'retry' };
  const detail = err instanceof Error && err.message ? err.message : code;
  return new WebhookAttemptError(code, `${row.class === 'timeout' ? 'timeout' : 'network error'} (${code}): ${detail}`, { outcome: row.class, action: row.action, opensBreaker: row.action === 'retry', cause: err });
}

/** `retry-after` as ms from `now`: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or invalid. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Every HTTP-date form names the month; Date.parse alone would take "-5" for a year.
  if (!/\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Delay before the next attempt, or undefined when the schedule is used up (then: dead letter).
 * `attemptsMade` counts attempts already sent. Schedule delays get equal jitter (uniform in [d/2, d]), which
 * spreads a burst of retries while keeping the schedule's shape (full jitter could retry a 10 h slot after
 * a second). A `retry-after` is a lower bound (RFC 9110): the wait is the later of it (capped at the
 * schedule's longest delay) and the schedule's own, so a receiver answering `429, retry-after: 1` over and
 * over cannot burn through every attempt in seconds.
 */
export function nextDelay(schedule: readonly number[], attemptsMade: number, retryAfterMs?: number, random: () => number = Math.random): number | undefined {
  if (attemptsMade >= schedule.length) return undefined;
  const d = schedule[attemptsMade];
  const jittered = Math.round(d / 2 + random() * (d / 2));
  return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, Math.max(...schedule)));
}

/** The `code` of an error or of its cause (undici wraps some socket errors). */
function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 3; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function stripQuery(url: string): string {
  const i = url.search(/[?#]/);
  return i < 0 ? url : url.slice(0, i);
}
