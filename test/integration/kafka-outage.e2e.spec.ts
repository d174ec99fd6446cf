import { readFileSync, existsSync } from 'node:fs';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader } from '../helpers/kafka-reader';

/** Kafka taken away under the bridge: its own broker, so the shared one is never disturbed. */
describe('Kafka outage (e2e, own broker)', () => {
  let broker: TestBroker;
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;

  beforeEach(async () => {
    broker = await startTestBroker({ brokers: 1, topics: [{ name: 'events', partitions: 4 }] });
    sim = new ZapThinkerSimulator({ instances: { sales: { token: 'k' } } });
    await sim.start();
    sim.touch('sales');
  });

  afterEach(async () => {
    await bridge?.close().catch(() => undefined);
    await reader?.stop().catch(() => undefined);
    await sim.stop();
    await broker.stop();
    bridge = undefined;
    reader = undefined;
  });

  const config = (producer: Record<string, unknown> = {}) => ({
    kafka: {
      brokers: broker.bootstrap,
      topics: { events: 'events' },
      connectionTimeoutMs: 500,
      producer: { requestTimeoutMs: 1000, retryMaxDelayMs: 300, warnQueue: 50, ...producer },
    },
    channels: [{ id: 'wa', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'sales', apiKey: 'k' } }],
  });

  const messageTexts = (r: KafkaReader) =>
    r.ofType('chatbridge.message.received').map((x) => (JSON.parse(x.value!) as { message: { text: string } }).message.text);

  it('queues events while Kafka is down and delivers all of them, in order, once it returns', async () => {
    bridge = await startTestBridge(config());
    await sim.waitForClients('sales', 1);
    sim.sendMessage('sales', { remoteJid: '551100', text: 'm0' });
    await waitFor('first event acked', async () => metricValue((await bridge!.get('/metrics')).text, 'chatbridge_events_out_total', { sink: 'kafka', type: 'chatbridge.message.received' }) === 1);
    expect((await bridge.get('/readyz', null)).status).toBe(200);

    await broker.down();
    for (let i = 1; i <= 300; i++) sim.sendMessage('sales', { remoteJid: `55110${i % 3}`, text: `m${i}` });
    await waitFor('readiness false while Kafka is down', async () => (await bridge!.get('/readyz', null)).status === 503);
    const ready = (await bridge.get('/readyz', null)).body as { sinks: Array<{ name: string; ready: boolean; queued: number }> };
    expect(ready.sinks[0]).toMatchObject({ name: 'kafka', ready: false });
    expect(ready.sinks[0].queued).toBeGreaterThanOrEqual(300);
    const m = (await bridge.get('/metrics')).text;
    expect(metricValue(m, 'chatbridge_sink_queue_depth', { sink: 'kafka' })).toBeGreaterThanOrEqual(300);
    expect(metricValue(m, 'chatbridge_sink_up', { sink: 'kafka' })).toBe(0);

    await broker.up();
    reader = new KafkaReader(broker.bootstrap, ['events']);
    await reader.start();
    await reader.waitFor('all 301 messages', () => reader!.ofType('chatbridge.message.received').length >= 301, 30_000);
    await waitFor('readiness back', async () => (await bridge!.get('/readyz', null)).status === 200);

    // Nothing lost; order per conversation kept. Retries after a failed batch may repeat records (at least
    // once): consumers dedupe by ce_id, so the check is on distinct ids.
    const received = reader.ofType('chatbridge.message.received');
    const distinct = new Map(received.map((r) => [r.headers.ce_id, r]));
    expect(distinct.size).toBe(301);
    const texts = messageTexts(reader);
    for (const conv of ['551100', '551101', '551102']) {
      const seq = received.filter((r) => r.key === `wa:${conv}@s.whatsapp.net`).map((r) => Number((JSON.parse(r.value!) as { message: { text: string } }).message.text.slice(1)));
      const firstSeen = seq.filter((n, i) => seq.indexOf(n) === i);
      expect(firstSeen).toEqual([...firstSeen].sort((a, b) => a - b));
    }
    expect(texts).toContain('m300');
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_sink_queue_depth', { sink: 'kafka' })).toBe(0);
  });

  it('dead-letters to the file what exceeds the queue bound, and what is still queued at shutdown', async () => {
    bridge = await startTestBridge(config({ maxQueue: 100 }));
    await sim.waitForClients('sales', 1);
    await waitFor('kafka up', async () => (await bridge!.get('/readyz', null)).status === 200);
    await broker.down();
    // channel.status events may also take queue slots; 150 messages overflow a 100-event queue either way.
    for (let i = 0; i < 150; i++) sim.sendMessage('sales', { remoteJid: '551199', text: `x${i}` });
    await waitFor('overflow written', () => existsSync(bridge!.deadLetterFile) && readFileSync(bridge!.deadLetterFile, 'utf8').split('\n').filter(Boolean).length >= 50);
    const overflow = readFileSync(bridge.deadLetterFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { reason: string; origin: string; event: { id: string; type: string; data: { message: { text: string } } } });
    expect(new Set(overflow.map((o) => o.reason))).toEqual(new Set(['queue_full']));
    expect(overflow.every((o) => o.origin === 'kafka' && o.event.type === 'chatbridge.message.received')).toBe(true);
    expect(overflow.at(-1)!.event.data.message.text).toBe('x149');
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_dead_letters_total', { target: 'file', reason: 'queue_full' })).toBe(overflow.length);

    // Shutdown with Kafka still down: the queued events are written to the file, not dropped.
    const queued = ((await bridge.get('/readyz', null)).body as { sinks: Array<{ queued: number }> }).sinks[0].queued;
    expect(queued).toBe(100);
    const file = bridge.deadLetterFile;
    await bridge.close();
    bridge = undefined;
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { reason: string; event: { type: string; data: { message?: { text: string } } } });
    const atShutdown = lines.filter((l) => l.reason === 'shutdown');
    expect(atShutdown).toHaveLength(100);
    // Every message is either delivered (none: Kafka was down) or in the file: none lost.
    const texts = new Set(lines.map((l) => l.event.data.message?.text).filter(Boolean));
    for (let i = 0; i < 150; i++) expect(texts).toContain(`x${i}`);
  });
});
