import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { CommandError } from './errors';
import { UPSTREAM_MAX_BYTES, upstreamHttp, upstreamStatusError } from './upstream-http';

const failure = (p: Promise<unknown>): Promise<CommandError> => p.then(() => { throw new Error('resolved'); }, (err: CommandError) => err);

describe('upstream-http: the status table', () => {
  it.each([
    [503, 'upstream_unavailable', true], [429, 'upstream_unavailable', true], [500, 'upstream_unavailable', true],
    [401, 'auth_rejected', false], [403, 'auth_rejected', false], [400, 'upstream_rejected', false], [404, 'upstream_rejected', false],
  ])('HTTP %i → %s (retriable %s), never sent', (status, code, retriable) => {
    const err = upstreamStatusError(status, 'ZapThinker sendText', '{"status":400,"error":"Bad Request","response":{"message":[{"exists":false}]}}');
    expect(err).toMatchObject({ code, retriable, sent: false });
    expect(err.message).toContain(`ZapThinker sendText: HTTP ${status}`);
  });
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback HTTP server whose answer each test sets; counts the requests and the TCP connections it got. */
async function loopback(): Promise<{ url: string; handle(h: Handler): void; requests: string[]; connections: number; close(): Promise<void> }> {
  let handler: Handler = (_req, res) => res.end();
  const sockets = new Set<Socket>();
  const state = { url: '', requests: [] as string[], connections: 0, handle: (h: Handler) => (handler = h), close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    state.requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  server.on('connection', (s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}

/** What a held listener reports: a connection it accepted (by the peer's port), bytes received on one, or its close. */
interface HeldReport {
  event: 'listening' | 'open' | 'data' | 'close';
  port: number;
  text?: string;
}

/**
 * The held listener's program. Its event loop stays blocked in a synchronous read of stdin until the test writes to
 * it, so it accepts nothing meanwhile; backlog 1 (0 would be Node's default, 511) lets the kernel complete two
 * connections for it and drop every later SYN, which the connecting side sends again ~1 s, then ~3 s, ~7 s later.
 * It exits when its stdin closes, so it never outlives the test process.
 */
const HELD_LISTENER = `
const net = require('node:net');
const report = (event, port, text) => process.stdout.write(JSON.stringify({ event, port, text }) + '\\n');
const server = net.createServer((socket) => {
  const port = socket.remotePort;
  report('open', port);
  socket.on('data', (chunk) => report('data', port, chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => report('close', port));
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  report('listening', server.address().port);
  require('node:fs').readSync(0, Buffer.alloc(1));
  process.stdin.resume().on('end', () => process.exit(0));
});
`;

/**
 * A loopback listener in a child process that accepts no connection until `release()`, then reports every one it
 * accepts and every byte received on it (`reports`, in order). `kill()` it in a `finally`.
 */
function heldListener(): { listening: Promise<number>; reports: HeldReport[]; release(): void; kill(): void } {
  const child = spawn(process.execPath, ['-e', HELD_LISTENER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const reports: HeldReport[] = [];
  const listening = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const report = JSON.parse(line) as HeldReport;
      if (report.event === 'listening') resolve(report.port);
      else reports.push(report);
    });
    child.once('exit', (code, signal) => reject(new Error(`the held listener exited (${code ?? signal}) before listening`)));
  });
  return { listening, reports, release: () => child.stdin.write('go'), kill: () => child.kill('SIGKILL') };
}

/**
 * Opens plain connections to `port` until one does not complete within 500 ms (generous: on loopback one completes at
 * once unless the listener's accept queue is full). That one is dropped, so its SYN is not sent again; the completed
 * ones are returned, to be told apart from the call's and closed after the test.
 */
async function fillAcceptQueue(port: number): Promise<Socket[]> {
  const fillers: Socket[] = [];
  for (;;) {
    const socket = connect(port, '127.0.0.1').on('error', () => undefined);
    const opened = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(resolve, 500, false);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    // A stalled event loop can let the timer win against a connect that did complete: that one fills the queue too.
    if (!opened && socket.connecting) {
      socket.destroy();
      return fillers;
    }
    fillers.push(socket);
    if (fillers.length > 16) throw new Error('the accept queue never filled: the listener is not held');
  }
}

/** Polls `done` every 25 ms for at most `ms`; says whether it held. */
async function within(ms: number, done: () => boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

describe('upstream-http: every row over real HTTP (loopback)', () => {
  let srv: Awaited<ReturnType<typeof loopback>>;
  const call = (path: string, extra: Record<string, unknown> = {}) =>
    upstreamHttp.request({ url: `${srv.url}${path}`, method: 'POST', headers: { 'content-type': 'application/json', apikey: 'k-123' }, data: '{"a":1}', timeout: 1000, upstream: { what: 'test call' }, ...extra });

  beforeEach(async () => {
    srv = await loopback();
  });
  afterEach(() => srv.close());

  it('a 2xx gives the body as text, the JSON sent as it was built; keep-alive reuses the connections', async () => {
    const bodies: string[] = [];
    srv.handle((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString())).on('end', () => {
        bodies.push(body);
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"key":{"id":"K1"}}');
      });
    });
    const res = await call('/send');
    expect(res).toMatchObject({ status: 201, data: '{"key":{"id":"K1"}}' });
    // undici gives a connection back a full event-loop turn after its answer (so a server closing it is seen first):
    // a call made at once opens a second one, and from then on the two are reused.
    for (let i = 0; i < 5; i++) await call('/send');
    await new Promise((resolve) => setImmediate(resolve));
    await call('/send');
    expect(bodies).toEqual(Array(7).fill('{"a":1}'));
    expect(srv.connections).toBeLessThanOrEqual(2);
  });

  it.each([301, 302, 307, 308])('HTTP %i: the redirect is not followed, the Location never called', async (status) => {
    const elsewhere = await loopback();
    try {
      srv.handle((_req, res) => res.writeHead(status, { location: `${elsewhere.url}/stolen` }).end('moved'));
      const err = await failure(call('/send'));
      expect(err).toMatchObject({ code: 'upstream_rejected', retriable: false, sent: false });
      expect(err.message).toContain(`test call: HTTP ${status} (a redirect, not followed`);
      expect(srv.requests).toEqual(['POST /send']);
      expect(elsewhere.requests).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });

  it.each([
    [401, 'auth_rejected', false], [403, 'auth_rejected', false], [429, 'upstream_unavailable', true], [500, 'upstream_unavailable', true],
    [502, 'upstream_unavailable', true], [503, 'upstream_unavailable', true], [504, 'upstream_unavailable', true], [400, 'upstream_rejected', false],
    [404, 'upstream_rejected', false], [422, 'upstream_rejected', false],
  ])('HTTP %i → %s (retriable %s), not sent, the body quoted redacted', async (status, code, retriable) => {
    srv.handle((_req, res) => res.writeHead(status).end('{"message":"nope","token":"Bearer abc.def"}'));
    const err = await failure(call('/send'));
    expect(err).toMatchObject({ code, retriable, sent: false });
    expect(err.message).toMatch(new RegExp(`^test call: HTTP ${status}: .*nope`));
    expect(err.message).not.toContain('abc.def');
  });

  it("a provider's own row comes before the table", async () => {
    srv.handle((_req, res) => res.writeHead(410).end());
    const gone = new CommandError('socket_gone', 'gone', { retriable: true, sent: false });
    await expect(call('/send', { upstream: { what: 'x', status: (s: number) => (s === 410 ? gone : undefined) } })).rejects.toBe(gone);
  });

  it('connection refused: network, retriable, surely not sent', async () => {
    const url = srv.url;
    await srv.close();
    await expect(upstreamHttp.request({ url, method: 'POST', data: 'x', timeout: 1000, upstream: { what: 'test call' } }))
      .rejects.toMatchObject({ code: 'network', retriable: true, sent: false, message: 'test call: unreachable (ECONNREFUSED)' });
  });

  it('a connection that never opens (TLS handshake unanswered) runs out of time: network, retriable, surely not sent', async () => {
    // A TCP server that accepts and never speaks TLS: the https socket never opens, so the request never left.
    const held: Socket[] = [];
    const silent = createNetServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      await expect(upstreamHttp.request({ url: `https://127.0.0.1:${port}/send`, method: 'POST', data: 'x', timeout: 300, upstream: { what: 'test call' } }))
        .rejects.toMatchObject({ code: 'network', retriable: true, sent: false, message: 'test call: unreachable (connection not open in time)' });
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a call whose deadline fired before its connection opened is never written when the connection opens later', async () => {
    // `network` says "surely not sent" and the command is retried: had undici kept the request and written it once the
    // connection opened, the upstream would get the command twice. The connection is held up (the upstream's accept
    // queue full, its SYN dropped) past the deadline, then let through.
    const held = heldListener();
    let fillers: Socket[] = [];
    try {
      const port = await held.listening;
      fillers = await fillAcceptQueue(port);
      const filler = new Set(fillers.map((socket) => socket.localPort));
      expect(await failure(upstreamHttp.request({ url: `http://127.0.0.1:${port}/send`, method: 'POST', data: 'x', timeout: 300, upstream: { what: 'test call' } })))
        .toMatchObject({ code: 'network', retriable: true, sent: false, message: 'test call: unreachable (connection not open in time)' });
      held.release();
      // The call's SYN, sent again ~1 s (or ~3 s, ~7 s) after the first, now opens its connection; undici writes on it at
      // once or never, so the connection's close, or any byte on it, ends the wait.
      const onCallConnection = (report: HeldReport) => !filler.has(report.port);
      const seen = await within(12_000, () => held.reports.some((r) => onCallConnection(r) && (r.event === 'close' || r.event === 'data')));
      expect({ seen, data: held.reports.filter((r) => r.event === 'data') }).toEqual({ seen: true, data: [] });
    } finally {
      for (const socket of fillers) socket.destroy();
      held.kill();
    }
  });

  it('no answer in time after the request left: timeout, ambiguous', async () => {
    srv.handle(() => undefined);
    const started = Date.now();
    expect(await failure(call('/hang', { timeout: 200 }))).toMatchObject({ code: 'timeout', retriable: false, sent: true });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(srv.requests).toEqual(['POST /hang']);
  });

  it('the timeout bounds the whole exchange: a 2xx whose body still trickles in at the deadline stands there, data undefined', async () => {
    srv.handle((_req, res) => {
      res.writeHead(200);
      const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write('.')), 50);
      res.on('close', () => clearInterval(drip));
    });
    const started = Date.now();
    expect(await call('/drip', { timeout: 300 })).toMatchObject({ status: 200, data: undefined });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('reset mid-request: no_answer, ambiguous', async () => {
    srv.handle((req) => req.socket.destroy());
    expect(await failure(call('/reset'))).toMatchObject({ code: 'no_answer', retriable: false, sent: true });
  });

  it('a 2xx whose body is cut still stands (data undefined); a cut 503 is the 503', async () => {
    srv.handle((req, res) => {
      res.writeHead(req.url === '/ok' ? 200 : 503, { 'content-length': '100' });
      res.write('{"par');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    expect(await call('/ok')).toMatchObject({ status: 200, data: undefined });
    expect(await failure(call('/busy'))).toMatchObject({ code: 'upstream_unavailable', sent: false });
  });

  it(`an answer over ${UPSTREAM_MAX_BYTES} bytes is not read: no_answer`, async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    srv.handle((_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 9; i++) res.write(chunk);
      res.end();
    });
    expect(await failure(call('/big'))).toMatchObject({ code: 'no_answer', sent: true });
  });

  it('a body over the bound is refused before anything is sent', async () => {
    expect(await failure(call('/send', { data: 'x'.repeat(UPSTREAM_MAX_BYTES + 1) }))).toMatchObject({ code: 'invalid_command', sent: false, retriable: false });
    expect(srv.requests).toEqual([]);
  });

  it('HTTP_PROXY in the environment is not used', async () => {
    const proxy = await loopback();
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy, NO_PROXY: process.env.NO_PROXY, no_proxy: process.env.no_proxy };
    process.env.HTTP_PROXY = process.env.http_proxy = proxy.url;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    try {
      srv.handle((_req, res) => res.end('direct'));
      expect((await call('/send')).data).toBe('direct');
      expect(proxy.requests).toEqual([]);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await proxy.close();
    }
  });

  it('a 3xx quoting a token: the quote is redacted and shortened', async () => {
    srv.handle((_req, res) => res.writeHead(302, { location: '/elsewhere' }).end(`{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig","pad":"${'a'.repeat(400)}"}`));
    const err = await failure(call('/send'));
    expect(err).toMatchObject({ code: 'upstream_rejected', retriable: false, sent: false });
    expect(err.message).toMatch(/^test call: HTTP 302 \(a redirect, not followed/);
    expect(err.message).not.toContain('eyJ');
    expect(err.message.length).toBeLessThan(400);
  });

  it("a cut non-2xx body is the status, the provider's row first", async () => {
    srv.handle((_req, res) => {
      res.writeHead(410, { 'content-length': '100' });
      res.write('{"par');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const gone = new CommandError('socket_gone', 'gone', { retriable: true, sent: false });
    await expect(call('/gone', { upstream: { what: 'x', status: (s: number) => (s === 410 ? gone : undefined) } })).rejects.toBe(gone);
    expect(await failure(call('/gone'))).toMatchObject({ code: 'upstream_rejected', sent: false, message: 'test call: HTTP 410' });
  });

  it('a non-2xx status whose body still trickles at the deadline is that status (the upstream said it did not act)', async () => {
    srv.handle((_req, res) => {
      res.writeHead(503);
      const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write('.')), 50);
      res.on('close', () => clearInterval(drip));
    });
    expect(await failure(call('/drip', { timeout: 300 }))).toMatchObject({ code: 'upstream_unavailable', retriable: true, sent: false });
  });

  it('a header value with a line break is refused here, nothing sent, not retried', async () => {
    expect(await failure(call('/send', { headers: { apikey: 'k-123\nx-injected: 1' } }))).toMatchObject({ code: 'invalid_command', retriable: false, sent: false });
    expect(srv.requests).toEqual([]);
  });

  it('credentials in the URL that do not decode are refused here, nothing sent', async () => {
    expect(await failure(upstreamHttp.request({ url: srv.url.replace('http://', 'http://a%zz:b@') + '/send', timeout: 1000, upstream: { what: 'test call' } })))
      .toMatchObject({ code: 'invalid_command', sent: false, message: 'test call: not sent: the credentials in the URL do not decode' });
    expect(srv.requests).toEqual([]);
  });

  it(`a non-2xx answer over ${UPSTREAM_MAX_BYTES} bytes is its status, the rest not read`, async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    srv.handle((_req, res) => {
      res.writeHead(503);
      for (let i = 0; i < 9; i++) res.write(chunk);
      res.end();
    });
    expect(await failure(call('/big'))).toMatchObject({ code: 'upstream_unavailable', retriable: true, sent: false });
  });

  it('a URL that does not parse or is not http(s) is refused here, nothing sent', async () => {
    for (const url of ['not a url', 'ftp://127.0.0.1/x']) {
      expect(await failure(upstreamHttp.request({ url, method: 'POST', data: 'x', timeout: 1000, upstream: { what: 'test call' } })))
        .toMatchObject({ code: 'invalid_command', retriable: false, sent: false, message: expect.stringMatching(/^test call: not sent: /) });
    }
  });

  it('keeps the socket error as the cause, which holds no request headers', async () => {
    const url = srv.url;
    await srv.close();
    const err = await failure(upstreamHttp.request({ url, method: 'POST', headers: { apikey: 'k-secret-123' }, data: 'x', timeout: 1000, upstream: { what: 'test call' } }));
    expect(err.cause).toMatchObject({ code: 'ECONNREFUSED' });
    expect(JSON.stringify(err.cause) + String(err.cause)).not.toContain('k-secret-123');
  });

  it('names itself (user-agent) unless the caller does; credentials in the URL go as Basic auth', async () => {
    const seen: Array<[string | undefined, string | undefined]> = [];
    srv.handle((req, res) => {
      seen.push([req.headers['user-agent'], req.headers.authorization]);
      res.end('ok');
    });
    await call('/a');
    await call('/b', { headers: { 'user-agent': 'mine' } });
    await upstreamHttp.request({ url: srv.url.replace('http://', 'http://us%40er:p%3Ass@') + '/c', timeout: 1000, upstream: { what: 'test call' } });
    await upstreamHttp.request({ url: srv.url.replace('http://', 'http://u:p@') + '/d', headers: { Authorization: 'Bearer t' }, timeout: 1000, upstream: { what: 'test call' } });
    expect(seen).toEqual([['chatbridge', undefined], ['mine', undefined], ['chatbridge', `Basic ${Buffer.from('us@er:p:ss').toString('base64')}`], ['chatbridge', 'Bearer t']]);
  });
});
