/**
 * The ZapThinker simulator in its own process, so the benchmark measures the bridge's event loop alone.
 * Prints `URL <url>`; then reads commands on stdin: `burst <count> <conversations>` → `DONE <ms>`.
 */
import { createInterface } from 'node:readline';
import { ZapThinkerSimulator } from '../test/simulators/zapthinker/zapthinker.simulator';

async function main(): Promise<void> {
  const sim = new ZapThinkerSimulator({ instances: { bench: { token: 'bench-key' } } });
  await sim.start();
  sim.touch('bench');
  process.stdout.write(`URL ${sim.url}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, a, b] = line.trim().split(/\s+/);
    if (cmd === 'burst') {
      const t0 = performance.now();
      await sim.burst('bench', Number(a), { conversations: Number(b), perTick: 200 });
      process.stdout.write(`DONE ${(performance.now() - t0).toFixed(1)}\n`);
    } else if (cmd === 'clients') {
      process.stdout.write(`CLIENTS ${sim.connectedClients('bench')}\n`);
    }
  }
  await sim.stop();
}

void main();
