/**
 * Webhook throughput against a local receiver in its own process (webhook-receiver-process.ts, which verifies
 * every signature). Per concurrency, in the same run and against the same receiver:
 *   raw    - the receiver's own maximum: an undici keep-alive Pool with that many connections posting the same
 *            bodies (serialized beforehand), each signed at send time, as fast as it can;
 *   bridge - a whole bridge in embedded mode with one webhook endpoint of that concurrency, the same events
 *            published through the pipeline at once (dedupe, filter, per-key lanes, signing, undici transport).
 * Latency, for both: the burst is all there at t0, so it is t0 -> 2xx (time queued included), measured into
 * histograms with the buckets of chatbridge_webhook_delivery_duration_seconds.
 *
 * The raw side signs at send time like the bridge, but its bodies are serialized before t0: the bridge's own
 * serialization (toStructured, once per event) is counted in the bridge. On a shared machine one pair of runs
 * is mostly noise, so each concurrency runs ROUNDS pairs back to back (raw, bridge, raw, bridge, ...) and
 * reports each side's median (of throughput, latencies and CPU, each on its own).
 */
import { randomBytes } from 'node:crypto';
import { Histogram, Registry } from 'prom-client';
import { Pool } from 'undici';
import { startBridge } from '../src/boot/bootstrap';
import { createRootLogger } from '../src/common/logger';
import { loadConfig } from '../src/config/config.loader';
import { toStructured, type AnyCanonicalEvent } from '../src/envelope/envelope';
import { WebhookSigner } from '../src/sinks/webhook/webhook.signer';
import { histogramQuantiles, median, type Result } from './stats';
import { startChild, zapthinkerEvents } from './fixtures';

/** The buckets of chatbridge_webhook_delivery_duration_seconds, so both sides are read the same way. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Unmeasured events each side handles first, so the JIT has settled on its code (as in the saturated phase). */
const WARMUP = 2000;
const ROUNDS = Math.max(1, Number(process.env.BENCH_WEBHOOK_ROUNDS ?? 5) || 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One concurrency's pair of rows (medians over the rounds). */
export interface WebhookBenchRow { concurrency: number; raw: Result; bridge: Result }

/** What the webhook phase reports. */
export interface WebhookBench { rows: WebhookBenchRow[]; rounds: number; requests: number; signatureFailures: number }

async function startReceiver(secret: string) {
  const receiver = await startChild('webhook-receiver-process.ts', { BENCH_WEBHOOK_SECRET: secret });
  return {
    url: receiver.url,
    async stats(): Promise<{ requests: number; signatureFailures: number }> {
      const [, requests, failures] = (await receiver.ask('stats')).split(' ');
      return { requests: Number(requests), signatureFailures: Number(failures) };
    },
    stop: () => receiver.end(),
  };
}

async function rawRun(url: string, secret: string, concurrency: number, events: AnyCanonicalEvent[]): Promise<Result> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: concurrency, pipelining: 1, keepAliveTimeout: 10_000 });
  const signer = new WebhookSigner(secret);
  const h = new Histogram({ name: 'raw_webhook_latency', help: 'raw', buckets: LATENCY_BUCKETS, registers: [new Registry()] });
  const post = async (id: string, body: string): Promise<void> => {
    const res = await pool.request({ path: u.pathname, method: 'POST', headers: { 'content-type': 'application/cloudevents+json', ...signer.sign(id, body) }, body });
    await res.body.dump();
    if (res.statusCode !== 204) throw new Error(`receiver answered ${res.statusCode}`);
  };
  const burst = async (items: Array<{ id: string; body: string }>, t0?: number) => {
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const { id, body } = items[next++];
        await post(id, body);
        if (t0 !== undefined) h.observe((performance.now() - t0) / 1000);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  try {
    const bodies = events.map((e) => ({ id: e.id, body: toStructured(e) }));
    await burst(bodies.slice(0, WARMUP));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await burst(bodies, t0);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const q = await histogramQuantiles(h);
    return { label: `raw undici pool, ${concurrency} connections`, eventsPerSec: events.length / seconds, p50ms: q.p50, p99ms: q.p99, cpuUsPerEvent: (cpu.user + cpu.system) / events.length };
  } finally {
    await pool.destroy();
  }
}

async function bridgeRun(url: string, secret: string, concurrency: number, events: AnyCanonicalEvent[], warmup: AnyCanonicalEvent[]): Promise<Result> {
  const { config } = loadConfig({
    raw: {
      deadLetter: { file: './.data/bench-dead-letter.jsonl' },
      webhooks: [{ id: 'bench', url, secret, concurrency, maxPending: events.length + warmup.length, timeoutMs: 30_000 }],
    },
    env: { PORT: '0' },
  });
  const running = await startBridge(config, createRootLogger('error', 2), { host: '127.0.0.1', defaultMetrics: false });
  const { pipeline, metrics } = running.bridge;
  const sink = running.bridge.webhooks!;
  const settled = async () => {
    while (sink.depth() > 0) await sleep(2);
  };
  const delivered = async () => (await metrics.webhookDelivered.get()).values.reduce((a, v) => a + v.value, 0);
  try {
    for (const event of warmup) pipeline.publish({ event, stableId: true, receivedAt: performance.now() });
    await settled();
    metrics.webhookLatency.reset();
    const before = await delivered();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const event of events) pipeline.publish({ event, stableId: true, receivedAt: t0 });
    await settled();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const got = (await delivered()) - before;
    if (got !== events.length) throw new Error(`bridge delivered ${got} of ${events.length} events (see .data/bench-dead-letter.jsonl)`);
    const q = await histogramQuantiles(metrics.webhookLatency, { endpoint: 'bench' });
    return { label: `bridge webhook endpoint, concurrency ${concurrency}`, eventsPerSec: events.length / seconds, p50ms: q.p50, p99ms: q.p99, cpuUsPerEvent: (cpu.user + cpu.system) / events.length };
  } finally {
    await running.close();
  }
}

/** Runs the webhook phase: per concurrency, the raw baseline, then the bridge, against one receiver. */
export async function benchWebhooks(n: number, keys: number, concurrencies: number[]): Promise<WebhookBench> {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const receiver = await startReceiver(secret);
  try {
    const rows: WebhookBenchRow[] = [];
    for (const concurrency of concurrencies) {
      // The same events for both: each bridge starts with an empty dedupe window.
      const events = zapthinkerEvents(n, keys);
      const raws: Result[] = [];
      const bridges: Result[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        raws.push(await rawRun(receiver.url, secret, concurrency, events));
        bridges.push(await bridgeRun(receiver.url, secret, concurrency, events, zapthinkerEvents(WARMUP, keys)));
      }
      rows.push({ concurrency, raw: median(raws), bridge: median(bridges) });
    }
    return { rows, rounds: ROUNDS, ...(await receiver.stats()) };
  } finally {
    receiver.stop();
  }
}
