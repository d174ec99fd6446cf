import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, waitFor, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';

/** No Kafka configured: events go to stdout as JSON lines; the HTTP surface works the same. */
describe('embedded mode and the HTTP surface (e2e)', () => {
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;
  const SECRET = 'sk-very-secret-instance-key-42';

  beforeEach(async () => {
    sim = new ZapThinkerSimulator({ instances: { sales: { token: SECRET } } });
    await sim.start();
    sim.touch('sales');
  });
  afterEach(async () => {
    await bridge?.close();
    await sim.stop();
    bridge = undefined;
  });

  const channels = () => [{ id: 'wa-sales', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'sales', apiKey: SECRET } }];

  it('writes every event to stdout as a structured CloudEvent JSON line', async () => {
    bridge = await startTestBridge({ channels: channels() });
    await sim.waitForClients('sales', 1);
    const sent = sim.sendMessage('sales', { remoteJid: '5511988887777', text: 'embedded', timestamp: 1717604327 });
    const line = await waitFor('stdout event', () => bridge!.stdoutEvents().find((e) => e.type === 'chatbridge.message.received'));
    expect(line).toMatchObject({
      specversion: '1.0',
      source: '/chatbridge/zapthinker/wa-sales',
      subject: '5511988887777@s.whatsapp.net',
      time: '2024-06-05T16:18:47.000Z',
      datacontenttype: 'application/json',
      partitionkey: 'wa-sales:5511988887777@s.whatsapp.net',
      channelid: 'wa-sales',
      provider: 'zapthinker',
      data: { message: { id: sent.key.id, text: 'embedded', direction: 'inbound' } },
    });
    expect(bridge.stdoutEvents().map((e) => e.type)).toContain('chatbridge.channel.status');
    const metrics = (await bridge.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_events_in_total', { channel: 'wa-sales', type: 'chatbridge.message.received' })).toBe(1);
    expect(metricValue(metrics, 'chatbridge_events_out_total', { sink: 'stdout', type: 'chatbridge.message.received' })).toBe(1);
    expect(metrics).toContain('chatbridge_publish_duration_seconds_bucket');
  });

  it('serves health, readiness with channel states, and protects /v1 with bearer tokens', async () => {
    bridge = await startTestBridge({ channels: channels() });
    await sim.waitForClients('sales', 1);
    expect(await bridge.get('/healthz', null)).toMatchObject({ status: 200, body: { status: 'ok' } });
    await waitFor('ready', async () => (await bridge!.get('/readyz', null)).status === 200);
    const ready = await bridge.get('/readyz', null);
    expect(ready.body).toMatchObject({ status: 'ready', sinks: [{ name: 'stdout', ready: true }], channels: [{ id: 'wa-sales', provider: 'zapthinker', mode: 'socket', state: 'connected' }] });

    expect(await bridge.get('/v1/channels', null)).toMatchObject({ status: 401, body: { statusCode: 401, message: expect.stringContaining('Authorization: Bearer') } });
    expect(await bridge.get('/v1/channels', 'wrong')).toMatchObject({ status: 401, body: { message: 'invalid bearer token' } });
    const list = await bridge.get('/v1/channels');
    expect(list.status).toBe(200);
    expect((list.body as { channels: unknown[] }).channels).toEqual([
      expect.objectContaining({ id: 'wa-sales', provider: 'zapthinker', mode: 'socket', state: 'connected', reconnects: 0 }),
    ]);
    sim.sendMessage('sales', { remoteJid: '5511900000001', text: 'x' });
    await waitFor('lastEventAt', async () => ((await bridge!.get('/v1/channels/wa-sales')).body as { lastEventAt?: string }).lastEventAt);
    expect(await bridge.get('/v1/channels/nope')).toMatchObject({ status: 404, body: { message: 'no channel with id "nope"' } });
  });

  it('refuses every /v1 call with a clear message when no API tokens are configured', async () => {
    bridge = await startTestBridge({ channels: channels() }, { CHATBRIDGE_API_TOKENS: '' });
    const res = await bridge.get('/v1/channels', 'anything');
    expect(res.status).toBe(401);
    expect((res.body as { message: string }).message).toContain('set CHATBRIDGE_API_TOKENS');
  });

  it('writes one access log line per request with its request id (taken when valid, else generated), probes at debug, no query secrets', async () => {
    const lines: string[] = [];
    const INBOUND_TOKEN = 'inbound-token-abcdef0123456789';
    bridge = await startTestBridge({ channels: [{ ...channels()[0], inbound: { token: INBOUND_TOKEN } }] }, {}, { level: 'debug', lines });
    const call = (path: string, init: RequestInit = {}) => fetch(`${bridge!.url}${path}`, init);
    const auth = { authorization: `Bearer ${TEST_TOKEN}` };

    const taken = await call('/v1/channels', { headers: { ...auth, 'x-request-id': 'req-1234.abc:7' } });
    expect(taken.status).toBe(200);
    expect(taken.headers.get('x-request-id')).toBe('req-1234.abc:7');
    // Too long, or characters outside the allowed set: replaced by a generated id.
    const tooLong = await call('/v1/channels', { headers: { ...auth, 'x-request-id': 'x'.repeat(129) } });
    const spaced = await call('/v1/channels/nope?token=query-secret-1&sig=query-secret-2&cursor=5', { headers: { ...auth, 'x-request-id': 'two words' } });
    expect(spaced.status).toBe(404);
    const generated = [tooLong.headers.get('x-request-id'), spaced.headers.get('x-request-id')];
    for (const id of generated) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // An inbound post with a wrong token and its secrets in the query string; a probe and a scrape.
    const post = await call(`/v1/inbound/wa-sales?token=${INBOUND_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-chatbridge-token': 'wrong-token-000000000000' }, body: '{}' });
    expect(post.status).toBe(401);
    expect((await call('/healthz')).headers.get('x-request-id')).toBeTruthy();
    await call('/metrics');

    const access = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => typeof l.requestId === 'string' && typeof l.status === 'number');
    await waitFor('access lines', () => access().length >= 6);
    const byId = (id: string | null) => access().find((l) => l.requestId === id);
    expect(byId('req-1234.abc:7')).toMatchObject({ level: 'info', method: 'GET', path: '/v1/channels', status: 200, remoteAddress: expect.stringContaining('127.0.0.1'), msg: 'GET /v1/channels 200' });
    expect(byId('req-1234.abc:7')!.durationMs).toEqual(expect.any(Number));
    expect(byId('req-1234.abc:7')!.bytes).toBeGreaterThan(100);
    expect(byId(generated[1])).toMatchObject({ level: 'info', path: '/v1/channels/nope', status: 404 });
    expect(access().find((l) => l.path === '/v1/inbound/wa-sales')).toMatchObject({ level: 'info', method: 'POST', status: 401 });
    expect(access().filter((l) => l.path === '/healthz' || l.path === '/metrics').map((l) => l.level)).toEqual(['debug', 'debug']);
    const all = lines.join('\n');
    for (const secret of ['query-secret-1', 'query-secret-2', INBOUND_TOKEN, 'wrong-token-000000000000', TEST_TOKEN, 'x'.repeat(129)]) expect(all).not.toContain(secret);
  });

  it('counts every reconnect attempt in chatbridge_reconnects_total, also a failure repeated in the same state', async () => {
    sim.rejectAuth(true);
    bridge = await startTestBridge({ channels: channels() });
    const attempts = async () => ((await bridge!.get('/v1/channels/wa-sales')).body as { reconnects: number }).reconnects;
    await waitFor('three attempts', async () => (await attempts()) >= 3, 10_000);
    const counted = metricValue((await bridge.get('/metrics')).text, 'chatbridge_reconnects_total', { channel: 'wa-sales' });
    expect(counted).toBeGreaterThanOrEqual(3);
    expect(counted).toBeLessThanOrEqual(await attempts());
    // The status stream reported auth_failed once: repeats of the same state for the same reason are not republished.
    expect(bridge.stdoutEvents().filter((e) => e.type === 'chatbridge.channel.status' && (e.data as { status: { state: string } }).status.state === 'auth_failed')).toHaveLength(1);
    sim.rejectAuth(false);
  });

  it('never writes the upstream API key to the logs, even in URLs of failed connections', async () => {
    const lines: string[] = [];
    sim.rejectAuth(true);
    bridge = await startTestBridge({ channels: channels() }, {}, { level: 'trace', lines });
    await waitFor('auth_failed', async () => ((await bridge!.get('/v1/channels/wa-sales')).body as { state: string }).state === 'auth_failed');
    sim.rejectAuth(false);
    await waitFor('connected', async () => ((await bridge!.get('/v1/channels/wa-sales')).body as { state: string }).state === 'connected', 10_000);
    sim.sendMessage('sales', { remoteJid: '5511900000002', text: 'logged?' });
    await waitFor('event', () => bridge!.stdoutEvents().some((e) => e.type === 'chatbridge.message.received'));
    await bridge.close();
    bridge = undefined;
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.join('\n')).not.toContain(SECRET);
  });
});
