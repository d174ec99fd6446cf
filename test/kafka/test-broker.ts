/**
 * A real Kafka-protocol test broker: librdkafka's built-in mock cluster,
 * driven by the small C launcher in ./mock-cluster.c.
 *
 * Needs gcc and librdkafka-dev (>= 2.0, for rdkafka_mock.h). The launcher is
 * compiled on first use into test/kafka/.build/ and rebuilt whenever
 * mock-cluster.c is newer than the binary.
 *
 * Mock cluster limitations worth knowing in tests:
 *  - no CreateTopics/DeleteTopics/DescribeConfigs/DescribeGroups: create
 *    topics with `startTestBroker({ topics })` or `broker.createTopic()`
 *    (unknown topics are auto-created with 4 partitions);
 *  - an empty fetch waits the full maxWaitTimeInMs, so use a small one;
 *  - the first consumer-group join takes ~3 s (initial rebalance delay);
 *  - `down()` closes the broker's connections and its listener (clients get
 *    ECONNREFUSED quickly); `up()` listens again on the same port. Neither
 *    moves partition leadership.
 */
import { ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createInterface, Interface } from 'node:readline';

export interface TestBrokerOptions {
  /** Number of brokers in the cluster (ids 1..brokers). Default 3. */
  brokers?: number;
  /** Topics to create before the broker is reported ready. */
  topics?: Array<{ name: string; partitions: number }>;
}

export interface TestBroker {
  /** host:port of every broker. */
  readonly bootstrap: string[];
  /** Launcher process id (for diagnostics / leak checks). */
  readonly pid: number;
  /** Disconnect a broker (1..N) and refuse service; default: all brokers. */
  down(brokerId?: number): Promise<void>;
  /** Bring a broker (1..N) back; default: all brokers. */
  up(brokerId?: number): Promise<void>;
  /** Create a topic (replication factor min(3, brokers)). */
  createTopic(name: string, partitions: number): Promise<void>;
  /**
   * Make the next `count` requests with the given Kafka ApiKey (e.g. 0 =
   * Produce) fail with `errorCode` (a Kafka protocol error code, or a
   * librdkafka internal one such as -195 = transport failure / disconnect).
   */
  pushRequestErrors(apiKey: number, count: number, errorCode: number): Promise<void>;
  /** Add a response delay (round-trip time) in ms; default: all brokers. */
  setRtt(ms: number, brokerId?: number): Promise<void>;
  /** Destroy the cluster and wait for the launcher to exit (idempotent). */
  stop(): Promise<void>;
}

const SOURCE = path.join(__dirname, 'mock-cluster.c');
const BUILD_DIR = path.join(__dirname, '.build');
const BINARY = path.join(BUILD_DIR, 'mock-cluster');
const APT_HINT = 'install them with: sudo apt-get install -y gcc librdkafka-dev';

const STARTUP_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 10_000;
const STOP_KILL_AFTER_MS = 3_000;

let buildOnce: Promise<string> | undefined;

/** Compile the launcher if missing or older than its source; returns its path. */
export function ensureMockClusterBinary(): Promise<string> {
  if (!buildOnce) {
    buildOnce = buildIfStale();
    buildOnce.catch(() => {
      buildOnce = undefined; // allow a retry after e.g. installing packages
    });
  }
  return buildOnce;
}

async function mtimeMs(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).mtimeMs;
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

async function buildIfStale(): Promise<string> {
  const srcTime = await mtimeMs(SOURCE);
  if (srcTime === undefined) throw new Error(`test broker: launcher source missing: ${SOURCE}`);
  const binTime = await mtimeMs(BINARY);
  if (binTime !== undefined && binTime >= srcTime) return BINARY;

  await fs.mkdir(BUILD_DIR, { recursive: true });
  // Parallel Jest workers may all decide to build: each compiles to its own
  // temp file and renames it into place (atomic on the same filesystem).
  const tmp = path.join(BUILD_DIR, `mock-cluster.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await run('gcc', ['-O2', '-o', tmp, SOURCE, '-lrdkafka']);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`test broker: gcc not found; the Kafka test broker needs gcc and librdkafka-dev, ${APT_HINT}`);
    }
    const output = (e.stderr ?? '').trim();
    if (/rdkafka(_mock)?\.h: No such file|cannot find -lrdkafka/.test(output)) {
      throw new Error(
        `test broker: librdkafka headers/library not found; the Kafka test broker needs gcc and librdkafka-dev (>= 2.0), ${APT_HINT}\n${output}`,
      );
    }
    throw new Error(`test broker: compiling ${SOURCE} failed (needs gcc and librdkafka-dev >= 2.0):\n${output || e.message}`);
  }
  await fs.rename(tmp, BINARY);
  return BINARY;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

class MockClusterProcess implements TestBroker {
  readonly pid: number;
  private readonly waiters: Waiter[] = [];
  private queue: Promise<void> = Promise.resolve();
  private readonly exited: Promise<void>;
  private exitInfo: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly bootstrap: string[],
    lines: Interface,
    private readonly stderrTail: () => string,
  ) {
    this.pid = child.pid ?? -1;
    lines.on('line', (line) => this.onLine(line));
    this.exited = new Promise<void>((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.exitInfo = signal ? `signal ${signal}` : `exit code ${String(code)}`;
        const err = new Error(`test broker exited (${this.exitInfo})${this.stderrSuffix()}`);
        for (const w of this.waiters.splice(0)) w.reject(err);
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
      else child.once('exit', onExit);
    });
    // A write to a dead launcher must not crash the test process.
    child.stdin.on('error', () => undefined);
  }

  down(brokerId?: number): Promise<void> {
    return this.command(`down ${brokerArg(brokerId)}`);
  }

  up(brokerId?: number): Promise<void> {
    return this.command(`up ${brokerArg(brokerId)}`);
  }

  createTopic(name: string, partitions: number): Promise<void> {
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(name)) {
      return Promise.reject(new Error(`test broker: invalid topic name ${JSON.stringify(name)}`));
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      return Promise.reject(new Error(`test broker: invalid partition count ${partitions}`));
    }
    return this.command(`topic ${name} ${partitions}`);
  }

  pushRequestErrors(apiKey: number, count: number, errorCode: number): Promise<void> {
    return this.command(`errors ${int(apiKey)} ${int(count)} ${int(errorCode)}`);
  }

  setRtt(ms: number, brokerId?: number): Promise<void> {
    return this.command(`rtt ${brokerArg(brokerId)} ${int(ms)}`);
  }

  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.exitInfo === undefined) {
      // "quit" goes straight to the launcher, not behind queued commands;
      // closing stdin afterwards is a second, equivalent shutdown signal.
      this.child.stdin.write('quit\n');
      this.child.stdin.end();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), STOP_KILL_AFTER_MS);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    this.child.stdout.destroy();
    this.child.stderr.destroy();
  }

  private command(line: string): Promise<void> {
    const result = this.queue.then(() => this.exchange(line));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private exchange(line: string): Promise<void> {
    if (this.exitInfo !== undefined || this.stopping) {
      return Promise.reject(new Error(`test broker: cannot send "${line}": broker is stopped`));
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`test broker: no answer to "${line}" within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(new Error(`test broker: "${line}" failed: ${err.message}`));
        },
      };
      this.waiters.push(waiter);
      this.child.stdin.write(`${line}\n`);
    });
  }

  private onLine(line: string): void {
    const waiter = this.waiters.shift();
    if (!waiter) return; // e.g. the OK for "quit"
    if (line === 'OK') waiter.resolve();
    else waiter.reject(new Error(line.startsWith('ERR ') ? line.slice(4) : `unexpected reply: ${line}`));
  }

  private stderrSuffix(): string {
    const tail = this.stderrTail().trim();
    return tail ? `; stderr:\n${tail}` : '';
  }
}

function int(n: number): string {
  if (!Number.isInteger(n)) throw new Error(`test broker: expected an integer, got ${n}`);
  return String(n);
}

function brokerArg(brokerId: number | undefined): string {
  return brokerId === undefined ? '-1' : int(brokerId);
}

/** Launch a mock Kafka cluster; always `await broker.stop()` when done. */
export async function startTestBroker(opts: TestBrokerOptions = {}): Promise<TestBroker> {
  const brokers = opts.brokers ?? 3;
  if (!Number.isInteger(brokers) || brokers < 1 || brokers > 64) {
    throw new Error(`test broker: brokers must be an integer in 1..64, got ${brokers}`);
  }
  const topicArgs = (opts.topics ?? []).map(({ name, partitions }) => {
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(name) || !Number.isInteger(partitions) || partitions < 1) {
      throw new Error(`test broker: invalid topic ${JSON.stringify({ name, partitions })}`);
    }
    return `${name}:${partitions}`;
  });

  const binary = await ensureMockClusterBinary();
  const child = spawn(binary, [String(brokers), ...topicArgs], { stdio: ['pipe', 'pipe', 'pipe'] });

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });

  const bootstrap = await new Promise<string[]>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      lines.off('line', onLine);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const fail = (msg: string): void => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`${msg}${stderr.trim() ? `; stderr:\n${stderr.trim()}` : ''}`));
    };
    const onLine = (line: string): void => {
      const m = /^BOOTSTRAP (\S+)$/.exec(line);
      if (!m) return fail(`test broker: unexpected first line from ${binary}: ${JSON.stringify(line)}`);
      cleanup();
      resolve(m[1].split(','));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      fail(`test broker: ${binary} exited before it was ready (${signal ?? `exit code ${String(code)}`})`);
    const onError = (err: Error): void => fail(`test broker: could not start ${binary}: ${err.message}`);
    const timer = setTimeout(
      () => fail(`test broker: no BOOTSTRAP line from ${binary} within ${STARTUP_TIMEOUT_MS / 1000} s`),
      STARTUP_TIMEOUT_MS,
    );
    lines.on('line', onLine);
    child.once('exit', onExit);
    child.once('error', onError);
  });

  return new MockClusterProcess(child, bootstrap, lines, () => stderr);
}
