/**
 * What the benchmark phases share: a helper process driven over a line protocol, and real-shaped events.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mapZapThinker } from '../src/connectors/zapthinker/zapthinker.mapper';
import type { AnyCanonicalEvent } from '../src/envelope/envelope';
import { ZapThinkerSimulator } from '../test/simulators/zapthinker/zapthinker.simulator';

/** A helper process (`bench/<script>`, via ts-node) that prints `URL <url>` when ready and then answers one line per request. */
export interface ChildProcessLink {
  url: string;
  /** Writes one request line and resolves with the next line the child prints. */
  ask(line: string): Promise<string>;
  /** Kills the child. */
  kill(): void;
  /** Closes its stdin (a child that ends its read loop then exits on its own). */
  end(): void;
}

/**
 * Starts `bench/<script>` (via ts-node), or a built `.js` file as it is, in its own process, so a phase measures the
 * bridge's event loop alone; `nodeFlags` such as `--expose-gc`.
 */
export async function startChild(script: string, env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []): Promise<ChildProcessLink> {
  const entry = script.endsWith('.js') ? [script] : [require.resolve('ts-node/dist/bin'), '--transpile-only', `${__dirname}/${script}`];
  const child = spawn(process.execPath, [...nodeFlags, ...entry], {
    stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env },
  });
  const waiters: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  let ended: Error | undefined;
  createInterface({ input: child.stdout }).on('line', (l) => waiters.shift()?.resolve(l));
  // A child that dies (its error is on stderr) fails what waits for its answer instead of leaving the phase hanging.
  child.once('close', (code, signal) => {
    ended = new Error(`bench child ${script} ended (${signal ?? code})`);
    for (const w of waiters.splice(0)) w.reject(ended);
  });
  const next = () => new Promise<string>((resolve, reject) => (ended ? reject(ended) : waiters.push({ resolve, reject })));
  const first = await next();
  return {
    url: first.replace(/^URL /, ''),
    ask: (line) => {
      const answer = next();
      child.stdin.write(`${line}\n`);
      return answer;
    },
    kill: () => void child.kill(),
    end: () => void child.stdin.end(),
  };
}

/** Real-shaped events: ZapThinker `messages.upsert` frames through the real mapper, over `keys` conversations. */
export function zapthinkerEvents(n: number, keys: number): AnyCanonicalEvent[] {
  const shapes = new ZapThinkerSimulator({ instances: { bench: { token: 'bench-key' } } });
  const receivedAt = new Date();
  return Array.from({ length: n }, (_, i) => {
    const conv = i % keys;
    const data = shapes.messageUpsert({ instance: 'bench', remoteJid: `55119${String(10000000 + conv)}`, text: `msg ${conv}#${i}`, pushName: `Contact ${conv}` });
    const payload = { event: 'messages.upsert', instance: 'bench', data, server_url: 'http://127.0.0.1', date_time: receivedAt.toISOString(), sender: '5511900000000@s.whatsapp.net' };
    return mapZapThinker({ event: 'messages.upsert', payload }, { channelId: 'bench', provider: 'zapthinker', receivedAt })[0].event;
  });
}
