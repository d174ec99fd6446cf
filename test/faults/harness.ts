import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BridgeProcess, freePort, type BridgeProcessOptions } from '../helpers/bridge-process';
import { FAST_RECONNECT } from '../helpers/bridge-harness';

/**
 * The fault suite's harness (`npm run faults`): every row runs the built bridge (`node dist/main.js`, as `npm start`
 * does) as its own process against the simulators and the test broker, feeds it one hostile input or one fault, and
 * checks the same four things: the process is still up, `/healthz` answers within 200 ms, the next normal item
 * arrives, and nothing was silently dropped (what was refused is in the dead letters or a refusal event). Each row
 * prints one line with its figures.
 */

/** `/healthz` must answer within this long while and after a fault (ms). */
export const HEALTHZ_WITHIN_MS = 200;

/** Starts the built bridge with `config` (YAML-equivalent object) and resolves once it logged `chatbridge started`. */
export async function startBuiltBridge(name: string, config: Record<string, unknown>, opts: BridgeProcessOptions = {}): Promise<BridgeProcess> {
  if (!existsSync(join(__dirname, '..', '..', 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` before `npm run faults`');
  const bridge = new BridgeProcess(name, { reconnect: FAST_RECONNECT, shutdownGraceMs: 5000, ...config }, await freePort(), { entry: 'dist', ...opts });
  await bridge.start(60_000);
  return bridge;
}

/** Times one `GET /healthz`; the process must be alive and the answer a 200. */
export async function healthzMs(bridge: BridgeProcess): Promise<number> {
  if (bridge.exit) throw new Error(`${bridge.name} exited: ${JSON.stringify(bridge.exit)}`);
  const t0 = performance.now();
  const res = await fetch(`${bridge.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
  return ms;
}

/** Asserts the process is up and `/healthz` answers within HEALTHZ_WITHIN_MS; returns the time taken. */
export async function expectHealthy(bridge: BridgeProcess): Promise<number> {
  const ms = await healthzMs(bridge);
  expect(bridge.exit).toBeUndefined();
  expect(ms).toBeLessThan(HEALTHZ_WITHIN_MS);
  return ms;
}

/** Resident set size of a process (MiB), from /proc. */
export function rssMiB(pid: number | undefined): number {
  if (!pid) throw new Error('process not running');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

/** The bridge's dead-letter file (JSON lines), parsed; empty when none was written. */
export function deadLetters(bridge: BridgeProcess): Array<Record<string, unknown>> {
  const file = join(bridge.dir, 'dead-letter.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Prints the row's one line of figures (`FAULT <row>: k=v …`), straight to the terminal, not through jest's console. */
export function report(row: string, figures: Record<string, string | number | boolean>): void {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`FAULT ${row}: ${parts.join(' ')}\n`);
}

/** Sends a command through a bridge's HTTP door (202) and resolves with its view once `sent`; throws when it failed. */
export async function sentCommand(bridge: BridgeProcess, channelId: string, body: Record<string, unknown>): Promise<{ status: string; conversationId?: string }> {
  expect((await bridge.request('POST', `/v1/channels/${channelId}/commands`, body)).status).toBe(202);
  return until(`command ${String(body.commandId)} sent`, async () => {
    const view = (await bridge.request('GET', `/v1/commands/${String(body.commandId)}`)).body as { status: string; conversationId?: string };
    if (view.status === 'failed') throw new Error(`command failed: ${JSON.stringify(view)}`);
    return view.status === 'sent' && view;
  }, 30_000);
}
