import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';

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
    expect(metrics).toContain('chatbridge_publish_latency_seconds_bucket');
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
