import { createServer, type Server, type Socket } from 'node:net';
import type { BridgeProcess } from '../helpers/bridge-process';
import { metricValue } from '../helpers/bridge-harness';
import { KafkaReader, uniqueTopic } from '../helpers/kafka-reader';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { deadLetters, expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

const API_KEY = 'zap-token-0123';
const PRODUCE = 0;
const MESSAGE_TOO_LARGE = 10;

/** The message text of a canonical event's data (what the simulator sent). */
const textOf = (data: unknown) => (data as { message?: { text?: string } } | undefined)?.message?.text;

/**
 * The Kafka sink against the built bridge: the broker refusing records (MESSAGE_TOO_LARGE) while events flow costs
 * only the refused records, which are in the dead-letter file; SIGTERM with a broker that accepts connections and
 * never answers ends within the grace period with every queued event in the dead-letter file.
 */
describe('fault rows: Kafka sink', () => {
  let zap: ZapThinkerSimulator;
  let bridge: BridgeProcess | undefined;
  let broker: TestBroker | undefined;
  let reader: KafkaReader | undefined;
  let blackhole: Server | undefined;
  const held: Socket[] = [];

  beforeEach(async () => {
    zap = new ZapThinkerSimulator({ instances: { sales: { token: API_KEY } } });
    await zap.start();
    zap.touch('sales');
  });

  afterEach(async () => {
    await bridge?.kill();
    await reader?.stop();
    await broker?.stop();
    for (const s of held) s.destroy();
    await new Promise((r) => (blackhole ? blackhole.close(r) : r(undefined)));
    await zap.stop();
    bridge = reader = broker = blackhole = undefined;
  });

  const channel = () => ({ id: 'wa', provider: 'zapthinker', zapthinker: { url: zap.url.replace(/^http/, 'ws'), instance: 'sales', apiKey: API_KEY } });
  const connected = async (b: BridgeProcess) => until('wa connected', async () => ((await b.request('GET', '/v1/channels/wa')).body as { state?: string }).state === 'connected', 30_000);

  it('broker refuses produce requests with MESSAGE_TOO_LARGE while events flow: only refused records dead-lettered, the rest in Kafka, none lost', async () => {
    const RSS_BOUND_MIB = 300;
    const REFUSALS = 6;
    // Its own broker: the injected errors hit every producer of the cluster.
    broker = await startTestBroker({ brokers: 1 });
    const topics = { events: uniqueTopic('events'), deadLetter: uniqueTopic('dlq') };
    reader = new KafkaReader(broker.bootstrap, [topics.events]);
    await reader.start();
    bridge = await startBuiltBridge('faults-kafka-refusal', {
      kafka: { brokers: broker.bootstrap, topics, producer: { retryMaxDelayMs: 200 } },
      cluster: { enabled: false },
      channels: [channel()],
    });
    await connected(bridge);
    const sent: string[] = [];
    const emit = (n: number) => {
      for (let i = 0; i < n; i++) {
        const text = `f${sent.length}`;
        sent.push(text);
        zap.sendMessage('sales', { remoteJid: `55110${sent.length % 5}`, text });
      }
    };
    const inKafka = () => new Set(reader!.ofType('chatbridge.message.received').map((r) => textOf(JSON.parse(r.value ?? 'null'))));
    emit(100);
    await until('the first 100 in Kafka', () => inKafka().size >= 100, 20_000);

    // The next produce requests are refused as too large; events keep coming while they are.
    await broker.pushRequestErrors(PRODUCE, REFUSALS, MESSAGE_TOO_LARGE);
    for (let round = 0; round < 20; round++) {
      emit(20);
      await new Promise((r) => setTimeout(r, 25));
    }
    const healthzMs = await expectHealthy(bridge);
    const last = sent.at(-1)!;
    await until('the last event in Kafka', () => inKafka().has(last), 30_000);
    const dead = deadLetters(bridge).filter((d) => d.reason === 'kafka_record_refused');
    const deadTexts = new Set(dead.map((d) => textOf((d.event as { data?: unknown }).data)));
    const kafka = inKafka();
    const lost = sent.filter((t) => !kafka.has(t) && !deadTexts.has(t));
    const rss = rssMiB(bridge.pid);
    const refusedMetric = metricValue(await (await fetch(`${bridge.url}/metrics`)).text(), 'chatbridge_refused_total', { origin: 'kafka', reason: 'kafka_record_refused' });

    expect(lost).toEqual([]);
    // Each injected refusal costs at most one record (a refused batch is split; only a record refused alone is dead-lettered).
    expect(dead.length).toBeGreaterThanOrEqual(1);
    expect(dead.length).toBeLessThanOrEqual(REFUSALS);
    expect(dead.every((d) => d.origin === 'kafka' && String(d.error).startsWith('MESSAGE_TOO_LARGE'))).toBe(true);
    expect(refusedMetric).toBe(dead.length);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    await expectHealthy(bridge);
    report('kafka/produce-refused-message-too-large', {
      injected: REFUSALS, sent: sent.length, inKafka: sent.filter((t) => kafka.has(t)).length, deadLettered: dead.length, lost: lost.length,
      healthzMs: Math.round(healthzMs), rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB,
    });
  });

  it('SIGTERM with 50,000 events queued and a broker that accepts connections and never answers: exit within the grace period, every event in the dead-letter file', async () => {
    const EVENTS = 50_000;
    const GRACE_MS = 5000;
    const MARGIN_MS = 1000;
    const RSS_BOUND_MIB = 450;
    blackhole = createServer((s) => {
      held.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => blackhole!.listen(0, '127.0.0.1', r));
    const port = (blackhole.address() as { port: number }).port;
    bridge = await startBuiltBridge('faults-kafka-blackhole', {
      kafka: { brokers: [`127.0.0.1:${port}`], topics: { events: uniqueTopic('events') } },
      cluster: { enabled: false },
      shutdownGraceMs: GRACE_MS,
      channels: [channel()],
    });
    await connected(bridge);
    const b = bridge;
    const sent = (await zap.burst('sales', EVENTS, { conversations: 50, perTick: 500 })).map((d) => d.message.conversation as string);
    const queued = async () => metricValue(await (await fetch(`${b.url}/metrics`)).text(), 'chatbridge_sink_queue_depth', { sink: 'kafka' });
    await until(`${EVENTS} events queued`, async () => (await queued()) >= EVENTS, 90_000);
    const depth = await queued();
    const healthzMs = await expectHealthy(b);
    const rss = rssMiB(b.pid);

    const t0 = performance.now();
    const exit = await b.signal('SIGTERM');
    const exitMs = Math.round(performance.now() - t0);
    const dead = deadLetters(b);
    const inFile = new Set(dead.filter((d) => d.origin === 'kafka').map((d) => textOf((d.event as { data?: unknown }).data)));
    const lost = sent.filter((t) => !inFile.has(t));

    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitMs).toBeLessThan(GRACE_MS + MARGIN_MS);
    expect(lost).toEqual([]);
    expect(new Set(dead.map((d) => d.reason))).toEqual(new Set(['shutdown']));
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('kafka/sigterm-broker-never-answers', {
      sent: sent.length, queuedAtSigterm: depth, inKafka: 0, deadLettered: inFile.size, lost: lost.length, exitCode: String(exit.code),
      exitMs, graceMs: GRACE_MS, healthzMs: Math.round(healthzMs), rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB,
    });
  }, 180_000);
});
