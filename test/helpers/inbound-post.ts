import { execFile } from 'node:child_process';
import { request, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';

const evolution = new ZapThinkerSimulator();

/** The body Evolution posts for one new inbound message `id` (upper-case hex-like ids read as its own). */
export function evolutionPost(instance: string, id: string, text: string): string {
  return JSON.stringify({
    event: 'messages.upsert', instance, data: evolution.messageUpsert({ instance, remoteJid: '5511999999999@s.whatsapp.net', text, id }),
    server_url: 'http://evolution.invalid', date_time: new Date().toISOString(), sender: '5511900000000@s.whatsapp.net', apikey: null,
  });
}

/** The answer to a post, read whole. */
export interface PostAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/**
 * A POST whose headers and first bytes are on the wire and whose body stays open until `finish()` or `abort()`: an
 * `answer` that arrives while it is open proves the server answered without waiting for the body. Without a
 * `content-length` header the body is chunked.
 */
export class HeldPost {
  /** Resolves once the server answers, whether or not the body was finished. */
  readonly answer: Promise<PostAnswer>;
  private readonly req: ClientRequest;
  private answered = false;

  constructor(url: string, headers: Record<string, string>, first: string | Buffer) {
    this.req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
    this.answer = new Promise((resolve, reject) => {
      this.req.on('response', (res) => {
        this.answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        });
      });
      // After an answer, a server that closed the connection makes the rest of the body fail to write: expected.
      this.req.on('error', (err) => {
        if (!this.answered) reject(err);
      });
    });
    // A post aborted before its answer rejects `answer`; only a caller awaiting it should see that.
    this.answer.catch(() => undefined);
    this.req.flushHeaders();
    this.req.write(first);
  }

  /** Resolves once the bytes written so far left this process. */
  flushed(): Promise<void> {
    return new Promise((resolve) => this.req.write('', () => resolve()));
  }

  /** Sends the rest of the body and ends it; resolves with the answer. */
  finish(rest: string | Buffer = ''): Promise<PostAnswer> {
    this.req.end(rest);
    return this.answer;
  }

  /** Goes away mid-body (closes the connection). */
  abort(): void {
    this.req.destroy();
  }
}

/** Resolves with `p`, or rejects saying `what` did not happen within `ms` (a bound on liveness, not a timing assertion). */
export function within<T>(what: string, p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The flood's client, run as its own process: the test process stays free to time `/healthz` meanwhile. */
const FLOOD_SCRIPT = `
const [url, count, bytes, headers] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), JSON.parse(process.argv[4])];
const body = Buffer.alloc(bytes, 'x');
Promise.all(Array.from({ length: count }, () => fetch(url, { method: 'POST', headers, body })
  .then(async (res) => { await res.arrayBuffer(); return res.status; })
  .catch((err) => {
    const code = err.cause?.code;
    return (['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET'].includes(code) ? 'reset: ' : 'error: ') + (code ?? err.message);
  })))
  .then((statuses) => process.stdout.write(JSON.stringify(statuses)));
`;

/**
 * Sends `count` posts of `bytes` bytes to `url` at once from another process, at a lower scheduling priority (an
 * attacker runs on another machine, not on the bridge's CPU); resolves with each answer's status, or `reset: <code>`
 * for a post whose connection the server closed while its body was still being written (a server that answers before
 * reading the body and closes can be seen that way, the answer lost with the reset), or `error: <cause>`.
 */
export function flood(url: string, count: number, bytes: number, headers: Record<string, string>): Promise<Array<number | string>> {
  return new Promise((resolve, reject) => {
    execFile('nice', ['-n', '10', process.execPath, '-e', FLOOD_SCRIPT, url, String(count), String(bytes), JSON.stringify(headers)], { timeout: 60_000 }, (err, stdout) => {
      if (err) return reject(err);
      resolve(JSON.parse(stdout) as Array<number | string>);
    });
  });
}
