import { io } from 'socket.io-client';
import { Agent, request } from 'undici';
import { metricValue, startTestBridge, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';

/**
 * Repeated failed authentications from one address (api.authFailures): HTTP `/v1/*` 401s, socket.io handshakes and
 * `/v1/inbound` posts count together; past the limit the address gets 429 with Retry-After until the window ends,
 * other addresses are untouched, and `/healthz` is never limited. A second loopback address (127.0.0.2) is another
 * caller.
 */
describe('failed authentications rate limited per address (e2e)', () => {
  let bridge: TestBridge | undefined;
  const other = new Agent({ localAddress: '127.0.0.2' });
  const INBOUND_TOKEN = 'inbound-token-0123456789';

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });
  afterAll(() => other.close());

  const start = (maxFailures: number, windowMs = 60_000) =>
    startTestBridge({
      api: { authFailures: { maxFailures, windowMs } },
      channels: [{ id: 'wa', provider: 'zapthinker', mode: 'webhook', inbound: { token: INBOUND_TOKEN }, zapthinker: { url: 'http://127.0.0.1:9', instance: 'sales', apiKey: 'zap-key' } }],
    });
  const get = async (path: string, token: string | null, dispatcher?: Agent) => {
    const res = await request(`${bridge!.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, dispatcher });
    const body = await res.body.text();
    return { status: res.statusCode, retryAfter: res.headers['retry-after'], body };
  };
  const handshake = (token: string) =>
    new Promise<{ ok: true } | { ok: false; data: { statusCode: number; retryAfterMs?: number } }>((resolve) => {
      const socket = io(`${bridge!.url}/v1`, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
      socket.on('connect', () => (socket.close(), resolve({ ok: true })));
      socket.on('connect_error', (err: Error & { data?: { statusCode: number } }) => (socket.close(), resolve({ ok: false, data: err.data! })));
    });

  it('blocks the address after maxFailures 401s from any door, lets other addresses and /healthz through, and counts the refusals', async () => {
    bridge = await start(6);
    for (let i = 0; i < 2; i++) expect((await get('/v1/channels', `wrong-token-${i}-0123456789`)).status).toBe(401);
    for (let i = 0; i < 2; i++) expect(await handshake(`wrong-token-${i}-0123456789`)).toEqual({ ok: false, data: expect.objectContaining({ statusCode: 401 }) });
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${bridge.url}/v1/inbound/wa`, { method: 'POST', headers: { 'x-chatbridge-token': 'nope-0123456789abcdef', 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(401);
    }
    // Six failures: the address is blocked for every request, the right token included.
    const blocked = await get('/v1/channels', TEST_TOKEN);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThanOrEqual(59);
    expect(JSON.parse(blocked.body)).toMatchObject({ statusCode: 429, message: expect.stringContaining('too many failed authentications from this address (api.authFailures)'), retryAfterMs: expect.any(Number) });
    expect(await handshake(TEST_TOKEN)).toEqual({ ok: false, data: expect.objectContaining({ statusCode: 429, retryAfterMs: expect.any(Number) }) });
    const inbound = await fetch(`${bridge.url}/v1/inbound/wa`, { method: 'POST', headers: { 'x-chatbridge-token': INBOUND_TOKEN }, body: '{}' });
    expect(inbound.status).toBe(429);
    // Not /v1: health and metrics stay open; another address is not affected.
    expect((await get('/healthz', null)).status).toBe(200);
    expect((await get('/v1/channels', TEST_TOKEN, other)).status).toBe(200);
    const metrics = (await get('/metrics', null)).body;
    expect(metricValue(metrics, 'chatbridge_refused_total', { origin: 'api', reason: 'auth_failures' })).toBe(1);
    expect(metricValue(metrics, 'chatbridge_refused_total', { origin: 'socket.io', reason: 'auth_failures' })).toBe(1);
    expect(metricValue(metrics, 'chatbridge_refused_total', { origin: 'inbound', reason: 'auth_failures' })).toBe(1);
  });

  it('lifts the block after the window: a valid token from that address works again', async () => {
    bridge = await start(3, 1000);
    for (let i = 0; i < 3; i++) expect((await get('/v1/channels', null)).status).toBe(401);
    expect((await get('/v1/channels', TEST_TOKEN)).status).toBe(429);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await get('/v1/channels', TEST_TOKEN)).status).toBe(200);
    expect(await handshake(TEST_TOKEN)).toEqual({ ok: true });
  });

  it('does not count successes, and is off with maxFailures 0', async () => {
    bridge = await start(0);
    for (let i = 0; i < 30; i++) expect((await get('/v1/channels', null)).status).toBe(401);
    expect((await get('/v1/channels', TEST_TOKEN)).status).toBe(200);
    await bridge.close();
    bridge = await start(3);
    for (let i = 0; i < 10; i++) expect((await get('/v1/channels', TEST_TOKEN)).status).toBe(200);
    expect((await get('/v1/channels', null)).status).toBe(401);
    expect((await get('/v1/channels', TEST_TOKEN)).status).toBe(200);
  });
});
