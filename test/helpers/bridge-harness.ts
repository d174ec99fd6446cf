import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { LevelWithSilent } from 'pino';
import { createRootLogger } from '../../src/common/logger';
import { startBridge, type RunningBridge } from '../../src/boot/bootstrap';
import { loadConfig } from '../../src/config/config.loader';

/** A bridge started in-process for a test, with what the test needs to look at. */
export interface TestBridge extends RunningBridge {
  /** Embedded-mode event lines written so far (parsed). */
  stdoutEvents(): Array<Record<string, unknown>>;
  deadLetterFile: string;
  /** GET with the test token. */
  get(path: string, token?: string | null): Promise<{ status: number; body: unknown; text: string }>;
}

export const TEST_TOKEN = 'test-token-0123456789';

/** Fast reconnects so tests do not wait on production backoff. */
export const FAST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 300, authInitialDelayMs: 400, authMaxDelayMs: 1000, stableAfterMs: 1000 };

/** Starts a bridge from a raw config object (as if read from YAML). Logs are silent unless TEST_LOG_LEVEL is set. */
export async function startTestBridge(raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, logTo?: { level: string; lines: string[] }): Promise<TestBridge> {
  const dir = mkdtempSync(join(tmpdir(), 'chatbridge-test-'));
  const deadLetterFile = join(dir, 'dead-letter.jsonl');
  const { config } = loadConfig({
    raw: { reconnect: FAST_RECONNECT, deadLetter: { file: deadLetterFile }, stateDir: join(dir, 'state'), shutdownGraceMs: 3000, ...raw },
    env: { PORT: '0', CHATBRIDGE_API_TOKENS: TEST_TOKEN, ...env },
  });
  // The production logger (redaction included), writing into the test's array or silent.
  const log = logTo
    ? createRootLogger(logTo.level as LevelWithSilent, { write: (line: string) => void logTo.lines.push(line) })
    : createRootLogger((process.env.TEST_LOG_LEVEL ?? 'silent') as LevelWithSilent, 2);
  const out = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  let partial = '';
  out.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(partial.slice(0, i)) as Record<string, unknown>);
      partial = partial.slice(i + 1);
    }
  });
  const running = await startBridge(config, log, { stdout: out, defaultMetrics: false, host: '127.0.0.1' });
  return {
    ...running,
    deadLetterFile,
    stdoutEvents: () => lines,
    async get(path: string, token: string | null = TEST_TOKEN) {
      const res = await fetch(`${running.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON (metrics) */
      }
      return { status: res.status, body, text };
    },
  };
}

/** Polls `check` until it returns a truthy value or the timeout passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** Reads one metric sample's value from Prometheus text (sum over series matching all labels). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{([^}]*)\})?\s+([-+0-9.eE]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries((m[3] ?? '').split(',').filter(Boolean).map((kv) => {
      const [k, v] = kv.split('=');
      return [k, v.replace(/^"|"$/g, '')];
    }));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
