/**
 * The command phase's load generator, in its own process so the bridge's event loop (in the bench process) is not
 * shared with the client that loads it. Prints `URL -`, then answers commands read on stdin with one `RESULT <json>`
 * line each:
 *   raw <simUrl> <n> <concurrency> <conversations> <warmup>
 *     `n` sendText posts straight to the simulator (instance `bench`, key `bench-key`), `concurrency` in flight, after
 *     `warmup` unmeasured ones → {perSec, p50ms, p99ms, cpuUs} (cpuUs: this process's CPU per post);
 *   submit <url> <token> <from> <n> <concurrency> <conversations>
 *     commands `from`..`from+n-1` to `POST <url>/v1/channels/wa/commands`, `concurrency` in flight → {seconds, p50ms, p99ms}
 *     (202 latency, request → answer);
 *   paced <url> <token> <from> <n> <rate> <conversations> <brokers>
 *     the same at a steady `rate`/s, open loop (a slow answer does not delay the next start) → {p50ms, p99ms, broker},
 *     each latency taken from when the command was due, so a late start counts; meanwhile a probe sends one small
 *     record (acks -1) to the Kafka at `brokers` (comma-separated) every PROBE_EVERY_MS, each after the previous
 *     one's answer: `broker` is their round trips {p50ms, p99ms, maxMs}, what a write waited for Kafka in that window,
 *     and `client` how late this process's own event loop ran {p99ms, maxMs}. Its PACED_CONNECTIONS connections are
 *     open before the first command, as a steady caller's are: a connection opened under load waits for the server's
 *     accept, which libuv does once per event-loop turn, so a pool that grows in a hiccup (each new connection waiting
 *     a few ms longer than the one before) measured 88-127 ms of p99 on Node 24 where the same run with its
 *     connections open measured 68-86 ms.
 * Every answer must be 202 (201 for raw): the first other one fails the line with `ERROR <message>`.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Kafka, logLevel } from 'kafkajs';
import { Histogram, Registry } from 'prom-client';
import { Pool } from 'undici';
import { fixKafkaJsRequestQueue } from '../src/kafka/request-queue-fix';
import { histogramQuantiles, loopDelay } from './stats';

const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Connections the paced client opens: more than the commands in flight at the rates measured. */
const PACED_CONNECTIONS = 64;
/** How long the paced client keeps an idle connection (the server's `Keep-Alive` may say less): the whole run. */
const PACED_KEEP_ALIVE_MS = 60_000;
/** Pause between two requests of the broker probe (ms). */
const PROBE_EVERY_MS = 10;
const registry = new Registry();
const histogram = () => new Histogram({ name: `h${randomUUID().replace(/-/g, '')}`, help: 'latency', buckets: BUCKETS, registers: [registry] });
const number = (i: number, conversations: number) => `55119${String(20000000 + (i % conversations))}`;

/** Runs jobs `from`..`from+n-1` with `concurrency` in flight. */
async function pooled(from: number, n: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < from + n) await job(next++);
  }));
}

/**
 * Starts job `from + k` at `k / rate` s from now; `job` gets the time it was due. Every job runs; the first one that
 * failed fails the whole once all have ended (a failure is never left unhandled meanwhile).
 */
async function paced(from: number, n: number, rate: number, job: (i: number, due: number) => Promise<void>): Promise<void> {
  const t0 = performance.now();
  const jobs: Array<Promise<void>> = [];
  let failure: { err: unknown } | undefined;
  await new Promise<void>((done) => {
    let k = 0;
    const tick = (): void => {
      const now = performance.now();
      while (k < n && t0 + (k * 1000) / rate <= now) {
        jobs.push(job(from + k, t0 + (k * 1000) / rate).catch((err: unknown) => void (failure ??= { err })));
        k++;
      }
      if (k >= n) done();
      else setTimeout(tick, Math.max(0, t0 + (k * 1000) / rate - performance.now()));
    };
    tick();
  });
  await Promise.all(jobs);
  if (failure) throw failure.err;
}

async function raw(simUrl: string, n: number, concurrency: number, conversations: number, warmup: number): Promise<object> {
  const sim = new Pool(simUrl, { connections: concurrency, pipelining: 1 });
  const latency = histogram();
  const send = async (i: number, observe: boolean) => {
    const start = performance.now();
    const res = await sim.request({ method: 'POST', path: '/message/sendText/bench', headers: { apikey: 'bench-key', 'content-type': 'application/json' }, body: JSON.stringify({ number: number(i, conversations), text: `cmd ${i}` }) });
    await res.body.dump();
    if (res.statusCode !== 201) throw new Error(`raw send answered ${res.statusCode}`);
    if (observe) latency.observe((performance.now() - start) / 1000);
  };
  try {
    await pooled(0, warmup, concurrency, (i) => send(i, false));
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await pooled(0, n, concurrency, (i) => send(i, true));
    const seconds = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(cpu);
    const q = await histogramQuantiles(latency);
    return { perSec: n / seconds, p50ms: q.p50, p99ms: q.p99, cpuUs: (used.user + used.system) / n };
  } finally {
    await sim.close();
  }
}

/** Posts command `i` to the bridge; resolves with its 202 latency (ms) measured from `since`. */
function commandPoster(url: string, token: string, concurrency: number, conversations: number, keepAliveMs?: number) {
  const api = new Pool(url, { connections: concurrency, pipelining: 1, ...(keepAliveMs ? { keepAliveTimeout: keepAliveMs, keepAliveMaxTimeout: keepAliveMs } : {}) });
  const post = async (i: number, since = performance.now()): Promise<number> => {
    const res = await api.request({
      method: 'POST', path: '/v1/channels/wa/commands',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ commandId: randomUUID(), type: 'message.send', conversationId: number(i, conversations), text: `cmd ${i}` }),
    });
    await res.body.dump();
    if (res.statusCode !== 202) throw new Error(`bridge answered ${res.statusCode}`);
    return performance.now() - since;
  };
  /** Opens `n` connections (as many GET /healthz at once): afterwards no command waits for a connect. */
  const open = async (n: number): Promise<void> => {
    await Promise.all(Array.from({ length: n }, async () => (await api.request({ method: 'GET', path: '/healthz' })).body.dump()));
  };
  return { post, open, close: () => api.close() };
}

async function submit(url: string, token: string, from: number, n: number, concurrency: number, conversations: number): Promise<object> {
  const { post, close } = commandPoster(url, token, concurrency, conversations);
  const latency = histogram();
  try {
    const t0 = performance.now();
    await pooled(from, n, concurrency, async (i) => latency.observe((await post(i)) / 1000));
    const seconds = (performance.now() - t0) / 1000;
    const q = await histogramQuantiles(latency);
    return { seconds, p50ms: q.p50, p99ms: q.p99 };
  } finally {
    await close();
  }
}

async function pacedSubmit(url: string, token: string, from: number, n: number, rate: number, conversations: number, brokers: string[]): Promise<object> {
  const { post, open, close } = commandPoster(url, token, PACED_CONNECTIONS, conversations, PACED_KEEP_ALIVE_MS);
  const latency = histogram();
  await open(PACED_CONNECTIONS);
  const probe = await brokerProbe(brokers);
  // How late this process's own timers ran: a late start is counted as the server's latency.
  const delay = loopDelay();
  try {
    await paced(from, n, rate, async (i, due) => latency.observe((await post(i, due)) / 1000));
    const client = delay.read();
    const q = await histogramQuantiles(latency);
    return { p50ms: q.p50, p99ms: q.p99, broker: await probe.stop(), client };
  } finally {
    delay.stop();
    await probe.stop().catch(() => undefined); // stopped already, or failing with the error above
    await close();
  }
}

/** Starts probing the broker's produce round trip (see `paced`); `stop` ends it and reports. */
async function brokerProbe(brokers: string[]) {
  const producer = new Kafka({ clientId: 'bench-broker-probe', brokers, logLevel: logLevel.NOTHING }).producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const topic = `bench-probe-${process.pid}-${Date.now()}`;
  await producer.send({ topic, acks: -1, messages: [{ value: 'warm-up' }] });
  const rtts: number[] = [];
  let running = true;
  // A failed probe ends the probing; `stop` then reports the failure.
  const probing = (async () => {
    while (running) {
      const t0 = performance.now();
      await producer.send({ topic, acks: -1, messages: [{ value: 'probe' }] });
      rtts.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
    }
  })().then(() => undefined, (err: unknown) => ({ err }));
  let stopped: Promise<{ p50ms: number; p99ms: number; maxMs: number }> | undefined;
  return {
    stop: () => (stopped ??= (async () => {
      running = false;
      const failed = await probing;
      await producer.disconnect();
      if (failed) throw new Error(`broker probe: ${failed.err instanceof Error ? failed.err.message : String(failed.err)}`);
      const sorted = [...rtts].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
      return { p50ms: at(0.5), p99ms: at(0.99), maxMs: sorted[sorted.length - 1] };
    })()),
  };
}

async function main(): Promise<void> {
  // The probe's producer as the bench's own: without it each of its connections polls itself every millisecond,
  // CPU this process would take from the two cores the measured process shares.
  fixKafkaJsRequestQueue();
  process.stdout.write('URL -\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, ...args] = line.trim().split(/\s+/);
    const n = (k: number) => Number(args[k]);
    try {
      const result = cmd === 'raw' ? await raw(args[0], n(1), n(2), n(3), n(4))
        : cmd === 'submit' ? await submit(args[0], args[1], n(2), n(3), n(4), n(5))
          : cmd === 'paced' ? await pacedSubmit(args[0], args[1], n(2), n(3), n(4), n(5), args[6].split(','))
            : undefined;
      if (!result) throw new Error(`unknown command "${cmd}"`);
      process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    } catch (err) {
      process.stdout.write(`ERROR ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

void main();
