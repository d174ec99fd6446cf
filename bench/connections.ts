/**
 * Smartsupp visitor sockets at scale (the `visitors` phase of `npm run bench`): N visitor sockets (one per
 * conversation, as the upstream requires) in ONE bridge process, the simulator in another, and the baseline (N bare
 * socket.io v2 clients with the same handshake) in a third, so each heap reading is one process's whole heap.
 *
 * The bridge process runs the real bridge (startBridge, no Kafka, events to a discarding stdout) with one Smartsupp
 * channel. It first opens the N visitors by `conversation.start` through the channel's connector (as the command
 * delivery calls it), and is closed (the state file keeps the N visitors); a second bridge process then resumes them
 * the way a restart does, `smartsupp.startConcurrency` handshakes at a time. Each process is measured live: heapUsed
 * after GC (`--expose-gc`), RSS, CPU while idle. The holding processes run this file and the bridge transpiled to
 * JavaScript first (as ts-node would, transpile only, into `.data/`), so like a built bridge they hold no TypeScript
 * compiler. `ts-node bench/connections.ts [N]` runs the phase alone.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Writable } from 'node:stream';
import type { ChildProcessLink } from './fixtures';

/** One process holding the visitor sockets, as measured. */
export interface HolderReading {
  /** Whole-process heapUsed after GC, bytes. */
  heap: number;
  /** The same process before any socket (the bridge started, or the client library loaded), bytes. */
  idleHeap: number;
  rss: number;
  idleRss: number;
  /** Process CPU over one ping interval while every socket is open and nothing is sent, percent of one core. */
  idleCpuPercent?: number;
  /** All N sockets live upstream (the simulator's count), seconds from the first open. */
  connectSeconds: number;
  /** The simulator process's RSS then, bytes (it holds the other ends). */
  simulatorRss: number;
}

/** What the phase reports. */
export interface VisitorScale {
  visitors: number;
  /** `conversation.start` callers in flight while the visitors are opened. */
  startsInFlight: number;
  /** The connector's `smartsupp.startConcurrency` (handshakes at a time when persisted visitors resume). */
  startConcurrency: number;
  /** Budget per round of `startConcurrency` handshakes that makes the resume bound. */
  roundBudgetMs: number;
  started: HolderReading;
  resumed: HolderReading;
  bare: HolderReading;
}

/** The goal printed beside the heap: 10,000 visitors in one process within 200 MB. */
const HEAP_GOAL_MB = 200;

const STARTS_IN_FLIGHT = 200;
/** Default `smartsupp.startConcurrency` (SmartsuppOptions). */
const START_CONCURRENCY = 100;
/**
 * A round of `startConcurrency` loopback handshakes (TCP, WebSocket upgrade, Engine.IO and socket.io open,
 * `visitor.connect` and its ack) takes well under 200 ms on a quiet machine; 600 ms leaves room for a busy one.
 */
const ROUND_BUDGET_MS = 600;
/** One Engine.IO ping interval of the simulator (socket.io 2.x default): every socket pings once in it. */
const IDLE_MS = 25_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// The measuring side (bench/run.ts, or this file run alone).

/** Runs the phase: the simulator, the two bridge processes and the baseline process, one after another. */
export async function benchVisitorScale(count: number): Promise<VisitorScale> {
  // Loaded here, not at the top: the holding processes run this file too and load only what they measure.
  const { startChild } = await import('./fixtures');
  const build = transpiled();
  const script = join(build, 'bench', 'connections.js');
  const stateDir = mkdtempSync(join(tmpdir(), 'chatbridge-bench-visitors-'));
  const sim = await startChild('smartsupp-sim-process.ts');
  try {
    const env = { BENCH_VISITOR_STATE: stateDir, BENCH_VISITOR_SIM: sim.url, BENCH_VISITORS: String(count) };
    const started = await holder(startChild, script, sim, 'bridge', env, count, { open: true, idleCpu: false });
    // A resuming bridge opens its visitors while it starts: its idle heap is the first bridge's.
    const resuming = await holder(startChild, script, sim, 'bridge', env, count, { open: false, idleCpu: true });
    const resumed = { ...resuming, idleHeap: started.idleHeap, idleRss: started.idleRss };
    const bare = await holder(startChild, script, sim, 'bare', env, count, { open: true, idleCpu: true });
    return { visitors: count, startsInFlight: STARTS_IN_FLIGHT, startConcurrency: START_CONCURRENCY, roundBudgetMs: ROUND_BUDGET_MS, started, resumed, bare };
  } finally {
    sim.kill();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(build, { recursive: true, force: true });
  }
}

/**
 * One holding process: `open` opens `count` new sockets (conversation.start, or bare clients); otherwise the
 * process resumes the visitors its state file names. Timed until the simulator counts them all live.
 */
async function holder(
  startChild: typeof import('./fixtures').startChild,
  script: string,
  sim: ChildProcessLink,
  role: 'bridge' | 'bare',
  env: NodeJS.ProcessEnv,
  count: number,
  { open, idleCpu }: { open: boolean; idleCpu: boolean },
): Promise<HolderReading> {
  const child = await startChild(script, { ...env, BENCH_VISITOR_ROLE: role }, ['--expose-gc']);
  try {
    const idle = JSON.parse(await child.ask('idle')) as { heap: number; rss: number; at: number };
    const t0 = open ? Date.now() : idle.at;
    const opened = open ? child.ask('open') : undefined;
    let live = 0;
    while ((live = await simLive(sim)) < count) {
      if (Date.now() - t0 > 300_000) throw new Error(`${role}: ${live} of ${count} sockets live after 300 s`);
      await sleep(50);
    }
    const connectSeconds = (Date.now() - t0) / 1000;
    const simulatorRss = Number((await sim.ask('memory')).replace(/^MEMORY /, ''));
    if (opened) {
      const answer = await opened;
      if (answer !== 'OPENED') throw new Error(`${role}: ${answer}`);
    }
    const held = JSON.parse(await child.ask('memory')) as { heap: number; rss: number };
    const idleCpuPercent = idleCpu ? Number(await child.ask('cpu')) : undefined;
    await child.ask('close');
    return { heap: held.heap, idleHeap: idle.heap, rss: held.rss, idleRss: idle.rss, idleCpuPercent, connectSeconds, simulatorRss };
  } finally {
    child.kill();
    // The simulator sees the sockets go before the next process opens its own.
    const deadline = Date.now() + 30_000;
    while ((await simLive(sim)) > 0 && Date.now() < deadline) await sleep(50);
  }
}

/**
 * `src/` (without specs) and this file transpiled into a new `.data/bench-build-*` directory (one per run), as ts-node
 * transpiles them in memory; returns the directory. Its packages resolve from the repository's node_modules, as for
 * `dist/`.
 */
function transpiled(): string {
  const ts = require('typescript') as typeof import('typescript');
  const root = join(__dirname, '..');
  mkdirSync(join(root, '.data'), { recursive: true });
  const out = mkdtempSync(join(root, '.data', 'bench-build-'));
  const { config } = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
  const compilerOptions = { ...ts.convertCompilerOptionsFromJson(config.compilerOptions, root).options, sourceMap: false };
  const sources = ts.sys.readDirectory(join(root, 'src'), ['.ts'], ['**/*.spec.ts', '**/*.d.ts', '**/__fixtures__/**']);
  for (const file of [...sources, __filename]) {
    const js = ts.transpileModule(ts.sys.readFile(file) ?? '', { compilerOptions, fileName: file }).outputText;
    const target = join(out, relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
  }
  return out;
}

async function simLive(sim: ChildProcessLink): Promise<number> {
  return Number((await sim.ask('live')).replace(/^LIVE /, ''));
}

/** The phase's lines for the bench output. */
export function visitorLines(v: VisitorScale): string[] {
  const mb = (b: number) => `${(b / MB).toFixed(1)} MB`;
  const per = (r: HolderReading) => (r.heap - r.idleHeap) / 1024 / v.visitors;
  const cpu = (r: HolderReading) => (r.idleCpuPercent === undefined ? '' : `; idle CPU ${r.idleCpuPercent.toFixed(2)} % over ${IDLE_MS / 1000} s`);
  const held = (r: HolderReading, idle: string, unit: string) =>
    `heap ${mb(r.heap)} after GC (${idle} ${mb(r.idleHeap)} + ${per(r).toFixed(1)} KB per ${unit}), RSS ${mb(r.rss)}${cpu(r)}`;
  const rounds = Math.ceil(v.visitors / v.startConcurrency);
  const bound = (rounds * v.roundBudgetMs) / 1000;
  const worst = v.started.heap > v.resumed.heap ? v.started : v.resumed;
  const bare = per(v.bare);
  const cpuRatio = v.resumed.idleCpuPercent !== undefined && v.bare.idleCpuPercent ? `; idle CPU ${(v.resumed.idleCpuPercent / v.bare.idleCpuPercent).toFixed(2)}x` : '';
  return [
    `-- visitors: ${v.visitors} Smartsupp visitor sockets (socket.io v2) in one bridge process (transpiled, no compiler loaded), simulator in its own process --`,
    `opened by ${v.visitors} conversation.start   ${held(v.started, 'idle bridge', 'visitor')}; all live in ${v.started.connectSeconds.toFixed(1)} s (${v.startsInFlight} starts in flight)`,
    `resumed after a restart        ${held(v.resumed, 'idle bridge', 'visitor')}; all live in ${v.resumed.connectSeconds.toFixed(1)} s`,
    `bare socket.io v2 clients      ${held(v.bare, 'idle', 'socket')} (same handshake; the library's floor)`,
    `goal heap with ${v.visitors} visitors ${mb(worst.heap)} (goal ≤ ${HEAP_GOAL_MB} MB); resume ${v.resumed.connectSeconds.toFixed(1)} s (goal ≤ ${bound.toFixed(0)} s: ${rounds} rounds of startConcurrency ${v.startConcurrency}, ≤ ${v.roundBudgetMs} ms each)`,
    `ratio bridge/bare per socket: heap ${(per(worst) / bare).toFixed(2)}x (library ${bare.toFixed(1)} KB, the bridge's own ${(per(worst) - bare).toFixed(1)} KB per visitor)${cpuRatio}; simulator RSS ${mb(worst.simulatorRss)} holding the other ends`,
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// The holding side: this file in its own process (BENCH_VISITOR_ROLE), driven over stdin.

async function settledMemory(): Promise<{ heap: number; rss: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the visitors phase needs node --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

/** When the bridge was asked to start (a resuming bridge opens its visitors from then on). */
let startedAt = 0;

interface Holding {
  open(count: number): Promise<void>;
  close(): Promise<void>;
}

/** The real bridge with one Smartsupp channel; its visitors are opened through the channel's connector. */
async function bridgeHolding(simUrl: string, stateDir: string, count: number): Promise<Holding> {
  const { startBridge } = await import('../src/boot/bootstrap');
  const { createRootLogger } = await import('../src/common/logger');
  const { loadConfig } = await import('../src/config/config.loader');
  const { config } = loadConfig({
    raw: { stateDir, channels: [{ id: 'bench', provider: 'smartsupp', smartsupp: { url: simUrl, key: 'bench-key', maxVisitors: count } }] },
    env: { PORT: '0' },
  });
  const discard = new Writable({ write: (_chunk, _enc, done) => done() });
  startedAt = Date.now();
  const running = await startBridge(config, createRootLogger('error', 2), { host: '127.0.0.1', defaultMetrics: false, stdout: discard });
  return {
    open: async (n) => {
      const connector = running.bridge.channels.entry('bench')?.link.supervisor?.connection;
      if (!connector?.execute) throw new Error('the bench channel has no connector');
      let started = 0;
      const caller = async () => {
        while (started < n) await connector.execute?.({ commandId: `start-${++started}`, type: 'conversation.start' });
      };
      await Promise.all(Array.from({ length: Math.min(STARTS_IN_FLIGHT, n) }, caller));
    },
    close: () => running.close(),
  };
}

/** The baseline: bare socket.io v2 clients, each sending the same `visitor.connect` and waiting for its ack. */
async function bareHolding(simUrl: string): Promise<Holding> {
  const { default: ioV2 } = await import('socket.io-client-v2');
  const sockets: Array<ReturnType<typeof ioV2>> = [];
  const one = () =>
    new Promise<void>((resolve, reject) => {
      // The same transport as the bridge's visitors: the `ws` client, not Node's global WebSocket.
      const socket = ioV2(simUrl, { path: '/socket', transports: ['websocket'], forceNode: true, forceNew: true, reconnection: false });
      sockets.push(socket);
      socket.on('connect_error', reject);
      socket.on('connect', () => socket.emit('visitor.connect', { id: null, key: 'bench-key', bundleVersion: 'bench' }, () => resolve()));
    });
  return {
    open: async (n) => {
      for (let i = 0; i < n; i += STARTS_IN_FLIGHT) await Promise.all(Array.from({ length: Math.min(STARTS_IN_FLIGHT, n - i) }, one));
    },
    close: async () => {
      for (const s of sockets) s.close();
    },
  };
}

async function hold(role: string): Promise<void> {
  const { createInterface } = await import('node:readline');
  const env = process.env;
  const count = Number(env.BENCH_VISITORS);
  const holding = role === 'bridge' ? await bridgeHolding(String(env.BENCH_VISITOR_SIM), String(env.BENCH_VISITOR_STATE), count) : await bareHolding(String(env.BENCH_VISITOR_SIM));
  process.stdout.write('URL -\n');
  const answers: Record<string, () => Promise<string>> = {
    // Read once the phase's code is loaded: for a resuming bridge the visitors are already opening (they are a few MB).
    idle: async () => JSON.stringify({ ...(await settledMemory()), at: startedAt }),
    open: async () => {
      await holding.open(count);
      return 'OPENED';
    },
    memory: async () => {
      await sleep(1000);
      return JSON.stringify(await settledMemory());
    },
    cpu: async () => {
      const cpu0 = process.cpuUsage();
      await sleep(IDLE_MS);
      const cpu = process.cpuUsage(cpu0);
      return String(((cpu.user + cpu.system) / 1000 / IDLE_MS) * 100);
    },
    close: async () => {
      await holding.close();
      return 'CLOSED';
    },
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const answer = answers[line.trim()];
    process.stdout.write(`${answer ? await answer().catch((err: unknown) => `ERROR ${String(err)}`) : `ERROR unknown ${line}`}\n`);
  }
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? process.env.BENCH_VISITORS ?? 10_000);
  for (const line of visitorLines(await benchVisitorScale(count))) console.log(line);
}

if (require.main === module) {
  const role = process.env.BENCH_VISITOR_ROLE;
  (role ? hold(role) : main()).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
