import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { plainToInstance } from 'class-transformer';
import express from 'express';
import pino from 'pino';
import { ChannelRequestError } from '../channels/channel-mode';
import { InboundAuthConfig } from '../config/config.schema';
import { Metrics } from '../health/metrics';
import { authFailureGate } from '../common/auth-failures';
import { connectionPolicy, REFUSED_LINGER_BYTES, REFUSED_LINGER_IDLE_MS, REFUSED_LINGER_MS } from '../common/lingering-close';
import { AuthFailureLimiter } from '../common/rate-limit';
import { inboundGate } from './inbound.gate';

const TOKEN = 'tok-0123456789abcdef';
const LIMIT = 64 * 1024;
const PIECE = Buffer.alloc(64 * 1024, 'x');

/** A raw post's outcome: what it read (the answer, once whole), how its connection ended, and when. */
interface RawOutcome {
  answer?: { status: number; connection?: string; body: { statusCode: number; message: string } };
  /** The socket error the caller saw (EPIPE, ECONNRESET), if any. */
  error?: string;
  sent: number;
  closedAfterMs: number;
  /** The caller's local port, as the server sees it. */
  port?: number;
}

/** The answer in `raw`, once its head and its whole `Content-Length` body arrived. */
function wholeAnswer(raw: Buffer): RawOutcome['answer'] {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = raw.subarray(0, end).toString('latin1').split('\r\n');
  const header = (name: string) => head.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  const body = raw.subarray(end + 4);
  if (body.length !== Number(header('content-length'))) return undefined;
  return { status: Number(head[0].split(' ')[1]), connection: header('connection'), body: JSON.parse(body.toString('utf8')) as { statusCode: number; message: string } };
}

/**
 * A POST written over a raw socket by a client that sends its whole body whatever the server answers meanwhile (its
 * side stays open after the server's FIN), in 64 KiB pieces as fast as the socket takes them (or one every
 * `everyMs`), then ends its side; `total: Infinity` never stops. Resolves once the connection closed.
 */
function rawPost(port: number, path: string, headers: Record<string, string>, body: { total: number; chunked?: boolean; everyMs?: number }): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const out: RawOutcome = { sent: 0, closedAfterMs: 0 };
    socket.once('connect', () => (out.port = socket.localPort));
    const received: Buffer[] = [];
    const framing = body.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.total) };
    const head = Object.entries({ host: 'bridge', 'content-type': 'application/json', ...framing, ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
    const writePiece = () => {
      const piece = PIECE.subarray(0, Math.min(PIECE.length, body.total - out.sent));
      out.sent += piece.length;
      return socket.write(body.chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
    };
    const finish = () => {
      clearInterval(paced);
      socket.end(body.chunked ? '0\r\n\r\n' : '');
    };
    const pump = () => {
      while (out.sent < body.total && !socket.destroyed) if (!writePiece()) return void socket.once('drain', pump);
      if (!socket.destroyed) finish();
    };
    const paced = body.everyMs === undefined ? undefined : setInterval(() => (out.sent < body.total ? writePiece() : finish()), body.everyMs);
    if (!paced) pump();
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      out.answer ??= wholeAnswer(Buffer.concat(received));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (out.error ??= err.code ?? err.message));
    socket.on('close', () => {
      clearInterval(paced);
      out.closedAfterMs = Date.now() - started;
      resolve(out);
    });
  });
}

/** Resolves once `check` holds, polled every 10 ms (a bound on liveness of 5 s, not a timing assertion). */
async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The gate over real loopback HTTP: a refused post's connection closes lingering, so a caller still writing its body
 * reads its whole answer and never a reset, and a caller that never stops sending is cut off at the bound.
 */
describe('inboundGate: refusals close lingering (loopback HTTP)', () => {
  const metrics = new Metrics({ defaultMetrics: false });
  let server: Server;
  let port: number;

  beforeAll(async () => {
    const auth = plainToInstance(InboundAuthConfig, { token: TOKEN, maxBodyBytes: LIMIT }, { exposeDefaultValues: true });
    const inboundAuth = (channelId: string) => {
      if (channelId !== 'wa') throw new ChannelRequestError('unknown_channel', `no channel with id "${channelId}"`);
      return auth;
    };
    const app = express();
    app.use('/v1/inbound', inboundGate({ inbound: { inboundAuth }, metrics, log: pino({ level: 'silent' }) }));
    app.post('/v1/inbound/:id', (_req, res) => void res.json({ accepted: 1 }));
    server = createServer(app);
    // How long each connection lived on the server's side, by the caller's port: a caller that sends nothing more
    // sees the close only when it next writes.
    server.on('connection', (socket) => {
      const opened = Date.now();
      const callerPort = socket.remotePort;
      socket.once('close', () => serverClosedAfterMs.set(callerPort, Date.now() - opened));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  const serverClosedAfterMs = new Map<number | undefined, number>();

  const wrongToken = { 'x-chatbridge-token': 'not-the-token-0123' };
  const inFlight = async () => (await metrics.inboundInFlight.get()).values.find((v) => v.labels.channel === 'wa')?.value ?? 0;

  it('a 4 MB body with a wrong token (or to an unknown channel): the whole 401 (404) is read, never a reset, 50 at once and 20 in a row', async () => {
    const post = (i: number) => (i % 5 === 4 ? rawPost(port, '/v1/inbound/nope', {}, { total: 4_000_000 }) : rawPost(port, '/v1/inbound/wa', wrongToken, { total: 4_000_000 }));
    const expected = (i: number) => (i % 5 === 4 ? { status: 404, connection: 'close', body: { statusCode: 404, message: 'no channel with id "nope"' } } : { status: 401, connection: 'close', body: { statusCode: 401, message: 'invalid token' } });
    const atOnce = await Promise.all(Array.from({ length: 50 }, (_, i) => post(i)));
    const inARow: RawOutcome[] = [];
    for (let i = 0; i < 20; i++) inARow.push(await post(i));
    for (const [i, out] of [...atOnce, ...inARow].entries()) {
      expect({ answer: out.answer, error: out.error }).toMatchObject({ answer: expected(i % 50), error: undefined });
      // Each caller wrote its whole body: the server read it, discarding, until the caller ended its side.
      expect(out.sent).toBe(4_000_000);
    }
  });

  it('a chunked body over maxBodyBytes: the whole 413 is read, never a reset; the in-flight slot is free with the answer, while the caller still sends', async () => {
    const out = await rawPost(port, '/v1/inbound/wa', { 'x-chatbridge-token': TOKEN }, { total: 4_000_000, chunked: true });
    expect({ status: out.answer?.status, connection: out.answer?.connection, message: out.answer?.body.message, error: out.error })
      .toEqual({ status: 413, connection: 'close', message: expect.stringContaining(`inbound limit of ${LIMIT} bytes`), error: undefined });

    // One that sends a piece every 100 ms for a second: its slot is given back once it is answered (the second piece
    // passes the limit), not when its connection ends.
    const started = Date.now();
    const slow = rawPost(port, '/v1/inbound/wa', { 'x-chatbridge-token': TOKEN }, { total: 10 * PIECE.length, chunked: true, everyMs: 100 });
    await until(async () => (await inFlight()) === 1);
    await until(async () => (await inFlight()) === 0);
    const freedAfterMs = Date.now() - started;
    const slowOut = await slow;
    expect({ status: slowOut.answer?.status, error: slowOut.error, sent: slowOut.sent }).toEqual({ status: 413, error: undefined, sent: 10 * PIECE.length });
    expect(freedAfterMs).toBeLessThan(slowOut.closedAfterMs);
  });

  it('a caller that never ends is cut off: fast, at the byte bound; pausing, at the idle bound; trickling, at the total bound; each read its 401 first', async () => {
    const [fast, pausing, trickling] = await Promise.all([
      rawPost(port, '/v1/inbound/wa', wrongToken, { total: Infinity, chunked: true }),
      // Its first piece would come after the idle bound.
      rawPost(port, '/v1/inbound/wa', wrongToken, { total: Infinity, chunked: true, everyMs: REFUSED_LINGER_IDLE_MS + 1000 }),
      // 64 KiB every 200 ms: never idle, and under the byte bound by the total bound (about 3.2 MB in 10 s).
      rawPost(port, '/v1/inbound/wa', wrongToken, { total: Infinity, chunked: true, everyMs: 200 }),
    ]);
    // Read before the close: `answer` is only what arrived while the connection was open.
    expect([fast.answer?.status, pausing.answer?.status, trickling.answer?.status]).toEqual([401, 401, 401]);
    // Fast: past the byte bound, by no more than the sockets' buffers, long before any time bound.
    expect(fast.sent).toBeGreaterThan(REFUSED_LINGER_BYTES);
    expect(fast.sent).toBeLessThan(REFUSED_LINGER_BYTES + 32 * 1024 * 1024);
    expect(fast.closedAfterMs).toBeLessThan(REFUSED_LINGER_MS - 1000);
    // Pausing: cut by the server at the idle bound, before its first piece.
    const pausedFor = serverClosedAfterMs.get(pausing.port);
    expect(pausedFor).toBeGreaterThanOrEqual(REFUSED_LINGER_IDLE_MS - 100);
    expect(pausedFor).toBeLessThan(REFUSED_LINGER_MS - 1000);
    // Trickling: kept while it sends, cut at the total bound, under the byte bound.
    expect(trickling.sent).toBeLessThan(REFUSED_LINGER_BYTES);
    expect(serverClosedAfterMs.get(trickling.port)).toBeGreaterThanOrEqual(REFUSED_LINGER_MS - 100);
    expect(trickling.closedAfterMs).toBeLessThan(REFUSED_LINGER_MS + 5000);
  });

  it('a request pipelined behind a refused one is not served', async () => {
    let served = 0;
    let dropped = 0;
    const { port: p2, close } = await (async () => {
      const app = express();
      app.use(connectionPolicy(() => false, () => void dropped++));
      app.use('/v1/inbound', inboundGate({ inbound: { inboundAuth: () => plainToInstance(InboundAuthConfig, { token: TOKEN }, { exposeDefaultValues: true }) }, metrics, log: pino({ level: 'silent' }) }));
      app.post('/v1/inbound/:id', (_req, res) => void (served++, res.json({ accepted: 1 })));
      const srv = createServer(app);
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      return { port: (srv.address() as AddressInfo).port, close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
    })();
    try {
      const answers = await new Promise<string>((resolve) => {
        const socket = connect({ port: p2, host: '127.0.0.1' });
        let raw = '';
        const post = (token: string, body: string) => `POST /v1/inbound/wa HTTP/1.1\r\nHost: b\r\nx-chatbridge-token: ${token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
        // One write: a refused post, then a valid one behind it on the same connection.
        socket.end(post('not-the-token-0123', '{}') + post(TOKEN, '{"a":1}'));
        socket.on('data', (c: Buffer) => (raw += c.toString('latin1')));
        socket.on('close', () => resolve(raw));
      });
      expect(answers.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 401']);
      expect([served, dropped]).toEqual([0, 1]);
    } finally {
      await close();
    }
  });
});

describe('authFailureGate: its 429 closes lingering too (loopback HTTP)', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    // One failed authentication blocks the address (loopback) for a minute.
    const limiter = new AuthFailureLimiter(1, 60_000);
    const app = express();
    app.use('/v1', authFailureGate(limiter, () => undefined));
    app.post('/v1/inbound/:id', (_req, res) => void res.status(401).json({ statusCode: 401, message: 'invalid token' }));
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('an address past its failures posting 4 MB bodies reads each whole 429, never a reset, 20 at once', async () => {
    const first = await rawPost(port, '/v1/inbound/wa', {}, { total: 1000 });
    expect(first.answer?.status).toBe(401);
    const outs = await Promise.all(Array.from({ length: 20 }, () => rawPost(port, '/v1/inbound/wa', {}, { total: 4_000_000 })));
    for (const out of outs) {
      expect({ status: out.answer?.status, connection: out.answer?.connection, error: out.error, sent: out.sent }).toEqual({ status: 429, connection: 'close', error: undefined, sent: 4_000_000 });
    }
  });
});
