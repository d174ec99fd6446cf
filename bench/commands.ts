/**
 * Commands/s through the HTTP door to the ZapThinker simulator (own process), against the simulator's own maximum
 * measured in the same run:
 *   raw    - an undici keep-alive Pool posting `POST /message/sendText/<instance>` straight to the simulator;
 *   bridge - the same sends as `POST /v1/channels/wa/commands` to a whole bridge with the Kafka command ledger on the
 *            test broker (auth, rate limit, validation, the durable `accepted`/`sending`/`sent` records, per-conversation
 *            lanes, the connector's REST call, the echo events to Kafka), until every command is `sent`;
 *   paced  - the bridge again, commands arriving at a steady half of the rate it just reached: the 202 latency then.
 * Latency: raw = request → 201; bridge = acceptance → `sent` (chatbridge_command_sent_duration_seconds), read as
 * histogram_quantile; the 202 answers client side (paced: from the moment each command was due, so a late start counts).
 */
import { randomUUID } from 'node:crypto';
import { Histogram, Registry } from 'prom-client';
import { Pool } from 'undici';
import { startBridge } from '../src/boot/bootstrap';
import { createRootLogger } from '../src/common/logger';
import { loadConfig } from '../src/config/config.loader';
import { histogramQuantiles, type Result } from './stats';

const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKEN = 'bench-token-0123456789';
/** Commands sent (and finished) before the measured runs: the JIT warms up and the ledger is surely read. */
const WARM_UP = 200;
/** How long the paced sub-phase lasts (s). */
const PACED_SECONDS = 5;

/** What the command phase reports. */
export interface CommandBench {
  raw: Result;
  bridge: Result;
  acceptP99ms: number;
  /** 202 latency with commands arriving at `paced.rate`/s (half the bridge's maximum). */
  paced: { rate: number; acceptP50ms: number; acceptP99ms: number; cpuUsPerCommand: number };
  failed: number;
}

/** Runs `n` jobs with `concurrency` in flight. */
async function pooled(n: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await job(next++);
  }));
}

/** Starts job `i` at `i / rate` s from now (open loop: a slow answer does not delay the next start); `job` gets the time it was due. */
async function paced(n: number, rate: number, job: (i: number, due: number) => Promise<void>): Promise<void> {
  const t0 = performance.now();
  const jobs: Array<Promise<void>> = [];
  await new Promise<void>((done) => {
    let i = 0;
    const tick = (): void => {
      const now = performance.now();
      while (i < n && t0 + (i * 1000) / rate <= now) {
        jobs.push(job(i, t0 + (i * 1000) / rate));
        i++;
      }
      if (i >= n) done();
      else setTimeout(tick, Math.max(0, t0 + (i * 1000) / rate - performance.now()));
    };
    tick();
  });
  await Promise.all(jobs);
}

/**
 * `n` commands over `conversations` conversations, `concurrency` requests in flight, against `simUrl` (instance
 * `bench`, key `bench-key`); the bridge keeps its command ledger on Kafka at `brokers`.
 */
export async function benchCommands(simUrl: string, brokers: string[], n: number, conversations: number, concurrency: number): Promise<CommandBench> {
  const registry = new Registry();
  const rawLatency = new Histogram({ name: 'raw_send_seconds', help: 'raw', buckets: BUCKETS, registers: [registry] });
  const acceptLatency = new Histogram({ name: 'accept_seconds', help: '202', buckets: BUCKETS, registers: [registry] });
  const pacedLatency = new Histogram({ name: 'paced_accept_seconds', help: '202 paced', buckets: BUCKETS, registers: [registry] });
  const number = (i: number) => `55119${String(20000000 + (i % conversations))}`;

  const sim = new Pool(simUrl, { connections: concurrency, pipelining: 1 });
  const rawSend = async (i: number) => {
    const res = await sim.request({ method: 'POST', path: '/message/sendText/bench', headers: { apikey: 'bench-key', 'content-type': 'application/json' }, body: JSON.stringify({ number: number(i), text: `cmd ${i}` }) });
    await res.body.dump();
    if (res.statusCode !== 201) throw new Error(`raw send answered ${res.statusCode}`);
  };
  await pooled(WARM_UP, concurrency, rawSend);
  let cpu = process.cpuUsage();
  let t0 = performance.now();
  await pooled(n, concurrency, async (i) => {
    const start = performance.now();
    await rawSend(i);
    rawLatency.observe((performance.now() - start) / 1000);
  });
  let seconds = (performance.now() - t0) / 1000;
  let used = process.cpuUsage(cpu);
  const rq = await histogramQuantiles(rawLatency);
  const raw: Result = { label: `raw sendText c=${concurrency}`, eventsPerSec: n / seconds, p50ms: rq.p50, p99ms: rq.p99, cpuUsPerEvent: (used.user + used.system) / n };
  await sim.close();

  const run = `${process.pid}-${Date.now()}`;
  const { config } = loadConfig({
    raw: {
      kafka: {
        brokers,
        topics: { events: `bench-cmd-events-${run}`, commands: `bench-cmd-commands-${run}`, commandLedger: `bench-cmd-ledger-${run}`, deadLetter: `bench-cmd-dlq-${run}`, state: `bench-cmd-state-${run}` },
        consumer: { maxWaitTimeMs: 100 },
      },
      api: { rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } },
      commands: { maxPendingPerChannel: n * 4 },
      deadLetter: { file: `/tmp/chatbridge-bench-${process.pid}/dead-letter.jsonl` },
      stateDir: `/tmp/chatbridge-bench-${process.pid}/state`,
      channels: [{ id: 'wa', provider: 'zapthinker', zapthinker: { url: simUrl, instance: 'bench', apiKey: 'bench-key' } }],
    },
    env: { PORT: '0', CHATBRIDGE_API_TOKENS: TOKEN },
  });
  const running = await startBridge(config, createRootLogger('silent', 2), { defaultMetrics: false, host: '127.0.0.1' });
  const { metrics } = running.bridge;
  const finished = async () => (await metrics.commandsFinished.get()).values.reduce((sum, v) => sum + v.value, 0);
  const api = new Pool(running.url, { connections: concurrency * 4, pipelining: 1 });
  const submit = async (i: number, latency?: Histogram, since = performance.now()) => {
    const res = await api.request({
      method: 'POST', path: '/v1/channels/wa/commands',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ commandId: randomUUID(), type: 'message.send', conversationId: number(i), text: `cmd ${i}` }),
    });
    await res.body.dump();
    if (res.statusCode !== 202) throw new Error(`bridge answered ${res.statusCode}`);
    latency?.observe((performance.now() - since) / 1000);
  };
  const allFinished = async (count: number) => {
    while ((await finished()) < count) await new Promise((r) => setTimeout(r, 5));
  };
  try {
    while (running.bridge.channels.get('wa')?.state !== 'connected') await new Promise((r) => setTimeout(r, 20));
    await pooled(WARM_UP, concurrency, (i) => submit(i));
    await allFinished(WARM_UP);
    metrics.commandTimeToSent.reset();
    cpu = process.cpuUsage();
    t0 = performance.now();
    await pooled(n, concurrency, (i) => submit(i, acceptLatency));
    await allFinished(WARM_UP + n);
    seconds = (performance.now() - t0) / 1000;
    used = process.cpuUsage(cpu);
    const bq = await histogramQuantiles(metrics.commandTimeToSent);
    const aq = await histogramQuantiles(acceptLatency);
    const bridge: Result = { label: `bridge HTTP door c=${concurrency}`, eventsPerSec: n / seconds, p50ms: bq.p50, p99ms: bq.p99, cpuUsPerEvent: (used.user + used.system) / n };

    const rate = Math.max(1, Math.round(bridge.eventsPerSec / 2));
    const count = rate * PACED_SECONDS;
    cpu = process.cpuUsage();
    await paced(count, rate, (i, due) => submit(i, pacedLatency, due));
    await allFinished(WARM_UP + n + count);
    used = process.cpuUsage(cpu);
    const pq = await histogramQuantiles(pacedLatency);
    const failed = (await metrics.commandsFinished.get()).values.filter((v) => v.labels.outcome === 'failed').reduce((s, v) => s + v.value, 0);
    return { raw, bridge, acceptP99ms: aq.p99, paced: { rate, acceptP50ms: pq.p50, acceptP99ms: pq.p99, cpuUsPerCommand: (used.user + used.system) / count }, failed };
  } finally {
    await api.close();
    await running.close();
  }
}
