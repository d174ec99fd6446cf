import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import type { EvolutionMessageData } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, waitFor, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';

/**
 * docs/modes.md: `PUT /v1/channels/:id/mode` under a steady stream of upstream events. The simulator emits a message
 * every 20 ms on its socket and, while its webhook is set, POSTs it to the bridge too; a Kafka consumer must
 * see every upstream message exactly once across socket → webhook → socket.
 */
describe('switching a channel\'s mode under a steady stream (e2e, Kafka)', () => {
  const TOKEN = 'inbound-token-0123456789';
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge;
  let reader: KafkaReader;
  let emitter: NodeJS.Timeout | undefined;
  const sent: EvolutionMessageData[] = [];

  beforeAll(async () => {
    sim = new ZapThinkerSimulator({ instances: { sales: { token: 'tok-sales' } } });
    await sim.start();
    sim.touch('sales');
    const topic = uniqueTopic('events');
    reader = new KafkaReader(sharedBrokers(), [topic]);
    const started = startTestBridge({
      kafka: { brokers: sharedBrokers(), topics: { events: topic, state: uniqueTopic('state') } },
      modeSwitch: { overlapMs: 20_000, connectWaitMs: 10_000 },
      channels: [{ id: 'wa-sales', provider: 'zapthinker', inbound: { token: TOKEN }, zapthinker: { url: sim.url, instance: 'sales', apiKey: 'tok-sales', connectTimeoutMs: 2000 } }],
    });
    await reader.start();
    bridge = await started;
  });

  afterAll(async () => {
    clearInterval(emitter);
    await sim.webhooksIdle();
    await bridge.close();
    await reader.stop();
    await sim.stop();
  });

  const put = async (mode: string) => {
    const res = await fetch(`${bridge.url}/v1/channels/wa-sales/mode`, {
      method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKEN}` }, body: JSON.stringify({ mode }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** The operator's side of a switch: points Evolution's webhook at the bridge, or turns it off. */
  const setUpstreamWebhook = async (enabled: boolean) => {
    const res = await fetch(`${sim.url}/webhook/set/sales`, {
      method: 'POST', headers: { 'content-type': 'application/json', apikey: 'tok-sales' },
      body: JSON.stringify({ webhook: { enabled, url: `${bridge.url}/v1/inbound/wa-sales`, headers: { 'x-chatbridge-token': TOKEN } } }),
    });
    expect(res.status).toBe(201);
  };
  const sentAtLeast = (n: number) => waitFor(`${n} upstream messages`, () => sent.length >= n);

  it('every upstream message reaches Kafka exactly once across socket → webhook → socket', async () => {
    await sim.waitForClients('sales', 1);
    let i = 0;
    emitter = setInterval(() => {
      i++;
      sent.push(sim.sendMessage('sales', { remoteJid: `55119000000${i % 3}@s.whatsapp.net`, text: `m${i}` }));
    }, 20);
    await sentAtLeast(10);

    // socket → webhook: posts are taken at once; the socket closes after the first one was accepted.
    await setUpstreamWebhook(true);
    const toWebhook = await put('webhook');
    expect(toWebhook).toEqual({ status: 200, body: { id: 'wa-sales', mode: 'webhook', previousMode: 'socket', changed: true, socket: 'closing_after_first_inbound', state: 'connected', overlapMs: 20_000 } });
    await waitFor('the socket to close after the first inbound post', () => sim.connectedClients('sales') === 0);
    // Receiving through its inbound route: `inbound`, not `disconnected` (nothing is down).
    await waitFor('the channel inbound', async () => ((await bridge.get('/v1/channels/wa-sales')).body as { state: string }).state === 'inbound');
    expect((await bridge.get('/v1/channels/wa-sales')).body).toMatchObject({ mode: 'webhook', state: 'inbound' });
    const inWebhookMode = (await bridge.get('/metrics')).text;
    expect(metricValue(inWebhookMode, 'chatbridge_channel_state', { channel: 'wa-sales', state: 'inbound' })).toBe(1);
    expect(metricValue(inWebhookMode, 'chatbridge_channel_state', { channel: 'wa-sales', state: 'disconnected' })).toBe(0);
    await sentAtLeast(sent.length + 10);

    // webhook → socket: answered once connected; the upstream keeps posting for a while, then is turned off.
    const toSocket = await put('socket');
    expect(toSocket).toEqual({ status: 200, body: { id: 'wa-sales', mode: 'socket', previousMode: 'webhook', changed: true, socket: 'connected', state: 'connected' } });
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_channel_state', { channel: 'wa-sales', state: 'inbound' })).toBe(0);
    expect(sim.connectedClients('sales')).toBe(1);
    await sentAtLeast(sent.length + 5);
    await setUpstreamWebhook(false);
    await sentAtLeast(sent.length + 10);
    clearInterval(emitter);
    await sim.webhooksIdle();
    expect(sim.webhookDeliveries.length).toBeGreaterThan(10);
    expect(sim.webhookDeliveries.filter((d) => d.status !== 200)).toEqual([]);

    const ids = sent.map((m) => m.key.id);
    await reader.waitFor(`all ${ids.length} messages`, () => new Set(reader.ofType('chatbridge.message.received').map((r) => r.headers.ce_id)).size >= ids.length);
    const text = (await bridge.get('/metrics')).text;
    // The pipeline published each message once; the copies of the overlaps were dropped by id.
    expect(metricValue(text, 'chatbridge_events_in_total', { channel: 'wa-sales', type: 'chatbridge.message.received' })).toBe(ids.length);
    expect(metricValue(text, 'chatbridge_events_deduplicated_total', { channel: 'wa-sales' })).toBeGreaterThan(0);
    const records = reader.ofType('chatbridge.message.received');
    expect(records).toHaveLength(ids.length);
    expect(new Set(records.map((r) => r.headers.ce_id)).size).toBe(ids.length);
    const upstreamIds = records.map((r) => (JSON.parse(r.value ?? '{}') as { message: { id: string } }).message.id);
    expect([...upstreamIds].sort()).toEqual([...ids].sort());

    // Each switch is recorded as a channel.status event (channel-keyed: its own partition, waited for on its own).
    await reader.waitFor('mode_changed status events', () => modeChanges().length === 2);
    expect(modeChanges()).toEqual([
      expect.objectContaining({ reason: 'mode_changed', mode: 'webhook', previousMode: 'socket' }),
      expect.objectContaining({ reason: 'mode_changed', mode: 'socket', previousMode: 'webhook' }),
    ]);
    // The channel's states in order: the socket overlapped, closed into `inbound`, and the way back starts from there.
    await reader.waitFor('the reconnect after the switch back', () => statuses().filter((s) => s.state === 'connected').length >= 3);
    expect(statuses().map((s) => `${s.previous}>${s.state}${s.reason ? `:${s.reason}` : ''}`)).toEqual([
      'disconnected>connecting', 'connecting>connected',
      'connected>connected:mode_changed', 'connected>inbound:stopped',
      'inbound>disconnected:mode_changed', 'disconnected>connecting', 'connecting>connected',
    ]);
  });

  const statuses = () => reader.ofType('chatbridge.channel.status').map((r) => (JSON.parse(r.value ?? '{}') as { status: { state: string; previous?: string; reason?: string } }).status);

  const modeChanges = () => reader.ofType('chatbridge.channel.status')
    .map((r) => (JSON.parse(r.value ?? '{}') as { status: Record<string, unknown> }).status)
    .filter((s) => s.reason === 'mode_changed');
});
