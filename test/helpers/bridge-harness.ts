import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { LevelWithSilent } from 'pino';
import { createRootLogger } from '../../src/common/logger';
import { startBridge, type RunningBridge } from '../../src/boot/bootstrap';
import { loadConfig } from '../../src/config/config.loader';
import { eventSchemaProblem, throwSchemaProblems } from './event-schemas';

/** A bridge started in-process for a test, with what the test needs to look at. */
export interface TestBridge extends RunningBridge {
  /** Embedded-mode event lines written so far (parsed); throws once one did not match its schema (docs/schemas). */
  stdoutEvents(): Array<Record<string, unknown>>;
  deadLetterFile: string;
  /** GET with the test token. */
  get(path: string, token?: string | null): Promise<{ status: number; body: unknown; text: string }>;
}

export const TEST_TOKEN = 'test-token-0123456789';

/**
 * The test bridges' shutdownGraceMs. Its third is what a command consumer still in its first group join gets at
 * close (the join is awaited, then the consumer leaves): the test broker's first join takes ~3 s, so a bridge closed
 * soon after its start would otherwise leave the join finishing after its test file ended.
 */
const TEST_SHUTDOWN_GRACE_MS = 10_500;

/** Fast reconnects so tests do not wait on production backoff. */
export const FAST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 300, authInitialDelayMs: 400, authMaxDelayMs: 1000, stableAfterMs: 1000 };

/** Starts a bridge from a raw config object (as if read from YAML). Logs are silent unless TEST_LOG_LEVEL is set. */
export async function startTestBridge(raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, logTo?: { level: string; lines: string[] }): Promise<TestBridge> {
  const dir = mkdtempSync(join(tmpdir(), 'chatbridge-test-'));
  const deadLetterFile = join(dir, 'dead-letter.jsonl');
  const { config } = loadConfig({
    raw: { reconnect: FAST_RECONNECT, deadLetter: { file: deadLetterFile }, stateDir: join(dir, 'state'), shutdownGraceMs: TEST_SHUTDOWN_GRACE_MS, ...withOwnCommandGroup(raw) },
    env: { PORT: '0', CHATBRIDGE_API_TOKENS: TEST_TOKEN, ...env },
  });
  // The production logger (redaction included), writing into the test's array or silent.
  const log = logTo
    ? createRootLogger(logTo.level as LevelWithSilent, { write: (line: string) => void logTo.lines.push(line) })
    : createRootLogger((process.env.TEST_LOG_LEVEL ?? 'silent') as LevelWithSilent, 2);
  const out = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  const schemaProblems: string[] = [];
  let partial = '';
  out.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = JSON.parse(partial.slice(0, i)) as Record<string, unknown>;
      const problem = eventSchemaProblem(line);
      if (problem) schemaProblems.push(problem);
      lines.push(line);
      partial = partial.slice(i + 1);
    }
  });
  const running = await startBridge(config, log, { stdout: out, defaultMetrics: false, host: '127.0.0.1' });
  return {
    ...running,
    deadLetterFile,
    stdoutEvents: () => (throwSchemaProblems('stdout', schemaProblems), lines),
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

/**
 * A bridge whose Kafka config names neither a `clientId` nor a `consumer.commandGroup` gets a command group of its
 * own instead of the default `chatbridge.commands`, which every such bridge of every test and worker would share.
 * On the test broker a member that left its group still holds up the next join until its session times out (30 s
 * by default): with one shared group, joins took that long and tests closed their bridges in the middle of one.
 */
function withOwnCommandGroup(raw: Record<string, unknown>): Record<string, unknown> {
  const kafka = raw.kafka as { clientId?: unknown; consumer?: Record<string, unknown> } | undefined;
  if (!kafka || kafka.clientId !== undefined || kafka.consumer?.commandGroup !== undefined) return raw;
  return { ...raw, kafka: { ...kafka, consumer: { ...kafka.consumer, commandGroup: `test-commands-${randomUUID().slice(0, 8)}` } } };
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
