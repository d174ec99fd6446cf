import { Pool } from 'undici';
import type { Readable } from 'node:stream';
import { BridgeError } from '../../common/errors';
import type { ResponseFacts } from './webhook.policy';

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
 */
export class UndiciTransport implements WebhookTransport {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly authorization?: string;

  constructor(url: string, connections: number, connectTimeoutMs: number) {
    const u = new URL(url);
    this.path = `${u.pathname}${u.search}`;
    // Credentials in the URL become Basic auth (undici wants a bare origin).
    if (u.username) this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    this.pool = new Pool(u.origin, { connections, pipelining: 1, maxRedirections: 0, keepAliveTimeout: 10_000, connect: { timeout: connectTimeoutMs } });
  }

  async post(req: WebhookRequest): Promise<ResponseFacts> {
    const own = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      own.abort();
    }, req.timeoutMs);
    // Forwarded by hand rather than AbortSignal.any: the outer signal lives as long as the endpoint.
    const forward = () => own.abort();
    if (req.signal?.aborted) own.abort();
    req.signal?.addEventListener('abort', forward, { once: true });
    const signal = own.signal;
    try {
      const headers = this.authorization ? { ...req.headers, authorization: this.authorization } : req.headers;
      const res = await this.pool.request({
        path: this.path, method: 'POST', headers, body: req.body, signal, maxRedirections: 0,
        headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs,
      });
      const facts: ResponseFacts = { status: res.statusCode, retryAfter: header(res.headers['retry-after']), location: header(res.headers.location) };
      if (res.statusCode >= 200 && res.statusCode < 300) {
        // Read (and discard) the body so the connection goes back to the pool.
        await res.body.dump().catch(() => undefined);
      } else {
        facts.excerpt = await readExcerpt(res.body, EXCERPT_BYTES).catch(() => undefined);
      }
      return facts;
    } catch (err) {
      if (timedOut) throw new BridgeError('attempt_timeout', `no response within ${req.timeoutMs} ms`, { retriable: true, cause: err });
      throw err;
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', forward);
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy().catch(() => undefined);
  }
}

/** The first `limit` bytes as text; a longer body is cut off (which closes that connection). */
async function readExcerpt(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(buf);
    size += buf.length;
    if (size >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
