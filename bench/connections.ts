/**
 * Smartsupp visitor sockets at scale: opens N visitor sockets (one per conversation, as the upstream
 * requires) through the real SmartsuppConnector against the simulator running in a CHILD process, then
 * measures heap and RSS per connection and this process's CPU while idle. `ts-node bench/connections.ts [N]`.
 */
import { startChild } from './fixtures';
import ioV2 from 'socket.io-client-v2';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { DEFAULT_BACKOFF } from '../src/common/backoff';
import type { ChannelStore } from '../src/connectors/connector.interface';
import { SmartsuppConnector } from '../src/connectors/smartsupp/smartsupp.connector';
import { SmartsuppOptions } from '../src/connectors/smartsupp/smartsupp.options';

/** What `benchVisitorConnections` reports. */
export interface VisitorConnectionsResult {
  connections: number;
  heapPerConnectionKB: number;
  rssPerConnectionKB: number;
  idleCpuPercent: number;
  connectSeconds: number;
}

/** How garbage collection was forced before each memory reading (set by the last run). */
export let gcMode: 'exposed' | 'v8-flag' | 'none' = 'none';

const IDLE_MS = 5_000;
const CONCURRENCY = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `global.gc` when run with `--expose-gc`, else the flag set at runtime, else a no-op (best effort). */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) {
    gcMode = 'exposed';
    return exposed;
  }
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gcMode = 'v8-flag';
    return gc;
  } catch {
    gcMode = 'none';
    return () => undefined;
  }
}

async function settledMemory(gc: () => void): Promise<{ heap: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

async function startSimChild() {
  const sim = await startChild('smartsupp-sim-process.ts');
  return {
    url: sim.url,
    live: async (): Promise<number> => Number((await sim.ask('live')).replace(/^LIVE /, '')),
    stop: () => sim.kill(),
  };
}

/** A ChannelStore in memory (the benchmark does not measure the state file). */
function memoryStore(): ChannelStore {
  const data = new Map<string, unknown>();
  return { get: <T>(k: string) => data.get(k) as T | undefined, set: (k, v) => void data.set(k, v) };
}

/** Opens `count` visitor sockets through the connector and measures them. */
export async function benchVisitorConnections(count: number): Promise<VisitorConnectionsResult> {
  const gc = collector();
  const sim = await startSimChild();
  const options = Object.assign(new SmartsuppOptions(), { url: sim.url, key: 'bench-key' });
  let frames = 0;
  const connector = new SmartsuppConnector({
    channelId: 'bench',
    options,
    hooks: { frame: () => void frames++, lost: () => undefined, guard: (_where, fn) => fn, fault: (where, err) => { throw err; } },
    logger: pino({ level: 'error' }),
    mode: () => 'socket',
    store: memoryStore(),
    policy: { backoff: DEFAULT_BACKOFF, authBackoff: { initialDelayMs: 30_000, maxDelayMs: 300_000, multiplier: 2 }, stableAfterMs: 30_000 },
  });
  try {
    await connector.connect();
    const before = await settledMemory(gc);
    const t0 = performance.now();
    let started = 0;
    const worker = async () => {
      while (started < count) {
        started++;
        await connector.execute({ commandId: `start-${started}`, type: 'conversation.start' });
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
    const connectSeconds = (performance.now() - t0) / 1000;
    const upstreamLive = await sim.live();
    // Every start resolved at its visitor's handshake: the bridge holds them all live.
    if (connector.heldConversations() !== count || upstreamLive !== count) throw new Error(`expected ${count} live visitors, bridge holds ${connector.heldConversations()}, simulator ${upstreamLive}`);
    await sleep(1000);
    const after = await settledMemory(gc);
    const cpu0 = process.cpuUsage();
    await sleep(IDLE_MS);
    const cpu = process.cpuUsage(cpu0);
    return {
      connections: count,
      heapPerConnectionKB: round((after.heap - before.heap) / 1024 / count),
      rssPerConnectionKB: round((after.rss - before.rss) / 1024 / count),
      idleCpuPercent: round(((cpu.user + cpu.system) / 1000 / IDLE_MS) * 100),
      connectSeconds: round(connectSeconds),
    };
  } finally {
    await connector.close();
    sim.stop();
  }
}

/**
 * Baseline in the same run: `count` bare socket.io v2 clients to the same simulator, each sending the same
 * `visitor.connect` and waiting for its ack, with no bridge around them.
 */
export async function benchBareV2Clients(count: number): Promise<{ heapPerConnectionKB: number }> {
  const gc = collector();
  const sim = await startSimChild();
  const sockets: Array<ReturnType<typeof ioV2>> = [];
  try {
    const before = await settledMemory(gc);
    for (let i = 0; i < count; i += CONCURRENCY) {
      await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, count - i) }, () => new Promise<void>((resolve, reject) => {
          const socket = ioV2(sim.url, { path: '/socket', transports: ['websocket'], forceNew: true, reconnection: false });
          sockets.push(socket);
          socket.on('connect_error', reject);
          socket.on('connect', () => socket.emit('visitor.connect', { id: null, key: 'bench-key', bundleVersion: 'bench' }, () => resolve()));
        })),
      );
    }
    await sleep(1000);
    const after = await settledMemory(gc);
    return { heapPerConnectionKB: round((after.heap - before.heap) / 1024 / count) };
  } finally {
    for (const s of sockets) s.close();
    sim.stop();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? process.env.BENCH_VISITORS ?? 2000);
  const result = await benchVisitorConnections(count);
  console.log(JSON.stringify({ ...result, gc: gcMode }, null, 2));
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
