import { Agent, type Dispatcher } from 'undici';
import { CommandError } from './errors';
import { redactText } from './redact';

/**
 * How an outbound COMMAND sent to an upstream's HTTP API failed, in one table for every provider.
 * The question is always "may the upstream have acted?" (docs/commands.md: retry only when it surely did not).
 *
 * | outcome                                    | code                 | retriable | sent  |
 * | HTTP 3xx (redirects are never followed)    | upstream_rejected    | no        | false | the configured URL is not the API's
 * | HTTP 401, 403                              | auth_rejected        | no        | false | the key is wrong
 * | HTTP 429, 500, 502, 503, 504               | upstream_unavailable | yes       | false | refused or failed before acting
 * | any other non-2xx                          | upstream_rejected    | no        | false | the request itself is wrong
 * | refused here before sending                | invalid_command      | no        | false | a body over the bound, a bad URL or header
 * | any failure before the request was written | network              | yes       | false | refused, DNS, connect or TLS failed or late
 * | no status within the call's timeout        | timeout              | no        | true  | ambiguous: resolve through the echo
 * | any other failure after the request left   | no_answer            | no        | true  | ambiguous (reset mid-request,
 * |                                            |                      |           |       | an answer over UPSTREAM_MAX_BYTES)
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

/**
 * The largest answer (and request body) an upstream call takes: 8 MiB. Answers are small (a send's acknowledgement, a
 * token) except a Captivate transcript, which holds a whole conversation; the bound keeps a broken or hostile upstream
 * from filling the memory, with the gap-fill reading several transcripts at once.
 */
export const UPSTREAM_MAX_BYTES = 8 * 1024 * 1024;

/** Bytes of a non-2xx answer kept for the error's quote; the rest is read and discarded. */
const EXCERPT_BYTES = 2048;

/** An idle keep-alive connection is closed after this long, or a second before the server's own `Keep-Alive` hint. */
const IDLE_SOCKET_MS = 4_000;

/**
 * How long a connection may take to open (TCP, and TLS for https) before the call fails as `network`: nothing was
 * sent, so it is retried. 10 s, the connect timeout fetch's undici had.
 */
const CONNECT_TIMEOUT_MS = 10_000;

/** Sent when the caller names none: an upstream's logs say who called. */
const USER_AGENT = 'chatbridge';

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

/** One upstream REST call. */
export interface UpstreamRequest {
  url: string;
  /** Default GET. */
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** The body as built (JSON text); at most UPSTREAM_MAX_BYTES. */
  data?: string;
  /** The caller's configured timeout (ms): a deadline for the whole exchange, connect to the answer's last byte. */
  timeout: number;
  upstream: UpstreamCall;
}

/** A 2xx answer. */
export interface UpstreamResponse {
  status: number;
  /** The body as text; undefined when the answer's body was cut (the 2xx still stands: the upstream accepted). */
  data: string | undefined;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
}

/**
 * The one HTTP client of every upstream REST call (commands, transcripts, tokens), on undici as the webhook hot path
 * is (docs/operations.md, "HTTP clients"). Each caller passes `timeout` (its configured one) and `upstream`.
 * - redirects are never followed: each request carries the upstream's credentials (api key headers, tokens in the
 *   URL) and a redirect would hand them to wherever `Location` points; a 3xx is an error (`describeStatus`).
 * - no proxy: the environment's HTTP(S)_PROXY is not read; the bridge talks to the upstreams directly, as its other
 *   connections (sockets, Kafka) do.
 * - keep-alive: an idle connection is closed after 4 s, or a second before the server's own `Keep-Alive: timeout`
 *   hint when that is sooner (a longer hint is not followed), so a request rarely meets a connection the server is
 *   closing, which would make its failure ambiguous.
 * - bodies are strings both ways: callers send the JSON they built and read the answer as text.
 * - every non-2xx answer and every failure becomes the CommandError of the table above.
 */
export const upstreamHttp = {
  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    return new Promise<UpstreamResponse>((resolve, reject) => {
      const exchange = new UpstreamExchange(req, resolve, reject);
      const target = dispatchTarget(req);
      if (target instanceof CommandError) return exchange.refuse(target);
      agent.dispatch(target, exchange);
    });
  },
};

const agent = new Agent({
  keepAliveTimeout: IDLE_SOCKET_MS, keepAliveMaxTimeout: IDLE_SOCKET_MS, keepAliveTimeoutThreshold: 1000,
  connect: { timeout: CONNECT_TIMEOUT_MS }, maxRedirections: 0,
});

/** Node's longest timer (ms): a longer call timeout (a command timeout plus its typing delay) is cut to it. */
const MAX_TIMER_MS = 2_147_483_647;

/** undici's codes for a request it refuses before sending it (a header value with a line break, a forbidden header). */
const REFUSED_HERE_CODES: ReadonlySet<string> = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/** What undici is asked to send, or the error of a request refused here (nothing sent). */
function dispatchTarget(req: UpstreamRequest): Dispatcher.DispatchOptions | CommandError {
  const { what } = req.upstream;
  const notSent = (why: string) => new CommandError('invalid_command', `${what}: not sent: ${why}`, { retriable: false, sent: false });
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return notSent('the URL does not parse');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return notSent(`unsupported protocol ${url.protocol}`);
  if (req.data !== undefined && Buffer.byteLength(req.data) > UPSTREAM_MAX_BYTES) return notSent(`request body larger than ${UPSTREAM_MAX_BYTES} bytes`);
  const headers: Record<string, string> = { ...req.headers };
  const named = new Set(Object.keys(headers).map((name) => name.toLowerCase()));
  if (!named.has('user-agent')) headers['user-agent'] = USER_AGENT;
  // Credentials in the URL become Basic auth (undici wants a bare origin).
  if (url.username && !named.has('authorization')) {
    try {
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    } catch {
      return notSent('the credentials in the URL do not decode');
    }
  }
  // undici's own timers stay out of the way: the exchange's deadline decides, and says which row a failure is.
  const later = Math.min(req.timeout, MAX_TIMER_MS - 1000) + 1000;
  return { origin: url.origin, path: `${url.pathname}${url.search}`, method: req.method ?? 'GET', headers, body: req.data, headersTimeout: later, bodyTimeout: later };
}

/**
 * One call's undici handler, which settles it once with its row of the table. The row depends on how far the
 * exchange got: undici calls `onConnect` right before it writes the request on an open connection, so a failure
 * before that surely sent nothing (`network`, retried), one after it may have reached the upstream (`timeout`,
 * `no_answer`: ambiguous); once the status arrived, the status decides, and a 2xx whose body is cut or still coming
 * at the deadline stands.
 */
class UpstreamExchange implements Dispatcher.DispatchHandlers {
  private readonly timer: NodeJS.Timeout;
  private abort?: (err?: Error) => void;
  private connected = false;
  private settled = false;
  private status?: number;
  private headers: Record<string, string | undefined> = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly req: UpstreamRequest,
    private readonly resolve: (res: UpstreamResponse) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.timer = setTimeout(onDeadline, Math.min(req.timeout, MAX_TIMER_MS), this);
  }

  /** Settles with an error of a request refused before dispatch. */
  refuse(err: CommandError): void {
    this.fail(err);
  }

  /**
   * The call's deadline: once the status arrived it decides (a 2xx whose body is still coming stands, as a cut one
   * does); before, the call is ambiguous once the request may have left, and surely not sent before that.
   */
  deadline(): void {
    if (this.settled) return;
    const { what } = this.req.upstream;
    if (this.status !== undefined) this.settleOnStatus();
    else if (this.connected) this.fail(new CommandError('timeout', `${what}: no answer in time (the upstream may have acted)`, { retriable: false, sent: true }));
    else this.fail(new CommandError('network', `${what}: unreachable (connection not open in time)`, { retriable: true, sent: false }));
    // Not yet on a connection: `onConnect` aborts it before anything is written.
    this.abort?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.settled) return abort();
    this.connected = true;
    this.abort = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[] | string[] | null): boolean {
    if (status < 200) return true; // informational: the final status follows
    this.status = status;
    this.headers = headerMap(rawHeaders);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return true;
    this.size += chunk.length;
    if (is2xx(this.status!)) {
      if (this.size > UPSTREAM_MAX_BYTES) {
        const { what } = this.req.upstream;
        this.fail(new CommandError('no_answer', `${what}: answer larger than ${UPSTREAM_MAX_BYTES} bytes, not read; the upstream may have acted`, { retriable: false, sent: true }));
        this.abort?.();
        return true;
      }
      this.chunks.push(chunk);
    } else if (this.size - chunk.length < EXCERPT_BYTES) {
      this.chunks.push(chunk);
    } else if (this.size > UPSTREAM_MAX_BYTES) {
      // A refusal longer than any: its status is known, the rest is not read.
      this.settleOnStatus();
      this.abort?.();
    }
    return true;
  }

  onComplete(): void {
    if (this.settled) return;
    const text = Buffer.concat(this.chunks).toString('utf8');
    if (is2xx(this.status!)) this.succeed(text);
    else this.fail(this.statusFailure(text.slice(0, EXCERPT_BYTES)));
  }

  onError(err: Error): void {
    if (this.settled) return;
    // The status line arrived and the body was cut: the status decides.
    if (this.status !== undefined) return this.settleOnStatus();
    this.fail(requestError(err, this.req.upstream.what, this.connected));
  }

  /** A 2xx without its (whole) body stands, with `data` undefined; another status is its row. */
  private settleOnStatus(): void {
    if (is2xx(this.status!)) this.succeed(undefined);
    else this.fail(this.statusFailure(''));
  }

  /** The provider's row for the status, else the shared table's (a provider row that throws is its error). */
  private statusFailure(body: string): Error {
    const call = this.req.upstream;
    try {
      return call.status?.(this.status!) ?? upstreamStatusError(this.status!, call.what, body);
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  private succeed(data: string | undefined): void {
    this.settle();
    this.resolve({ status: this.status!, data, headers: this.headers });
  }

  private fail(err: unknown): void {
    this.settle();
    this.reject(err);
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
  }
}

function onDeadline(exchange: UpstreamExchange): void {
  exchange.deadline();
}

function is2xx(status: number): boolean {
  return status >= 200 && status < 300;
}

/** Response headers by lower-case name (a repeated header's values joined by ", "). */
function headerMap(raw: Buffer[] | string[] | null): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  if (!raw) return headers;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toString().toLowerCase();
    const value = raw[i + 1].toString();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return headers;
}

/**
 * The CommandError for a request that got no status: before the request was written (undici had not called
 * `onConnect`: refused, unresolvable, the connect or TLS handshake failed or timed out) it surely did not reach the
 * upstream; after, it may have. The cause kept is undici's or the socket's error, which holds no request headers.
 */
function requestError(err: Error, what: string, connected: boolean): CommandError {
  const code = (err as { code?: unknown }).code;
  const named = typeof code === 'string' ? code : undefined;
  if (!connected && named && REFUSED_HERE_CODES.has(named)) {
    return new CommandError('invalid_command', `${what}: not sent: ${redactText(err.message).slice(0, 200)}`, { retriable: false, sent: false, cause: err });
  }
  if (!connected) {
    const why = named === 'UND_ERR_CONNECT_TIMEOUT' ? 'connection not open in time' : named ?? redactText(err.message).slice(0, 200);
    return new CommandError('network', `${what}: unreachable (${why})`, { retriable: true, sent: false, cause: err });
  }
  return new CommandError('no_answer', `${what}: connection failed after sending${named ? ` (${named})` : ''}; the upstream may have acted`, { retriable: false, sent: true, cause: err });
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
