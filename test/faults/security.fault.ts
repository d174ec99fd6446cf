import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { io } from 'socket.io-client';
import { Agent, request } from 'undici';
import { TEST_TOKEN } from '../helpers/bridge-harness';
import { BridgeProcess, freePort } from '../helpers/bridge-process';
import { evolutionPost } from '../helpers/inbound-post';
import { newSecret, WebhookReceiver } from '../helpers/webhook-receiver';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

/**
 * Secrets and callers against the built bridge: a debug-level run whose URLs and settings carry every kind of secret
 * writes none of them to its logs; 100 bad-token requests from one address are cut off at the limit while /healthz
 * and other callers are served; bad tokens from 10,001 addresses leave the table at its bound, the oldest forgotten;
 * a SIGTERM while start-up work is still under way stops the process cleanly; hostile `x-request-id` headers are
 * replaced by a generated id (or refused by Node's parser) and never reach the log.
 */
describe('fault rows: security', () => {
  const RSS_BOUND_MIB = 300;
  let bridge: BridgeProcess | undefined;
  const servers: Server[] = [];

  afterEach(async () => {
    await bridge?.kill();
    bridge = undefined;
    for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  });

  /** A loopback token endpoint: 503 for the first `failFirst` requests, then `{token}`. */
  async function tokenEndpoint(token: string, failFirst: number): Promise<string> {
    let n = 0;
    const srv = createServer((_req, res) => {
      if (n++ < failFirst) res.writeHead(503, { 'content-type': 'text/plain' }).end('try later');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  }

  it('a debug-level run whose URLs and settings carry secrets: none of them in the logs', async () => {
    const sim = new JwtWebSocketSimulator({ secret: 'security-row-signing-key' });
    await sim.start();
    const receiver = new WebhookReceiver();
    await receiver.start();
    try {
      const secrets = {
        staticJwt: sim.token({ sub: 'bridge-static' }),
        urlJwt: sim.token({ sub: 'bridge-url' }),
        clientSecret: 'cl13nt-s3cret-in-the-query-string',
        hookPassword: 'h00k-basic-auth-password',
        signingSecret: newSecret(),
        previousSecret: newSecret(),
        inboundToken: 'inb0und-token-0123456789',
        upstreamApiKey: 'zap-ap1-key-0123456789',
        apiToken: TEST_TOKEN,
      };
      const tokenBase = await tokenEndpoint(secrets.urlJwt, 2);
      const hookUrl = receiver.url.replace('http://', `http://hook-user:${secrets.hookPassword}@`);
      const b = (bridge = await startBuiltBridge('security-secrets', {
        webhooks: [{ id: 'crm', url: hookUrl, secret: secrets.signingSecret, previousSecret: secrets.previousSecret, retrySchedule: [0, 100, 200] }],
        channels: [
          { id: 'jwt-static', provider: 'jwt-websocket', 'jwt-websocket': { url: sim.url, token: secrets.staticJwt, subscribe: ['conversation:c1'] } },
          { id: 'jwt-url', provider: 'jwt-websocket', 'jwt-websocket': { url: sim.url, tokenUrl: `${tokenBase}/token?client_secret=${secrets.clientSecret}`, subscribe: ['conversation:c2'] } },
          { id: 'wa-in', provider: 'zapthinker', mode: 'webhook', inbound: { token: secrets.inboundToken }, zapthinker: { url: 'http://127.0.0.1:9', instance: 'sales', apiKey: secrets.upstreamApiKey } },
        ],
      }, { env: { LOG_LEVEL: 'debug' } }));
      await sim.waitUntil('both channels subscribed', () => sim.subscriberCount('conversation:c1') === 1 && sim.subscriberCount('conversation:c2') === 1, 20_000);
      // Failures that log (debug and up): the first deliveries answered 500 with the request's credentials echoed in
      // the body, the next subscription of c1 refused once.
      let failed = 0;
      receiver.respond((req) => (req.event.type === 'chatbridge.message.received' && failed++ < 3 ? { status: 500, body: `rejected: authorization=${req.headers.authorization} signature=${req.headers['webhook-signature']}` } : undefined));
      sim.failSubscriptions('conversation:c1', 1);

      // Traffic: messages on both channels, a network cut and reconnect, an inbound post, good and bad API calls.
      const messages = () => receiver.delivered().filter((r) => r.event.type === 'chatbridge.message.received').length;
      for (let i = 0; i < 5; i++) {
        sim.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: `static ${i}` });
        sim.chatMessage({ conversation_id: 'c2', sender_id: 'u2', content: `url ${i}` });
      }
      await until('10 messages delivered', () => messages() >= 10);
      sim.dropConnections();
      await sim.waitUntil('resubscribed', () => sim.subscriberCount('conversation:c1') === 1 && sim.subscriberCount('conversation:c2') === 1, 20_000);
      const connected = async (id: string) => ((await b.request('GET', `/v1/channels/${id}`)).body as { state?: string }).state === 'connected';
      await until('both channels connected again', async () => (await connected('jwt-static')) && (await connected('jwt-url')), 20_000);
      await new Promise((r) => setTimeout(r, 300));
      sim.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: 'after the cut' });
      const post = await fetch(`${b.url}/v1/inbound/wa-in`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-chatbridge-token': secrets.inboundToken }, body: evolutionPost('sales', 'SECROW00000000001', 'inbound hello') });
      expect(post.status).toBe(200);
      expect((await b.request('GET', '/v1/channels')).status).toBe(200);
      const denied = await fetch(`${b.url}/v1/channels`, { headers: { authorization: `Bearer ${secrets.apiToken}-but-wrong` } });
      expect(denied.status).toBe(401);
      await until('12 messages delivered (the next normal items)', () => messages() >= 12);
      const healthMs = await expectHealthy(b);
      const rss = rssMiB(b.pid);
      expect(rss).toBeLessThan(RSS_BOUND_MIB);

      const text = b.logs.map((l) => (typeof l.stderr === 'string' ? l.stderr : JSON.stringify(l))).join('\n');
      const hits = Object.entries(secrets).filter(([, v]) => text.includes(v)).map(([k]) => k);
      // The signing secrets without their prefix, too (a log could quote the base64 alone).
      const bareHits = [secrets.signingSecret, secrets.previousSecret].filter((s) => text.includes(s.slice('whsec_'.length)));
      const debugLines = b.logs.filter((l) => l.level === 'debug').length;
      const redactedLines = b.logs.filter((l) => JSON.stringify(l).includes('[REDACTED]')).length;
      expect(hits).toEqual([]);
      expect(bareHits).toEqual([]);
      expect(debugLines).toBeGreaterThan(0);
      report('security secrets in debug logs', {
        secrets: Object.keys(secrets).length, logLines: b.logs.length, debugLines, redactedLines, hits: hits.length + bareHits.length,
        delivered: messages(), healthzMs: Math.round(healthMs), rssMiB: rss,
      });
    } finally {
      await receiver.stop();
      await sim.stop();
    }
  });

  it('100 bad-token requests from one address: 429 past the limit, /healthz fast, a good token from another address served', async () => {
    // A webhook endpoint, so the logs are on stdout (embedded mode would put them on stderr).
    const receiver = new WebhookReceiver();
    await receiver.start();
    const b = (bridge = await startBuiltBridge('security-401s', { webhooks: [{ id: 'crm', url: receiver.url, secret: newSecret() }] }));
    const other = new Agent({ localAddress: '127.0.0.2' });
    try {
      const statuses = new Map<number, number>();
      let retryAfter = 0;
      let worstHealthMs = 0;
      for (let i = 0; i < 100; i++) {
        const res = await request(`${b.url}/v1/channels`, { headers: { authorization: `Bearer guess-${i}-0123456789abcdef` } });
        await res.body.text();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode === 429) retryAfter = Number(res.headers['retry-after']);
        if (i % 10 === 9) worstHealthMs = Math.max(worstHealthMs, await expectHealthy(b));
      }
      expect(Object.fromEntries(statuses)).toEqual({ 401: 20, 429: 80 });
      expect(retryAfter).toBeGreaterThan(0);
      // The blocked address is refused on every door, the right token included; another address is not.
      const sameAddress = await request(`${b.url}/v1/channels`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
      await sameAddress.body.text();
      expect(sameAddress.statusCode).toBe(429);
      const handshake = await new Promise<number>((resolve) => {
        const s = io(`${b.url}/v1`, { auth: { token: TEST_TOKEN }, transports: ['websocket'], reconnection: false, forceNew: true });
        s.on('connect', () => (s.close(), resolve(101)));
        s.on('connect_error', (err: Error & { data?: { statusCode: number } }) => (s.close(), resolve(err.data?.statusCode ?? 0)));
      });
      expect(handshake).toBe(429);
      const good = await request(`${b.url}/v1/channels`, { headers: { authorization: `Bearer ${TEST_TOKEN}` }, dispatcher: other });
      await good.body.text();
      expect(good.statusCode).toBe(200);
      const healthMs = await expectHealthy(b);
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      const refused = Number(/chatbridge_refused_total\{origin="api",reason="auth_failures"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
      expect(refused).toBe(81);
      const rss = rssMiB(b.pid);
      expect(rss).toBeLessThan(RSS_BOUND_MIB);
      report('security 100 bad tokens from one address', {
        '401': statuses.get(401) ?? 0, '429': statuses.get(429) ?? 0, retryAfterS: retryAfter, handshake, otherAddress: good.statusCode, refusedMetric: refused,
        healthzMs: Math.round(healthMs), worstHealthzMs: Math.round(worstHealthMs), rssMiB: rss,
      });
    } finally {
      await other.close();
      await receiver.stop();
    }
  });

  it('bad tokens from 10,000 more addresses: the table keeps the 10,000 most recent, the oldest address counts afresh, /healthz fast', async () => {
    // A window far longer than the flood: `first` can only start over by being forgotten, not by its window passing.
    const b = (bridge = await startBuiltBridge('security-addresses', { api: { authFailures: { windowMs: 3_600_000 } } }));
    /** One request with a wrong token from `address` (a loopback address of its own); resolves with the status. */
    const badFrom = (address: string) => new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${b.url}/v1/channels`, { localAddress: address, agent: false, headers: { authorization: 'Bearer wrong-token-0123456789' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    const first = '127.9.0.1';
    const t0 = performance.now();
    for (let i = 0; i < 19; i++) expect(await badFrom(first)).toBe(401); // one failure short of its block
    // 10,000 other addresses fail once each, 100 at a time: the table (10,000 addresses) forgets the oldest, `first`.
    const others = Array.from({ length: 10_000 }, (_, i) => `127.10.${Math.floor(i / 250) + 1}.${(i % 250) + 1}`);
    let worstHealthMs = 0;
    for (let i = 0; i < others.length; i += 100) {
      const statuses = await Promise.all(others.slice(i, i + 100).map(badFrom));
      expect(statuses.filter((st) => st !== 401)).toEqual([]);
      if (i % 2000 === 0) worstHealthMs = Math.max(worstHealthMs, await expectHealthy(b));
    }
    const floodMs = Math.round(performance.now() - t0);
    // Forgotten: `first` counts from zero again, 20 failures before its block (remembered, its next one would block it).
    const again: number[] = [];
    for (let i = 0; i < 21; i++) again.push(await badFrom(first));
    expect(again).toEqual([...Array<number>(20).fill(401), 429]);
    const healthMs = await expectHealthy(b);
    const rss = rssMiB(b.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('security bad tokens from 10,001 addresses', {
      addresses: others.length + 1, floodMs, oldestForgotten: true, blockedAfter: again.indexOf(429), healthzMs: Math.round(healthMs), worstHealthzMs: Math.round(worstHealthMs), rssMiB: rss,
    });
  });

  /**
   * One `GET /v1/channels` written byte for byte (latin1) with `extra` header lines, which fetch would refuse to send;
   * resolves with the status and the response headers once the server closed the connection.
   */
  function rawGet(b: BridgeProcess, extra: string[]): Promise<{ status: number; headers: Record<string, string> }> {
    return new Promise((resolve, reject) => {
      const socket = connect(b.port, '127.0.0.1', () => {
        socket.end(Buffer.from(['GET /v1/channels HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${TEST_TOKEN}`, ...extra, 'Connection: close', '', ''].join('\r\n'), 'latin1'));
      });
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        const [head] = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n');
        const [statusLine, ...lines] = head.split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        resolve({ status: Number(statusLine.split(' ')[1]), headers });
      });
    });
  }

  it('hostile x-request-id headers: each answered under a generated id (or refused by the parser), none of them logged; the next request keeps its own id', async () => {
    const b = (bridge = await startBuiltBridge('security-request-id', {}));
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const replaced = {
      tooLong: ['x-request-id: ' + 'L'.repeat(129)],
      eightKiB: ['x-request-id: ' + 'K'.repeat(8 * 1024)],
      logInjection: ['x-request-id: id"},"level":60,"msg":"forged-line'],
      nonAscii: ['x-request-id: id-\xff\xfe-\xe2\x80\xae-rtl'],
      twice: ['x-request-id: first-id', 'x-request-id: second-id'],
    };
    const ids: string[] = [];
    for (const [name, lines] of Object.entries(replaced)) {
      const res = await rawGet(b, lines);
      expect({ name, status: res.status }).toEqual({ name, status: 200 });
      expect(res.headers['x-request-id']).toMatch(UUID);
      ids.push(res.headers['x-request-id']);
    }
    expect(new Set(ids).size).toBe(ids.length);
    // Control characters (an ANSI escape) and headers over Node's 16 KiB: the parser answers before the bridge reads.
    const escape = await rawGet(b, ['x-request-id: id\x1b[31mred']);
    const huge = await rawGet(b, ['x-request-id: ' + 'H'.repeat(20 * 1024)]);
    expect([escape.status, huge.status]).toEqual([400, 431]);
    const healthzMs = await expectHealthy(b);

    const t0 = performance.now();
    const next = await fetch(`${b.url}/v1/channels`, { headers: { authorization: `Bearer ${TEST_TOKEN}`, 'x-request-id': 'req-1234.abc:7' } });
    await next.text();
    const nextMs = Math.round(performance.now() - t0);
    expect([next.status, next.headers.get('x-request-id')]).toEqual([200, 'req-1234.abc:7']);
    await until('the access lines', () => ['req-1234.abc:7', ...ids].every((id) => b.logs.some((l) => l.requestId === id && l.path === '/v1/channels')));
    const text = b.logs.map((l) => JSON.stringify(l)).join('\n');
    const leaked = ['L'.repeat(129), 'K'.repeat(129), 'H'.repeat(129), 'forged-line', 'first-id', '-rtl', '[31mred'].filter((v) => text.includes(v));
    expect(leaked).toEqual([]);
    report('security hostile x-request-id', {
      replaced: ids.length, escapeStatus: escape.status, hugeStatus: huge.status, leakedToLog: leaked.length, healthzMs: Math.round(healthzMs), nextStatus: next.status, nextMs,
    });
  });

  it('SIGTERM while start-up work is under way (Kafka unreachable): the process stops cleanly, exit 0', async () => {
    // Kafka unreachable: start-up waits (bounded) for the mode store and the command ledger. Those waits and the stop
    // after them took 15.5-21 s in 15 runs here, and one slower run met the hard stop at shutdownGraceMs + 5 s (then
    // exit 1): the grace is 30 s so that the row shows the clean stop, not how close it comes to the hard stop.
    const b = (bridge = new BridgeProcess('security-sigterm', { kafka: { brokers: [`127.0.0.1:${await freePort()}`] }, shutdownGraceMs: 30_000 }, await freePort(), { entry: 'dist' }));
    const started = b.start(60_000);
    started.catch(() => undefined);
    await b.waitForLog('start-up under way', (l) => l.msg === 'Starting Nest application...', 30_000);
    const t0 = performance.now();
    const exit = await b.signal('SIGTERM');
    const exitMs = performance.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(b.logs).toContainEqual(expect.objectContaining({ msg: 'shutting down: stopping as soon as start-up work settles', signal: 'SIGTERM', duringStartUp: true }));
    expect(b.logs).toContainEqual(expect.objectContaining({ msg: 'stopped' }));
    expect(b.logs.some((l) => l.msg === 'chatbridge started')).toBe(false);
    report('security SIGTERM during start-up', { exit: exit.code ?? -1, signal: exit.signal ?? 'none', exitMs: Math.round(exitMs) });
  });
});
