/**
 * `npm run bench`: N events from the ZapThinker simulator (own process) through the bridge into the test
 * broker (librdkafka mock cluster), against a raw kafkajs producer sending the same records in the same run;
 * then N events through the bridge's webhook delivery to a local receiver, against a raw undici pool (webhooks.ts).
 * Prints events/s and p50/p99 latency for both, and the ratios. Bounded: BENCH_EVENTS (default 20000).
 */
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { Histogram, Registry } from 'prom-client';
import { histogramQuantiles, median, type Result } from './stats';
import { startChild, zapthinkerEvents } from './fixtures';
import { startBridge } from '../src/boot/bootstrap';
import { createRootLogger } from '../src/common/logger';
import { loadConfig } from '../src/config/config.loader';
import { toKafkaMessage } from '../src/sinks/kafka/kafka.record';
import { startTestBroker } from '../test/kafka/test-broker';
import { benchVisitorScale, visitorLines } from './connections';
import { benchWebhooks, type WebhookBench } from './webhooks';
import { benchCommands, type CommandBench, type Paced } from './commands';
import { rawPipe } from './raw-pipe';
import { fixKafkaJsEncoder } from '../src/kafka/encoder-fix';
import { javaCompatiblePartitioner } from '../src/kafka/partitioner';
import { fixKafkaJsRequestQueue } from '../src/kafka/request-queue-fix';
import { createEvent } from '../src/envelope/envelope';
import { Metrics } from '../src/health/metrics';
import { EventPipeline } from '../src/pipeline/pipeline';

const N = Number(process.env.BENCH_EVENTS ?? 20_000);
const CONVERSATIONS = 200;
const BATCH = 500;
/** Events each socket -> Kafka path (the raw pipe, the bridge in each mode) handles before it is measured: enough for the JIT to settle on its code. */
const WARMUP = 5 * BATCH;
const PACED_RATE = Number(process.env.BENCH_RATE ?? 2000);
const PACED_EVENTS = PACED_RATE * 5;
const WEBHOOK_CONCURRENCY = [8, 32];
/** Rounds of the saturated phase (raw pipe, bridge binary, bridge structured, in turn); each row is the median of its rounds. */
const SATURATED_ROUNDS = Math.max(1, Number(process.env.BENCH_SATURATED_ROUNDS ?? 5) || 1);
const COMMANDS = Number(process.env.BENCH_COMMANDS ?? 5000);
const COMMAND_CONCURRENCY = 16;
const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30];

async function startSimProcess() {
  const sim = await startChild('sim-process.ts');
  return {
    url: sim.url,
    burst: async (n: number, conv: number) => void (await sim.ask(`burst ${n} ${conv}`)),
    paced: async (n: number, perSecond: number) => void (await sim.ask(`paced ${n} ${perSecond}`)),
    stop: () => sim.kill(),
  };
}

/** The same records the bridge produces, built in memory from real-shaped frames. */
function sameRecords(n: number) {
  return zapthinkerEvents(n, CONVERSATIONS).map((event) => toKafkaMessage(event));
}

async function rawBaseline(brokers: string[]): Promise<Result> {
  const records = sameRecords(N);
  const kafka = new Kafka({ clientId: 'bench-raw', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: javaCompatiblePartitioner });
  await producer.connect();
  const registry = new Registry();
  const h = new Histogram({ name: 'raw_latency', help: 'raw', buckets: BUCKETS, registers: [registry] });
  await producer.send({ topic: 'bench-raw', acks: -1, messages: records.slice(0, BATCH) }); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < records.length; i += BATCH) {
    const start = performance.now();
    const batch = records.slice(i, i + BATCH);
    await producer.send({ topic: 'bench-raw', acks: -1, compression: CompressionTypes.GZIP, messages: batch });
    const took = (performance.now() - start) / 1000;
    for (let j = 0; j < batch.length; j++) h.observe(took);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await producer.disconnect();
  const q = await histogramQuantiles(h);
  return { label: 'raw kafkajs (same records, 500/request; 1 run)', eventsPerSec: N / seconds, p50ms: q.p50, p99ms: q.p99, cpuUsPerEvent: (cpu.user + cpu.system) / N };
}

/**
 * A minimal hand-written pipe at the same steady rate: records arrive every 10 ms, one produce request in
 * flight carrying everything queued. Latency = arrival -> ack.
 */
async function rawPaced(brokers: string[]): Promise<Result> {
  const records = sameRecords(PACED_EVENTS);
  const kafka = new Kafka({ clientId: 'bench-raw-paced', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: javaCompatiblePartitioner });
  await producer.connect();
  const registry = new Registry();
  const h = new Histogram({ name: 'raw_paced_latency', help: 'raw', buckets: BUCKETS, registers: [registry] });
  const queue: Array<{ at: number; rec: (typeof records)[number] }> = [];
  const perTick = Math.max(1, Math.round(PACED_RATE / 100));
  let produced = 0;
  let acked = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const feeder = setInterval(() => {
    for (let i = 0; i < perTick && produced < records.length; i++) queue.push({ at: performance.now(), rec: records[produced++] });
    if (produced >= records.length) clearInterval(feeder);
  }, 10);
  while (acked < records.length) {
    if (!queue.length) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    const batch = queue.splice(0, BATCH);
    await producer.send({ topic: 'bench-raw', acks: -1, compression: CompressionTypes.GZIP, messages: batch.map((b) => b.rec) });
    const now = performance.now();
    for (const b of batch) h.observe((now - b.at) / 1000);
    acked += batch.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await producer.disconnect();
  const q = await histogramQuantiles(h);
  return { label: `raw kafkajs pipe at ${PACED_RATE}/s`, eventsPerSec: records.length / seconds, p50ms: q.p50, p99ms: q.p99, cpuUsPerEvent: (cpu.user + cpu.system) / records.length };
}

/** The raw pipe (bench/raw-pipe.ts) against its own simulator process, the same burst as the bridge's. */
async function rawPipeRun(brokers: string[]): Promise<Result> {
  const sim = await startSimProcess();
  try {
    return await rawPipe(sim.url, brokers, { n: N, warmup: WARMUP, batch: BATCH, buckets: BUCKETS }, (n) => sim.burst(n, CONVERSATIONS));
  } finally {
    sim.stop();
  }
}

let bridgeRuns = 0;

/** The bridge's burst, then (with `withSteady`) its steady run, writing CloudEvents in `mode` (kafka.producer.cloudEventsMode). */
async function bridgeRun(brokers: string[], mode: 'binary' | 'structured' = 'binary', withSteady = true): Promise<Result[]> {
  const sim = await startSimProcess();
  const { config } = loadConfig({
    raw: {
      // Each bridge its own command group: on the test broker a join waits out the previous bridge's member.
      kafka: { brokers, topics: { events: 'bench-bridge' }, producer: { batchSize: BATCH, maxQueue: N * 2, cloudEventsMode: mode }, consumer: { commandGroup: `bench-commands-${process.pid}-${++bridgeRuns}` } },
      deadLetter: { file: './.data/bench-dead-letter.jsonl' },
      channels: [{ id: 'bench', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'bench', apiKey: 'bench-key' } }],
    },
    env: { PORT: '0' },
  });
  const running = await startBridge(config, createRootLogger('error', 2), { host: '127.0.0.1', defaultMetrics: false });
  const { metrics } = running.bridge;
  const delivered = async () => (await metrics.eventsOut.get()).values.filter((v) => v.labels.type === 'chatbridge.message.received').reduce((a, v) => a + v.value, 0);
  try {
    while (running.bridge.channels.get('bench')?.state !== 'connected' || !running.bridge.readiness.ready()) await new Promise((r) => setTimeout(r, 20));
    await sim.burst(WARMUP, CONVERSATIONS);
    while ((await delivered()) < WARMUP) await new Promise((r) => setTimeout(r, 5));
    metrics.publishLatency.reset();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const done = sim.burst(N, CONVERSATIONS);
    while ((await delivered()) < N + WARMUP) await new Promise((r) => setTimeout(r, 2));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await done;
    const q = await histogramQuantiles(metrics.publishLatency, { sink: 'kafka' });
    const burst: Result = { label: `bridge (${mode}): socket -> Kafka ack`, eventsPerSec: N / seconds, p50ms: q.p50, p99ms: q.p99, cpuUsPerEvent: (cpu.user + cpu.system) / N };
    if (!withSteady) return [burst];

    metrics.publishLatency.reset();
    const before = await delivered();
    const pcpu0 = process.cpuUsage();
    const p0 = performance.now();
    const pdone = sim.paced(PACED_EVENTS, PACED_RATE);
    while ((await delivered()) < before + PACED_EVENTS) await new Promise((r) => setTimeout(r, 5));
    const pseconds = (performance.now() - p0) / 1000;
    const pcpu = process.cpuUsage(pcpu0);
    await pdone;
    const pq = await histogramQuantiles(metrics.publishLatency, { sink: 'kafka' });
    const paced: Result = { label: `bridge at ${PACED_RATE}/s`, eventsPerSec: PACED_EVENTS / pseconds, p50ms: pq.p50, p99ms: pq.p99, cpuUsPerEvent: (pcpu.user + pcpu.system) / PACED_EVENTS };
    return [burst, paced];
  } finally {
    await running.close();
    sim.stop();
  }
}

const retained: unknown[] = [];

/** Heap held by the dedupe window when full, against a plain Set of the same ids (the floor). */
async function dedupeMemory(entries = 100_000): Promise<{ bytesPerEntry: number; setBytesPerEntry: number; gc: boolean }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const settle = () => {
    gc?.();
    return process.memoryUsage().heapUsed;
  };
  // As in production: each event is dropped after publishing, so the window alone keeps its id alive.
  const make = (i: number) => createEvent({ type: 'chatbridge.provider.event', channelId: 'bench', provider: 'zapthinker', upstreamKey: `k${i}`, data: { channel: { id: 'bench', provider: 'zapthinker' }, upstream: { event: 'x', payload: null } } }).event;
  const metrics = new Metrics({ defaultMetrics: false });
  const log = createRootLogger('silent', 2);
  const h0 = settle();
  const pipeline = new EventPipeline({ maxEntries: entries, ttlMs: 3600_000 }, metrics, log);
  for (let i = 0; i < entries; i++) pipeline.publish({ event: make(i), stableId: true, receivedAt: 0 });
  const h1 = settle();
  const set = new Set<string>();
  for (let i = 0; i < entries; i++) set.add(make(entries + i).id);
  const h2 = settle();
  const bytesPerEntry = (h1 - h0) / entries;
  const setBytesPerEntry = (h2 - h1) / entries;
  retained.push(pipeline, set); // reachable until after the measurements
  return { bytesPerEntry, setBytesPerEntry, gc: Boolean(gc) };
}

/**
 * Time per published event while the dedupe window fills, and once it is full (each new id then forgets the oldest):
 * a full window must cost what a filling one does. Events are built beforehand; the pipeline has no sink.
 */
function dedupeWhenFull(entries = 100_000): { fillingUs: number; fullUs: number } {
  const events = (from: number) => Array.from({ length: entries }, (_, i) => createEvent({ type: 'chatbridge.provider.event', channelId: 'bench', provider: 'zapthinker', upstreamKey: `t${from + i}`, data: { channel: { id: 'bench', provider: 'zapthinker' }, upstream: { event: 'x', payload: null } } }).event);
  const pipeline = new EventPipeline({ maxEntries: entries, ttlMs: 3600_000 }, new Metrics({ defaultMetrics: false }), createRootLogger('silent', 2));
  const timed = (list: ReturnType<typeof events>) => {
    const t0 = performance.now();
    for (const event of list) pipeline.publish({ event, stableId: true, receivedAt: 0 });
    return ((performance.now() - t0) * 1000) / list.length;
  };
  const fillingUs = timed(events(0));
  const fullUs = timed(events(entries));
  return { fillingUs, fullUs };
}

/**
 * Commands through the HTTP door vs the simulator's own sendText maximum (bench/commands.ts), simulator in its own
 * process, the command ledger on its own test broker.
 */
async function commandPhase(): Promise<CommandBench> {
  const sim = await startSimProcess();
  const broker = await startTestBroker({ brokers: 1 });
  try {
    return await benchCommands(sim.url, broker.bootstrap, COMMANDS, CONVERSATIONS, COMMAND_CONCURRENCY);
  } finally {
    await broker.stop();
    sim.stop();
  }
}

const row = (r: Result) => `${r.label.padEnd(44)} ${r.eventsPerSec.toFixed(0).padStart(9)} ev/s   p50 ${r.p50ms.toFixed(1).padStart(7)} ms   p99 ${r.p99ms.toFixed(1).padStart(7)} ms   ${r.cpuUsPerEvent.toFixed(1).padStart(6)} µs CPU/ev`;
const ratio = (b: Result, r: Result) => `throughput ${(b.eventsPerSec / r.eventsPerSec).toFixed(2)}x, p50 ${(b.p50ms / r.p50ms).toFixed(2)}x, p99 ${(b.p99ms / r.p99ms).toFixed(2)}x, CPU/event ${(b.cpuUsPerEvent / r.cpuUsPerEvent).toFixed(2)}x`;

function printCommands(c: CommandBench): void {
  console.log(`-- commands: ${COMMANDS} message.send over ${CONVERSATIONS} conversations, ${COMMAND_CONCURRENCY} requests in flight from a client process, ZapThinker simulator (own process), command ledger on Kafka --`);
  console.log(row(c.raw));
  console.log(row(c.pipe));
  console.log(row(c.bridge));
  const { bridge, pipe, raw } = c;
  console.log(`ratio bridge/raw sendText: throughput ${(bridge.eventsPerSec / raw.eventsPerSec).toFixed(2)}x (goal ≥ 0.50x), CPU/command ${(bridge.cpuUsPerEvent / raw.cpuUsPerEvent).toFixed(2)}x`);
  console.log(`ratio raw command pipe/raw sendText: throughput ${(pipe.eventsPerSec / raw.eventsPerSec).toFixed(2)}x (the most any process doing this durable work reached here)`);
  console.log(`ratio bridge/raw command pipe: throughput ${(bridge.eventsPerSec / pipe.eventsPerSec).toFixed(2)}x, CPU/command ${(bridge.cpuUsPerEvent / pipe.cpuUsPerEvent).toFixed(2)}x`);
  const broker = (p: Paced) => `test broker's produce round trip meanwhile (a probe in the client's process) p50 ${p.broker.p50ms.toFixed(1)} ms, p99 ${p.broker.p99ms.toFixed(1)} ms, max ${p.broker.maxMs.toFixed(0)} ms; event loops late by p99/max: this process ${p.loop.p99ms.toFixed(1)}/${p.loop.maxMs.toFixed(0)} ms, the client's ${p.client.p99ms.toFixed(1)}/${p.client.maxMs.toFixed(0)} ms`;
  // At half the top rate requests batch less, so each command costs more: how busy the process was shows whether "half rate" left it headroom.
  const load = (p: Paced, full: Result) => `${p.cpuUsPerCommand.toFixed(0)} µs CPU/command (${(p.cpuUsPerCommand / full.cpuUsPerEvent).toFixed(2)}x full speed's), process busy ${(p.cpuUsPerCommand * p.rate / 1e6).toFixed(2)} cores`;
  console.log(`202 p99 at ${c.paced.rate}/s: ${c.paced.acceptP99ms.toFixed(1)} ms (goal ≤ 20 ms); p50 ${c.paced.acceptP50ms.toFixed(1)} ms, ${load(c.paced, bridge)}; at full speed ${c.acceptP99ms.toFixed(1)} ms; ${broker(c.paced)}`);
  console.log(`raw command pipe 202 p99 at ${c.pipePaced.rate}/s: ${c.pipePaced.acceptP99ms.toFixed(1)} ms; p50 ${c.pipePaced.acceptP50ms.toFixed(1)} ms, ${load(c.pipePaced, pipe)}; ${broker(c.pipePaced)}`);
  console.log(`bridge: ${c.failed} failed; CPU = the bridge's (or the pipe's) process, the client's for raw; latency: raw = request -> 201, pipe = 202 answer, bridge = acceptance -> sent (chatbridge_command_sent_duration_seconds); 202 paced from when each was due`);
}

function printWebhooks(wh: WebhookBench): void {
  console.log(`-- webhooks: ${N} events over ${CONVERSATIONS} keys to a local receiver (own process, verifies every signature); medians of ${wh.rounds} raw/bridge rounds --`);
  for (const r of wh.rows) {
    console.log(row(r.raw));
    console.log(row(r.bridge));
    console.log(`ratio bridge/raw at ${r.concurrency}: throughput ${(r.bridge.eventsPerSec / r.raw.eventsPerSec).toFixed(2)}x (goal ≥ 0.80x); ${ratio(r.bridge, r.raw).replace(/^throughput [^,]*, /, '')}`);
  }
  console.log(`receiver: ${wh.requests} requests (warm-ups included), ${wh.signatureFailures} signature failures`);
}

interface SaturatedBench { raw: Result; pipe: Result; binary: Result; structured: Result; rounds: Array<{ pipe: Result; binary: Result; structured: Result }>; steady: Result[] }

/**
 * Raw kafkajs once; then SATURATED_ROUNDS rounds of the raw pipe, the bridge in binary mode and in structured mode,
 * in turn, each row the median of its rounds (on a shared machine one run of each is mostly noise); with `steady`, the
 * paced runs too (the bridge's after its first binary burst).
 */
async function saturatedPhase(brokers: string[], steady: boolean): Promise<SaturatedBench> {
  const raw = await rawBaseline(brokers);
  const rawSteady = steady ? await rawPaced(brokers) : undefined;
  const pipes: Result[] = [];
  const binaries: Result[] = [];
  const structured: Result[] = [];
  let bridgeSteady: Result | undefined;
  for (let round = 0; round < SATURATED_ROUNDS; round++) {
    pipes.push(await rawPipeRun(brokers));
    const [binary, paced] = await bridgeRun(brokers, 'binary', steady && round === 0);
    binaries.push(binary);
    bridgeSteady ??= paced;
    structured.push((await bridgeRun(brokers, 'structured', false))[0]);
  }
  const rounds = pipes.map((p, i) => ({ pipe: p, binary: binaries[i], structured: structured[i] }));
  return { raw, pipe: median(pipes), binary: median(binaries), structured: median(structured), rounds, steady: rawSteady && bridgeSteady ? [rawSteady, bridgeSteady] : [] };
}

function printSaturated({ raw, pipe, binary, structured, rounds }: Omit<SaturatedBench, 'steady'>): void {
  console.log(`-- saturated: as fast as possible; raw pipe and bridge rows are medians of ${SATURATED_ROUNDS} rounds --`);
  console.log(row(raw));
  console.log(row(pipe));
  console.log(row(binary));
  console.log(row(structured));
  console.log(`ratio bridge/raw kafkajs: ${ratio(binary, raw)}`);
  for (const b of [binary, structured]) {
    const mode = b === binary ? 'binary' : 'structured';
    console.log(`ratio bridge ${mode}/raw pipe: throughput ${(b.eventsPerSec / pipe.eventsPerSec).toFixed(2)}x (goal ≥ 0.85x), CPU/event ${(b.cpuUsPerEvent / pipe.cpuUsPerEvent).toFixed(2)}x (goal ≤ 1.20x)`);
  }
  // The spread behind the medians: each round's bridge runs against the pipe run just before them.
  const each = (pick: (r: (typeof rounds)[number]) => Result, of: (r: Result) => number) => rounds.map((r) => (of(pick(r)) / of(r.pipe)).toFixed(2)).join(' ');
  for (const mode of ['binary', 'structured'] as const) {
    console.log(`  per round, ${mode}/raw pipe: throughput ${each((r) => r[mode], (r) => r.eventsPerSec)}; CPU/event ${each((r) => r[mode], (r) => r.cpuUsPerEvent)}`);
  }
}

async function main(): Promise<void> {
  // Every side runs on the same kafkajs: the bridge's fixes to it (src/kafka/) make the work itself cheaper, so the
  // baselines get them too (and its partitioner), and a ratio shows only what the bridge adds.
  fixKafkaJsRequestQueue();
  fixKafkaJsEncoder();
  if (process.env.BENCH_PHASE === 'commands') {
    printCommands(await commandPhase());
    return;
  }
  if (process.env.BENCH_PHASE === 'webhooks') {
    printWebhooks(await benchWebhooks(N, CONVERSATIONS, WEBHOOK_CONCURRENCY));
    return;
  }
  // Visitor sockets at scale (bench/connections.ts): BENCH_VISITORS (default 10000); BENCH_SKIP_SCALE=1 leaves it out of the full run.
  const visitorPhase = async () => {
    for (const line of visitorLines(await benchVisitorScale(Number(process.env.BENCH_VISITORS ?? 10_000)))) console.log(line);
  };
  if (process.env.BENCH_PHASE === 'visitors') return visitorPhase();
  const deadline = setTimeout(() => {
    console.error('bench: exceeded 9 minutes; aborting');
    process.exit(2);
  }, 9 * 60_000);
  const broker = await startTestBroker({ brokers: 1, topics: [{ name: 'bench-bridge', partitions: 8 }, { name: 'bench-raw', partitions: 8 }] });
  try {
    console.log(`chatbridge bench: ${N} events over ${CONVERSATIONS} conversations, librdkafka mock broker on loopback, ${process.version}`);
    if (process.env.BENCH_PHASE === 'saturated') {
      printSaturated(await saturatedPhase(broker.bootstrap, false));
      return;
    }
    const { steady, ...saturated } = await saturatedPhase(broker.bootstrap, true);
    const [rawSteady, bridgeSteady] = steady;
    printSaturated(saturated);
    console.log(`-- steady: ${PACED_EVENTS} events at ${PACED_RATE}/s --`);
    console.log(row(rawSteady));
    console.log(row(bridgeSteady));
    console.log(`ratio bridge/raw: ${ratio(bridgeSteady, rawSteady)}`);
    printWebhooks(await benchWebhooks(N, CONVERSATIONS, WEBHOOK_CONCURRENCY));
    const d = await dedupeMemory();
    console.log(`-- dedupe window: 100000 ids (maxEntries default) --`);
    console.log(`heap per remembered id ${d.bytesPerEntry.toFixed(0)} B (${((d.bytesPerEntry * 100_000) / 1048576).toFixed(1)} MiB full); plain Set of the same ids ${d.setBytesPerEntry.toFixed(0)} B; ratio ${(d.bytesPerEntry / d.setBytesPerEntry).toFixed(2)}x${d.gc ? '' : ' (no --expose-gc: approximate)'}`);
    const t = dedupeWhenFull();
    console.log(`publish (dedupe, no sink) while the window fills ${t.fillingUs.toFixed(2)} µs/event; once full, each new id forgetting the oldest ${t.fullUs.toFixed(2)} µs/event; ratio full/filling ${(t.fullUs / t.fillingUs).toFixed(2)}x`);
    if (process.env.BENCH_SKIP_SCALE !== '1') await visitorPhase();
    printCommands(await commandPhase());
    console.log('latency: saturated raw = per produce request of 500 records ready in memory; steady raw = arrival -> ack;');
    console.log('         bridge = frame received on the socket -> Kafka ack (histogram buckets, interpolated as histogram_quantile)');
    console.log('         webhooks = the whole burst is there at t0: t0 -> 2xx, time queued included, for both (same buckets as the bridge\'s metric)');
  } finally {
    await broker.stop();
    clearTimeout(deadline);
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
