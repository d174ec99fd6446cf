/**
 * Commands/s through the HTTP door to the ZapThinker simulator (own process), against what the work itself costs,
 * measured in the same run. The load comes from a client in its own process (command-client-process.ts), so the
 * bridge's event loop serves only the bridge:
 *   raw    - the client posting `POST /message/sendText/<instance>` straight to the simulator (undici keep-alive
 *            Pool), after a warm-up long enough for both processes' JIT to settle;
 *   pipe   - the minimal durable command pipe (raw-command-pipe.ts) in this process: the same ledger records on
 *            the test broker, the same upstream client and call, the result event, nothing else;
 *   bridge - the same commands as `POST /v1/channels/wa/commands` to a whole bridge in this process with the Kafka
 *            command ledger (auth, rate limit, validation, the durable `accepted`/`sending`/`sent` records read back by
 *            the ledger's follower, which has read back the warm-up's records before the run starts, per-conversation
 *            lanes, the connector's REST call, the echo events to Kafka),
 *            until every command is `sent`;
 *   paced  - the pipe, then the bridge, again, commands arriving at a steady half of the rate each reached: the 202
 *            latency then, beside the test broker's own produce round trip in the same window (a probe producer in the
 *            client's process).
 * CPU per command is this process's (the pipe's or the bridge's), the client's for raw. Latency: raw = request →
 * 201; pipe and bridge = 202 answers client side (paced: from the moment each command was due, so a late start counts);
 * the bridge's acceptance → `sent` too (chatbridge_command_sent_duration_seconds, read as histogram_quantile).
 */
import { startBridge } from '../src/boot/bootstrap';
import { createRootLogger } from '../src/common/logger';
import { loadConfig } from '../src/config/config.loader';
import { startChild } from './fixtures';
import { startRawCommandPipe } from './raw-command-pipe';
import { histogramQuantiles, loopDelay, type Result } from './stats';

const TOKEN = 'bench-token-0123456789';
/** Commands sent (and finished) before each measured run: the JIT warms up and the ledger is surely read. */
const WARM_UP = 1000;
/** Raw sends before the raw run: the simulator's and the client's code settles (a cold simulator answers ~3x slower). */
const RAW_WARM_UP = 10_000;
/** How long each paced sub-phase lasts (s). */
const PACED_SECONDS = 5;
/** Longest wait for the commands of one run to finish: a command that never does fails the phase instead of hanging it. */
const FINISH_WITHIN_MS = 120_000;

/** What the command phase reports. */
export interface CommandBench {
  raw: Result;
  pipe: Result;
  bridge: Result;
  acceptP99ms: number;
  /** 202 latency with commands arriving at `paced.rate`/s (half the bridge's maximum), and the test broker's own produce round trip meanwhile. */
  paced: Paced;
  /** The same for the raw command pipe at half its own maximum. */
  pipePaced: Paced;
  failed: number;
}

/** A paced run: the 202 latency and, in the same window, the round trip of a probe's produce requests to the test broker (from the client's process). */
export interface Paced {
  rate: number;
  /** CPU per command of this process (the pipe's or the bridge's) meanwhile (µs). */
  cpuUsPerCommand: number;
  acceptP50ms: number;
  acceptP99ms: number;
  broker: { p50ms: number; p99ms: number; maxMs: number };
  /** This process's event loop meanwhile (where the pipe or the bridge runs): how late its timers ran (ms). */
  loop: { p99ms: number; maxMs: number };
  /** The same for the client's process, whose late starts count as latency. */
  client: { p99ms: number; maxMs: number };
}

interface ClientAnswer { perSec: number; seconds: number; p50ms: number; p99ms: number; cpuUs: number; broker: Paced['broker']; client: Paced['client'] }

/** The load generator's process. */
async function startClient() {
  const child = await startChild('command-client-process.ts');
  const ask = async (line: string): Promise<ClientAnswer> => {
    const answer = await child.ask(line);
    if (!answer.startsWith('RESULT ')) throw new Error(`command client: ${answer}`);
    return JSON.parse(answer.slice('RESULT '.length)) as ClientAnswer;
  };
  return { ask, stop: () => child.kill() };
}

/** Waits until `count()` reaches `target`; throws after FINISH_WITHIN_MS, saying what did not finish. */
async function until(count: () => Promise<number> | number, target: number, what: string, unit = 'commands finished'): Promise<void> {
  const deadline = Date.now() + FINISH_WITHIN_MS;
  for (let n = await count(); n < target; n = await count()) {
    if (Date.now() > deadline) throw new Error(`${what}: ${n} of ${target} ${unit} within ${FINISH_WITHIN_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs `job` and returns the seconds it took and this process's CPU (µs) meanwhile. */
async function measured(job: () => Promise<void>): Promise<{ seconds: number; cpuUs: number }> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await job();
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - t0) / 1000, cpuUs: used.user + used.system };
}

/** `measured`, and how late this process's event loop ran meanwhile (only the paced windows: the monitor is a timer). */
async function measuredWithLoop(job: () => Promise<void>): Promise<{ seconds: number; cpuUs: number; loop: Paced['loop'] }> {
  const delay = loopDelay();
  try {
    return { ...(await measured(job)), loop: delay.read() };
  } finally {
    delay.stop();
  }
}

/**
 * `n` commands over `conversations` conversations, `concurrency` requests in flight, against `simUrl` (instance
 * `bench`, key `bench-key`); the pipe and the bridge keep their command ledger on Kafka at `brokers`.
 */
export async function benchCommands(simUrl: string, brokers: string[], n: number, conversations: number, concurrency: number): Promise<CommandBench> {
  const client = await startClient();
  try {
    const r = await client.ask(`raw ${simUrl} ${n} ${concurrency} ${conversations} ${RAW_WARM_UP}`);
    const raw: Result = { label: `raw sendText c=${concurrency} (to 201)`, eventsPerSec: r.perSec, p50ms: r.p50ms, p99ms: r.p99ms, cpuUsPerEvent: r.cpuUs };
    const run = `${process.pid}-${Date.now()}`;

    const pipeRun = await startRawCommandPipe({ brokers, simUrl, instance: 'bench', apiKey: 'bench-key', topics: { ledger: `bench-pipe-ledger-${run}`, events: `bench-pipe-events-${run}` } });
    let pipe: Result;
    let pipePaced: Paced;
    // Failed commands count as done, so a failure ends the wait; the phase then fails on it.
    const pipeDone = () => pipeRun.finished() + pipeRun.failed();
    try {
      await client.ask(`submit ${pipeRun.url} ${TOKEN} 0 ${WARM_UP} ${concurrency} ${conversations}`);
      await until(pipeDone, WARM_UP, 'raw command pipe');
      let answers!: ClientAnswer;
      const m = await measured(async () => {
        answers = await client.ask(`submit ${pipeRun.url} ${TOKEN} ${WARM_UP} ${n} ${concurrency} ${conversations}`);
        await until(pipeDone, WARM_UP + n, 'raw command pipe');
      });
      if (pipeRun.failed()) throw new Error(`the raw command pipe failed ${pipeRun.failed()} command(s)`);
      pipe = { label: `raw command pipe c=${concurrency} (to 202)`, eventsPerSec: n / m.seconds, p50ms: answers.p50ms, p99ms: answers.p99ms, cpuUsPerEvent: m.cpuUs / n };
      const rate = Math.max(1, Math.round(pipe.eventsPerSec / 2));
      const count = rate * PACED_SECONDS;
      let slow!: ClientAnswer;
      const paced = await measuredWithLoop(async () => {
        slow = await client.ask(`paced ${pipeRun.url} ${TOKEN} ${WARM_UP + n} ${count} ${rate} ${conversations} ${brokers.join(',')}`);
        await until(pipeDone, WARM_UP + n + count, 'raw command pipe');
      });
      pipePaced = { rate, cpuUsPerCommand: paced.cpuUs / count, acceptP50ms: slow.p50ms, acceptP99ms: slow.p99ms, broker: slow.broker, loop: paced.loop, client: slow.client };
      if (pipeRun.failed()) throw new Error(`the raw command pipe failed ${pipeRun.failed()} command(s)`);
    } finally {
      await pipeRun.close();
    }

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
    try {
      while (running.bridge.channels.get('wa')?.state !== 'connected') await new Promise((res) => setTimeout(res, 20));
      await client.ask(`submit ${running.url} ${TOKEN} 0 ${WARM_UP} ${concurrency} ${conversations}`);
      await until(finished, WARM_UP, 'bridge');
      // Every replica reads the whole ledger back, its own records included; on the test broker its follower's group
      // join takes about 3 s, and a run started before it measured the bridge without that work (about 10 % more
      // commands/s, so a higher "half rate"). Measured once it has read the warm-up's records (3 per command).
      const readBack = async () => (await metrics.kafkaRecordsRead.get()).values.find((v) => v.labels.reader === 'command ledger follower')?.value ?? 0;
      await until(readBack, 3 * WARM_UP, 'the ledger follower', 'records read back');
      metrics.commandTimeToSent.reset();
      let answers!: ClientAnswer;
      const full = await measured(async () => {
        answers = await client.ask(`submit ${running.url} ${TOKEN} ${WARM_UP} ${n} ${concurrency} ${conversations}`);
        await until(finished, WARM_UP + n, 'bridge');
      });
      const bq = await histogramQuantiles(metrics.commandTimeToSent);
      const bridge: Result = { label: `bridge HTTP door c=${concurrency} (to sent)`, eventsPerSec: n / full.seconds, p50ms: bq.p50, p99ms: bq.p99, cpuUsPerEvent: full.cpuUs / n };

      const rate = Math.max(1, Math.round(bridge.eventsPerSec / 2));
      const count = rate * PACED_SECONDS;
      let pacedAnswers!: ClientAnswer;
      const slow = await measuredWithLoop(async () => {
        pacedAnswers = await client.ask(`paced ${running.url} ${TOKEN} ${WARM_UP + n} ${count} ${rate} ${conversations} ${brokers.join(',')}`);
        await until(finished, WARM_UP + n + count, 'bridge');
      });
      const failed = (await metrics.commandsFinished.get()).values.filter((v) => v.labels.outcome === 'failed').reduce((s, v) => s + v.value, 0);
      // The rates above count every finished command: they hold only if none failed.
      if (failed) throw new Error(`the bridge failed ${failed} command(s) (the run's rates would count them)`);
      return {
        raw, pipe, bridge, acceptP99ms: answers.p99ms, failed, pipePaced,
        paced: { rate, cpuUsPerCommand: slow.cpuUs / count, acceptP50ms: pacedAnswers.p50ms, acceptP99ms: pacedAnswers.p99ms, broker: pacedAnswers.broker, loop: slow.loop, client: pacedAnswers.client },
      };
    } finally {
      await running.close();
    }
  } finally {
    client.stop();
  }
}
