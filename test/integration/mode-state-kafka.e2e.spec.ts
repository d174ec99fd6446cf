import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { startTestBridge, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';

/**
 * With Kafka, a channel's runtime mode lives in the compacted state topic (`kafka.topics.state`), so it survives a
 * restart on another machine: every restart here gets a fresh stateDir. A switch whose record Kafka does not
 * acknowledge is refused (503) and changes nothing.
 */
describe('channel mode persisted in the Kafka state topic (e2e)', () => {
  const TOKEN = 'inbound-token-0123456789';
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;
  let broker: TestBroker | undefined;

  beforeEach(async () => {
    sim = new ZapThinkerSimulator({ instances: { sales: { token: 'tok-sales' }, support: { token: 'tok-support' } } });
    await sim.start();
    sim.touch('sales');
    sim.touch('support');
  });

  afterEach(async () => {
    await bridge?.close();
    await reader?.stop();
    await sim.stop();
    await broker?.stop();
    bridge = undefined;
    reader = undefined;
    broker = undefined;
  });

  // wa-support stays in socket mode: once it is connected, wa-sales would have connected too if it were to.
  const channels = () => [
    { id: 'wa-sales', provider: 'zapthinker', inbound: { token: TOKEN }, zapthinker: { url: sim.url, instance: 'sales', apiKey: 'tok-sales', connectTimeoutMs: 2000 } },
    { id: 'wa-support', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'support', apiKey: 'tok-support', connectTimeoutMs: 2000 } },
  ];
  const put = async (mode: string) => {
    const res = await fetch(`${bridge!.url}/v1/channels/wa-sales/mode`, {
      method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKEN}` }, body: JSON.stringify({ mode }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const salesHandshakes = () => sim.handshakes.filter((h) => h.apikey === 'tok-sales').length;
  const modesOf = (records: ReadRecord[], key: string) => records.filter((r) => r.key === key).map((r) => (r.value === null ? null : (JSON.parse(r.value) as { mode: string }).mode));
  const channelMode = async () => ((await bridge!.get('/v1/channels/wa-sales')).body as { mode: string }).mode;

  it('a switch is written to the state topic and restored by a restart with a fresh stateDir, in both directions', async () => {
    const kafka = { brokers: sharedBrokers(), topics: { events: uniqueTopic('events'), state: uniqueTopic('state') } };
    reader = new KafkaReader(sharedBrokers(), [kafka.topics.state]);
    const readerStarted = reader.start();
    bridge = await startTestBridge({ kafka, channels: channels() });
    await readerStarted;
    await sim.waitForClients('sales', 1);

    expect(await put('webhook')).toMatchObject({ status: 200, body: { mode: 'webhook', previousMode: 'socket', changed: true } });
    const [record] = (await reader.waitFor('the webhook record', (r) => r.length >= 1)).filter((r) => r.key === 'wa-sales');
    expect(JSON.parse(record.value!)).toEqual({ mode: 'webhook', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    await bridge.close();

    const before = salesHandshakes();
    const logs = { level: 'info', lines: [] as string[] };
    bridge = await startTestBridge({ kafka, channels: channels() }, {}, logs);
    await sim.waitForClients('support', 1);
    expect(salesHandshakes()).toBe(before);
    expect(sim.connectedClients('sales')).toBe(0);
    expect((await bridge.get('/v1/channels/wa-sales')).body).toMatchObject({ mode: 'webhook', state: 'inbound' });
    expect(logs.lines.some((l) => l.includes(`mode webhook restored from topic ${kafka.topics.state}`) && l.includes('"channel":"wa-sales"'))).toBe(true);

    expect(await put('socket')).toMatchObject({ status: 200, body: { mode: 'socket', socket: 'connected' } });
    await reader.waitFor('the socket record', (r) => modesOf(r, 'wa-sales').length >= 2);
    expect(modesOf(reader.records, 'wa-sales')).toEqual(['webhook', 'socket']);
    await bridge.close();

    bridge = await startTestBridge({ kafka, channels: channels() });
    await sim.waitForClients('sales', 1);
    expect(await channelMode()).toBe('socket');
  }, 40_000);

  it('Kafka down: the switch is refused with 503 and nothing changes; a start that cannot read the topic uses stateDir, with a warning', async () => {
    broker = await startTestBroker({ brokers: 1, topics: [{ name: 'events', partitions: 1 }, { name: 'state', partitions: 1 }] });
    const stateDir = mkdtempSync(join(tmpdir(), 'mode-state-kafka-'));
    const config = { kafka: { brokers: broker.bootstrap, topics: { events: 'events', state: 'state' }, connectionTimeoutMs: 500, producer: { requestTimeoutMs: 1000, retryMaxDelayMs: 300 } }, stateDir, channels: channels() };
    bridge = await startTestBridge(config);
    await sim.waitForClients('sales', 1);

    await broker.down();
    const refused = await put('webhook');
    expect(refused).toEqual({ status: 503, body: { statusCode: 503, error: 'Service Unavailable', message: expect.stringContaining('channel wa-sales was not switched and stays in socket mode') } });
    expect(refused.body.message).toContain('topic state');
    expect(await channelMode()).toBe('socket');
    expect(sim.connectedClients('sales')).toBe(1);

    // Kafka back: the same switch goes through and is the only record.
    await broker.up();
    expect(await put('webhook')).toMatchObject({ status: 200, body: { mode: 'webhook' } });
    reader = new KafkaReader(broker.bootstrap, ['state']);
    await reader.start();
    await reader.waitFor('the webhook record', (r) => r.length >= 1);
    expect(modesOf(reader.records, 'wa-sales')).toEqual(['webhook']);
    // Closed while Kafka is up: a consumer that loses its broker keeps trying to rejoin.
    await reader.stop();
    reader = undefined;
    await bridge.close();

    // Kafka unreachable at the next start: the mode kept in stateDir applies, and the log says what was not restored.
    await broker.down();
    const before = salesHandshakes();
    const logs = { level: 'warn', lines: [] as string[] };
    bridge = await startTestBridge(config, {}, logs);
    await sim.waitForClients('support', 1);
    expect(salesHandshakes()).toBe(before);
    expect(await channelMode()).toBe('webhook');
    expect(logs.lines.some((l) => l.includes('channel modes not restored from topic state') && l.includes('wa-sales=webhook'))).toBe(true);
  }, 40_000);
});
