import { Pool, errors, type Dispatcher } from 'undici';
import { BridgeError } from '../../common/errors';
import type { ResponseFacts } from './webhook.policy';

const { RequestAbortedError } = errors;

/** Bytes of a non-2xx response body read for the error excerpt; the rest is discarded. */
const EXCERPT_BYTES = 2048;

/** One POST of one attempt. */
export interface WebhookRequest {
  body: string;
  headers: Record<string, string>;
  /** Budget of the whole attempt: connect, send, response headers, excerpt. */
  timeoutMs: number;
  /** Aborts the attempt from outside (shutdown). */
  signal?: AbortSignal;
}

/** How an endpoint worker sends; the fake in unit tests implements the same. */
export interface WebhookTransport {
  /** Resolves with the response (any status); rejects when there was none (network, timeout: `code` tells which). */
  post(req: WebhookRequest): Promise<ResponseFacts>;
  /** Closes idle connections; in-flight requests are aborted by their signal, not here. */
  close(): Promise<void>;
}

/**
 * HTTP/1.1 keep-alive connection pool to one endpoint's origin (undici `Pool`), one connection per parallel
 * key. Redirects are never followed (`maxRedirections: 0`): a 3xx is the policy's to judge.
 *
 * Each attempt goes through `Pool.dispatch` with its own small handler (`Exchange`) rather than `Pool.request`:
 * a 2xx body is discarded as it arrives instead of through a response stream, and the attempt's timeout and the
 * shutdown signal abort the request directly instead of through an AbortController per attempt. That is most of
 * what an attempt costs besides the HTTP exchange itself (docs/operations.md, the benchmark).
 */
export class UndiciTransport implements WebhookTransport {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly authorization?: string;
  /** Attempts in flight per outer signal: one abort listener per signal (the endpoint's shutdown), not one per attempt. */
  private readonly watched = new WeakMap<AbortSignal, Set<Exchange>>();

  constructor(url: string, connections: number, connectTimeoutMs: number) {
    const u = new URL(url);
    this.path = `${u.pathname}${u.search}`;
    // Credentials in the URL become Basic auth (undici wants a bare origin).
    if (u.username) this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    this.pool = new Pool(u.origin, { connections, pipelining: 1, maxRedirections: 0, keepAliveTimeout: 10_000, connect: { timeout: connectTimeoutMs } });
  }

  post(req: WebhookRequest): Promise<ResponseFacts> {
    return new Promise<ResponseFacts>((resolve, reject) => {
      const exchange = new Exchange(req.timeoutMs, resolve, reject);
      const { signal } = req;
      if (signal) {
        if (signal.aborted) return exchange.onError(new RequestAbortedError());
        const inFlight = this.inFlightOn(signal);
        inFlight.add(exchange);
        exchange.onSettled = () => inFlight.delete(exchange);
      }
      const headers = this.authorization ? { ...req.headers, authorization: this.authorization } : req.headers;
      this.pool.dispatch({ path: this.path, method: 'POST', headers, body: req.body, headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs }, exchange);
    });
  }

  async close(): Promise<void> {
    await this.pool.destroy().catch(() => undefined);
  }

  private inFlightOn(signal: AbortSignal): Set<Exchange> {
    let inFlight = this.watched.get(signal);
    if (!inFlight) {
      const set = new Set<Exchange>();
      this.watched.set(signal, set);
      signal.addEventListener('abort', () => {
        for (const exchange of [...set]) exchange.cancel(new RequestAbortedError());
      }, { once: true });
      inFlight = set;
    }
    return inFlight;
  }
}

/**
 * One attempt's undici handler. Settles once: with the response facts when the response has ended (a 2xx body
 * read and discarded so the connection goes back to the pool; of another status the first EXCERPT_BYTES kept as
 * the excerpt, a longer body cut off, which closes that connection), or with the error when there was no
 * response. Once the status is in, a body cut short (by the timeout, shutdown or the network) still settles
 * with the status, without an excerpt.
 */
class Exchange implements Dispatcher.DispatchHandlers {
  /** Told once when the attempt has settled. */
  onSettled?: () => void;
  private abort?: (err: Error) => void;
  /** Why the attempt is given up before undici handed over `abort` (it is aborted as soon as undici does). */
  private reason?: Error;
  private readonly timer: NodeJS.Timeout;
  private timedOut = false;
  private settled = false;
  private facts?: ResponseFacts;
  /** The body read so far, for a non-2xx status only. */
  private chunks?: Buffer[];
  private size = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly resolve: (facts: ResponseFacts) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.timer = setTimeout(onTimeout, timeoutMs, this);
  }

  /** Gives the attempt up: at once when it is on a connection, else as soon as undici connects it. */
  cancel(err: Error): void {
    if (this.settled) return;
    if (this.facts) return this.finish(false, true);
    if (this.abort) this.abort(err);
    else this.reason = err;
  }

  timeout(): void {
    this.timedOut = true;
    this.cancel(new RequestAbortedError());
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.reason) return abort(this.reason);
    this.abort = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[]): boolean {
    if (status < 200) return true; // informational: the final status follows
    this.facts = { status };
    if (status >= 300) {
      this.chunks = [];
      this.facts.retryAfter = header(rawHeaders, 'retry-after');
      this.facts.location = header(rawHeaders, 'location');
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (!this.chunks) {
      // A 2xx body is read only so that the connection can be reused; a huge one is not worth reading.
      if (this.size >= DISCARD_BYTES) this.finish(true, true);
    } else {
      this.chunks.push(chunk);
      if (this.size >= EXCERPT_BYTES) this.finish(true, true);
    }
    return true;
  }

  onComplete(): void {
    this.finish(true, false);
  }

  onError(err: Error): void {
    if (this.settled) return;
    if (this.facts) return this.finish(false, false);
    this.close();
    this.reject(this.timedOut ? new BridgeError('attempt_timeout', `no response within ${this.timeoutMs} ms`, { retriable: true, cause: err }) : err);
  }

  /** Settles with the facts: `whole`, the body read (as much as is kept); `cut`, the rest is not read (the connection closes). */
  private finish(whole: boolean, cut: boolean): void {
    if (this.settled) return;
    const facts = this.facts as ResponseFacts;
    if (this.chunks && whole) facts.excerpt = Buffer.concat(this.chunks).subarray(0, EXCERPT_BYTES).toString('utf8');
    this.close();
    if (cut) this.abort?.(new RequestAbortedError());
    this.resolve(facts);
  }

  private close(): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.onSettled?.();
  }
}

function onTimeout(exchange: Exchange): void {
  exchange.timeout();
}

/** Bytes of a 2xx response body read and discarded before the connection is closed instead (undici's `dump` default). */
const DISCARD_BYTES = 128 * 1024;

/** The first value of a response header (names in `raw` alternate with values), as undici's parsed headers give it. */
function header(raw: Buffer[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === name.length && raw[i].toString('latin1').toLowerCase() === name) return raw[i + 1].toString('utf8');
  }
  return undefined;
}
