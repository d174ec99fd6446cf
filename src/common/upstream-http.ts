import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import axios, { type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
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
 * | refused here before sending (LOCAL_CODES) | invalid_command      | no        | false | e.g. a body over the bound
 * | network error in NOT_SENT_ERRNOS          | network              | yes       | false | never reached the server
 * | any failure before the connection opened  | network              | yes       | false | connect (TLS) timeout included
 * | timeout / abort while waiting             | timeout              | no        | true  | ambiguous: resolve through the echo
 * | any other failure after the request left  | no_answer            | no        | true  | ambiguous (reset mid-request,
 * |                                           |                      |           |       | an answer over UPSTREAM_MAX_BYTES)
 *
 * Providers put their own rows in front where the upstream gives a status a special meaning
 * (Captivate: 410 = stale socket_id), through `UpstreamCall.status`. Webhook delivery to our subscribers has its own
 * policy (src/sinks/webhook/webhook.policy.ts): there every failure is retried, as the receiver dedupes.
 */
const RETRYABLE_UPSTREAM_STATUS: ReadonlySet<number> = new Set([
  429, // rate limited
  500, // internal error
  502, // bad gateway (the proxy could not reach the backend)
  503, // unavailable / overloaded
  504, // gateway timeout at the proxy
]);

/** Errnos raised before a request could leave: the upstream surely did not act. */
const NOT_SENT_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNREFUSED', // nothing listens
  'ENOTFOUND', // DNS: no such host
  'EAI_AGAIN', // DNS: temporary failure
  'EHOSTUNREACH', // no route to host
  'ENETUNREACH', // no route to network
]);

/** Codes of a request that ran out of time or was aborted: it may have left, so the upstream may have acted. */
const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'ECONNABORTED', // axios: its `timeout` elapsed
  'ETIMEDOUT', // axios with clarifyTimeoutError, or the TCP stack
  'ERR_CANCELED', // the deadline signal fired (withDeadline)
]);

/** axios codes for a request refused here before anything was sent. */
const LOCAL_CODES: ReadonlySet<string> = new Set([
  'ERR_BAD_REQUEST', // without an answer: the body is over maxBodyLength, or the URL's protocol is not http(s)
  'ERR_INVALID_URL', // the URL does not parse
]);

/**
 * The largest answer (and request body) an upstream call takes: 8 MiB. Answers are small (a send's acknowledgement, a
 * token) except a Captivate transcript, which holds a whole conversation; the bound keeps a broken or hostile upstream
 * from filling the memory, with the gap-fill reading several transcripts at once.
 */
export const UPSTREAM_MAX_BYTES = 8 * 1024 * 1024;

const IDLE_SOCKET_MS = 4_000;

/**
 * How long a connection may take to open (TCP, and TLS for https) before the call fails as `network`: nothing was
 * sent, so it is retried. 10 s, the connect timeout fetch's undici had.
 */
const CONNECT_TIMEOUT_MS = 10_000;

/** Sockets whose connection opened (TLS: handshake done): only on those can a request have left. */
const opened = new WeakSet<object>();

/**
 * Keep-alive agents that time out a connection that does not open and remember the ones that did. A call that fails
 * on a socket that never opened surely sent nothing, whichever timer fired (the connect timeout, or the call's own
 * `timeout` while still connecting): it is `network`, retriable, not the ambiguous `timeout`.
 */
function openTracking<A extends HttpAgent>(agent: A, openEvent: 'connect' | 'secureConnect'): A {
  const create = (agent as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection.bind(agent);
  (agent as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error(`connection not open after ${CONNECT_TIMEOUT_MS} ms`), { code: CONNECT_TIMEOUT_CODE }));
    }, CONNECT_TIMEOUT_MS);
    socket.once(openEvent, () => {
      clearTimeout(timer);
      opened.add(socket);
    });
    socket.once('close', () => clearTimeout(timer));
    return socket;
  };
  return agent;
}

/** The code of a connection that did not open within CONNECT_TIMEOUT_MS. */
const CONNECT_TIMEOUT_CODE = 'ECONNECT_TIMEOUT';

/** A REST POST a provider builds (pure, so its wire format is tested), then sends with `upstreamHttp`. */
export interface RestPost {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/** What an upstream call says about itself, read by the error mapping. */
export interface UpstreamCall {
  /** Names the call in its errors, e.g. `ZapThinker sendText`. */
  what: string;
  /** The provider's own rows, read before the shared table: the error for a non-2xx status, or undefined. */
  status?: (status: number) => Error | undefined;
}

declare module 'axios' {
  interface AxiosRequestConfig {
    /** How the call is named in its errors and the provider's own status rows (src/common/upstream-http.ts). */
    upstream?: UpstreamCall;
  }
}

/**
 * The one HTTP client of every upstream REST call (commands, transcripts, tokens; the webhook hot path keeps undici's
 * Pool: docs/operations.md, "HTTP clients"). Each caller passes `timeout` (its configured one) and `upstream`.
 * - redirects are never followed: each request carries the upstream's credentials (api key headers, tokens in the
 *   URL) and a redirect would hand them to wherever `Location` points; a 3xx is an error (`describeStatus`).
 * - no proxy: axios would read HTTP(S)_PROXY from the environment and send the credentials through it; the bridge
 *   talks to the upstreams directly, as its other connections (sockets, Kafka) do.
 * - keep-alive agents: an idle socket is closed after 4 s (as fetch's undici did), or a second before the server's
 *   own `Keep-Alive: timeout` hint when that is sooner (Node reads it), so a request rarely meets a socket the server
 *   is closing.
 * - bodies are strings both ways: callers send the JSON they built and read the answer as text.
 * - every non-2xx answer and every failure becomes the CommandError of the table above (`upstreamFailure`).
 */
export const upstreamHttp = axios.create({
  adapter: 'http',
  maxRedirects: 0,
  proxy: false,
  httpAgent: openTracking(new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS }), 'connect'),
  httpsAgent: openTracking(new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS }), 'secureConnect'),
  maxContentLength: UPSTREAM_MAX_BYTES,
  maxBodyLength: UPSTREAM_MAX_BYTES,
  responseType: 'text',
  transformRequest: [(data: unknown) => data],
  transformResponse: [(data: unknown) => data],
  validateStatus: () => true,
});
upstreamHttp.interceptors.request.use(withDeadline);
upstreamHttp.interceptors.response.use(upstreamAnswer, upstreamFailure);

/**
 * Makes `timeout` a deadline for the whole exchange: once connected, axios' own `timeout` only bounds the silence on
 * the socket, so an answer trickling in would hold the call for as long as it keeps coming.
 */
function withDeadline(config: InternalAxiosRequestConfig): InternalAxiosRequestConfig {
  if (config.timeout && !config.signal) config.signal = AbortSignal.timeout(config.timeout);
  return config;
}

/** A 2xx answer passes; any other status is the provider's row, else the shared table's. */
function upstreamAnswer(res: AxiosResponse<string>): AxiosResponse<string> {
  if (res.status >= 200 && res.status < 300) return res;
  throw statusFailure(res.status, typeof res.data === 'string' ? res.data : '', res.config.upstream);
}

/**
 * The error interceptor: a failed request becomes its row of the table. When the status line had arrived and only the
 * body was cut, the status decides: a 2xx still means the upstream accepted, and the answer's `data` is undefined.
 */
function upstreamFailure(err: unknown): AxiosResponse<undefined> {
  const { response, config } = (typeof err === 'object' && err !== null ? err : {}) as { response?: AxiosResponse<unknown>; config?: InternalAxiosRequestConfig };
  if (response && typeof response.status === 'number') {
    if (response.status >= 200 && response.status < 300) return { ...response, data: undefined };
    throw statusFailure(response.status, '', config?.upstream);
  }
  throw upstreamRequestError(err, config?.upstream?.what ?? 'upstream request');
}

function statusFailure(status: number, body: string, call: UpstreamCall | undefined): Error {
  return call?.status?.(status) ?? upstreamStatusError(status, call?.what ?? 'upstream request', body);
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

/**
 * The CommandError for a request that got no answer, read from the axios error's `code` (the errno of a socket error,
 * or axios' own). The cause kept is the socket's error, never the axios error: that one holds the request's config,
 * credentials included.
 */
function upstreamRequestError(err: unknown, what: string): CommandError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown; cause?: unknown; request?: { socket?: object | null } };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const cause = e.cause;
  // No request object: refused before it was built (LOCAL_CODES below). With one, a request whose socket never opened
  // (still connecting, or still waiting for a socket) cannot have reached the upstream.
  const socket = e.request ? e.request.socket : undefined;
  if (e.request && (!socket || !opened.has(socket)) && code !== undefined && !LOCAL_CODES.has(code)) {
    return new CommandError('network', `${what}: unreachable (${code === CONNECT_TIMEOUT_CODE || TIMEOUT_CODES.has(code) ? 'connection not open in time' : code})`, { retriable: true, sent: false, cause });
  }
  if (code && TIMEOUT_CODES.has(code)) {
    return new CommandError('timeout', `${what}: no answer in time (the upstream may have acted)`, { retriable: false, sent: true, cause });
  }
  if (code && NOT_SENT_ERRNOS.has(code)) return new CommandError('network', `${what}: unreachable (${code})`, { retriable: true, sent: false, cause });
  if (code && LOCAL_CODES.has(code)) {
    const why = typeof e.message === 'string' ? redactText(e.message).slice(0, 200) : code;
    return new CommandError('invalid_command', `${what}: not sent: ${why}`, { retriable: false, sent: false, cause });
  }
  if (code === 'ERR_BAD_RESPONSE') {
    return new CommandError('no_answer', `${what}: answer larger than ${UPSTREAM_MAX_BYTES} bytes, not read; the upstream may have acted`, { retriable: false, sent: true, cause });
  }
  return new CommandError('no_answer', `${what}: connection failed after sending${code ? ` (${code})` : ''}; the upstream may have acted`, { retriable: false, sent: true, cause });
}
