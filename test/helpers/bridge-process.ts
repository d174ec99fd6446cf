import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TEST_TOKEN } from './bridge-harness';

const ROOT = join(__dirname, '..', '..');
const TS_NODE = require.resolve('ts-node/dist/bin');
/** `npm start`'s arguments after `node` (V8 flags, then dist/main.js): the built process runs as production runs it. */
const NPM_START = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ').slice(1);

/**
 * Below Linux's ephemeral range (32768-60999): a port found free is handed to a process that binds it seconds later,
 * and meanwhile any `listen(0)` or outgoing connection of a test running beside it could be given an ephemeral one
 * (a CI run failed on EADDRINUSE that way). Only another `freePort` can pick from here, at random.
 */
const PORTS = { from: 20_000, to: 32_000 };

/** Whether `port` can be bound on loopback now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free loopback port outside the ephemeral range (bound, then released), for a process that binds it later. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const port = PORTS.from + Math.floor(Math.random() * (PORTS.to - PORTS.from));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${PORTS.from}-${PORTS.to} after 100 tries`);
}

/**
 * Starts one bridge process per name with the same config, each on a free port; resolves once every one is up. The
 * processes are pushed into `into` before they start, so a test's teardown kills them even when a start fails.
 */
export async function startReplicas(into: BridgeProcess[], names: readonly string[], config: Record<string, unknown>, timeoutMs = 60_000): Promise<void> {
  for (const name of names) into.push(new BridgeProcess(name, config, await freePort()));
  await Promise.all(into.map((r) => r.start(timeoutMs)));
}

/**
 * A bridge running as its own process (`src/main.ts`, as `npm start` runs it), configured by a YAML file written
 * for it, with its JSON log lines kept for the test.
 */
/** How a BridgeProcess runs: the TypeScript source through ts-node (default), or the build in `dist/` as `npm start` does. */
export interface BridgeProcessOptions {
  entry?: 'src' | 'dist';
  /** Extra environment (e.g. LOG_LEVEL, secrets the config interpolates). */
  env?: Record<string, string>;
}

export class BridgeProcess {
  readonly logs: Array<Record<string, unknown>> = [];
  /** The config file this process reads, and the folder around it (state, dead letters). */
  dir = '';
  readonly url: string;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  private child?: ChildProcessWithoutNullStreams;
  private readonly partial = { stdout: '', stderr: '' };
  private readonly exited: Promise<void>;
  private markExited!: () => void;

  constructor(readonly name: string, private readonly config: Record<string, unknown>, readonly port: number, private readonly opts: BridgeProcessOptions = {}) {
    this.url = `http://127.0.0.1:${port}`;
    this.exited = new Promise((resolve) => (this.markExited = resolve));
  }

  /** Spawns the process and resolves once it logged `chatbridge started`. */
  async start(timeoutMs = 30_000): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), `chatbridge-${this.name}-`));
    this.dir = dir;
    const file = join(dir, 'chatbridge.yaml');
    writeFileSync(file, stringify({ stateDir: join(dir, 'state'), deadLetter: { file: join(dir, 'dead-letter.jsonl') }, ...this.config }));
    const args = this.opts.entry === 'dist' ? NPM_START : [TS_NODE, '--transpile-only', 'src/main.ts'];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH, CHATBRIDGE_CONFIG: file, PORT: String(this.port), CHATBRIDGE_API_TOKENS: TEST_TOKEN, LOG_LEVEL: 'info', ...this.opts.env },
    });
    this.child = child;
    // In embedded mode the log is on stderr (stdout carries the events): both are read line by line.
    child.stdout.on('data', (d: Buffer) => this.onData('stdout', d));
    child.stderr.on('data', (d: Buffer) => this.onData('stderr', d));
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.markExited();
    });
    await this.waitForLog('chatbridge started', (l) => l.msg === 'chatbridge started', timeoutMs);
  }

  /** Resolves with the first log line matching `match`; throws after `timeoutMs` or when the process exits first. */
  async waitForLog(what: string, match: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const line = this.logs.find(match);
      if (line) return line;
      if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${what}; last logs: ${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.name}: timed out waiting for ${what}; last logs: ${this.tail()}`);
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.exit ? undefined : this.child?.pid;
  }

  /** Sends a signal; resolves with the exit once the process ended. */
  async signal(sig: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exit) this.child?.kill(sig);
    await this.exited;
    return this.exit as { code: number | null; signal: NodeJS.Signals | null };
  }

  /** An authenticated JSON request to this replica's API. */
  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  /** Kills the process if it still runs (cleanup). */
  async kill(): Promise<void> {
    if (this.child && !this.exit) await this.signal('SIGKILL');
  }

  private tail(): string {
    return JSON.stringify(this.logs.slice(-8));
  }

  private onData(stream: 'stdout' | 'stderr', d: Buffer): void {
    this.partial[stream] += d.toString('utf8');
    let i: number;
    while ((i = this.partial[stream].indexOf('\n')) >= 0) {
      const line = this.partial[stream].slice(0, i);
      this.partial[stream] = this.partial[stream].slice(i + 1);
      try {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.logs.push({ raw: line });
      }
    }
  }
}
