/**
 * Commands/s through the HTTP door to the ZapThinker simulator (own process), against the simulator's own maximum
 * measured in the same run:
 *   raw    - an undici keep-alive Pool posting `POST /message/sendText/<instance>` straight to the simulator;
 *   bridge - the same sends as `POST /v1/channels/wa/commands` to a whole bridge (auth, rate limit, validation,
 *            ledger, per-conversation lanes, the connector's REST call), until every command is `sent`.
 * Latency: raw = request → 201; bridge = the 202 answer (client side) and acceptance → `sent`
 * (chatbridge_command_time_to_sent_seconds), read as histogram_quantile.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Histogram, Registry } from 'prom-client';
import { Pool } from 'undici';
import { startBridge } from '../src/boot/bootstrap';
import { createRootLogger } from '../src/common/logger';
import { loadConfig } from '../src/config/config.loader';
import { histogramQuantiles, type Result } from './stats';

const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKEN = 'bench-token-0123456789';

/** What the command phase reports. */
export interface CommandBench { raw: Result; bridge: Result; acceptP99ms: number; failed: number }

/** Runs `n` jobs with `concurrency` in flight. */
async function pooled(n: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await job(next++);
  }));
}

/** `n` commands over `conversations` conversations, `concurrency` requests in flight, against `simUrl` (instance `bench`, key `bench-key`). */
export async function benchCommands(simUrl: string, n: number, conversations: number, concurrency: number): Promise<CommandBench> {
  const registry = new Registry();
  const rawLatency = new Histogram({ name: 'raw_send_seconds', help: 'raw', buckets: BUCKETS, registers: [registry] });
  const acceptLatency = new Histogram({ name: 'accept_seconds', help: '202', buckets: BUCKETS, registers: [registry] });
  const number = (i: number) => `55119${String(20000000 + (i % conversations))}`;

  const sim = new Pool(simUrl, { connections: concurrency, pipelining: 1 });
  let cpu = process.cpuUsage();
  let t0 = performance.now();
  await pooled(n, concurrency, async (i) => {
    const start = performance.now();
    const res = await sim.request({ method: 'POST', path: '/message/sendText/bench', headers: { apikey: 'bench-key', 'content-type': 'application/json' }, body: JSON.stringify({ number: number(i), text: `cmd ${i}` }) });
    await res.body.dump();
    if (res.statusCode !== 201) throw new Error(`raw send answered ${res.statusCode}`);
    rawLatency.observe((performance.now() - start) / 1000);
  });
  let seconds = (performance.now() - t0) / 1000;
  let used = process.cpuUsage(cpu);
  const rq = await histogramQuantiles(rawLatency);
  const raw: Result = { label: `raw sendText c=${concurrency}`, eventsPerSec: n / seconds, p50ms: rq.p50, p99ms: rq.p99, cpuUsPerEvent: (used.user + used.system) / n };
  await sim.close();

  const { config } = loadConfig({
    raw: {
      api: { rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } },
      commands: { maxPendingPerChannel: n + 1 },
      deadLetter: { file: `/tmp/chatbridge-bench-${process.pid}/dead-letter.jsonl` },
      stateDir: `/tmp/chatbridge-bench-${process.pid}/state`,
      channels: [{ id: 'wa', provider: 'zapthinker', zapthinker: { url: simUrl, instance: 'bench', apiKey: 'bench-key' } }],
    },
    env: { PORT: '0', CHATBRIDGE_API_TOKENS: TOKEN },
  });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const running = await startBridge(config, createRootLogger('silent', 2), { stdout: sink, defaultMetrics: false, host: '127.0.0.1' });
  const finished = async () => (await running.bridge.metrics.commandsFinished.get()).values.reduce((sum, v) => sum + v.value, 0);
  const api = new Pool(running.url, { connections: concurrency, pipelining: 1 });
  try {
    cpu = process.cpuUsage();
    t0 = performance.now();
    await pooled(n, concurrency, async (i) => {
      const start = performance.now();
      const res = await api.request({
        method: 'POST', path: '/v1/channels/wa/commands',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ commandId: randomUUID(), type: 'message.send', conversationId: number(i), text: `cmd ${i}` }),
      });
      await res.body.dump();
      if (res.statusCode !== 202) throw new Error(`bridge answered ${res.statusCode}`);
      acceptLatency.observe((performance.now() - start) / 1000);
    });
    while ((await finished()) < n) await new Promise((r) => setTimeout(r, 5));
    seconds = (performance.now() - t0) / 1000;
    used = process.cpuUsage(cpu);
    const bq = await histogramQuantiles(running.bridge.metrics.commandTimeToSent);
    const aq = await histogramQuantiles(acceptLatency);
    const failedCount = (await running.bridge.metrics.commandsFinished.get()).values.filter((v) => v.labels.status === 'failed').reduce((s, v) => s + v.value, 0);
    return {
      raw,
      bridge: { label: `bridge HTTP door c=${concurrency}`, eventsPerSec: n / seconds, p50ms: bq.p50, p99ms: bq.p99, cpuUsPerEvent: (used.user + used.system) / n },
      acceptP99ms: aq.p99,
      failed: failedCount,
    };
  } finally {
    await api.close();
    await running.close();
  }
}
