/**
 * The Smartsupp simulator in its own process, so the connection benchmark measures the bridge side alone.
 * Prints `URL <url>`; then reads commands on stdin: `live` → `LIVE <initialized sockets>`, `memory` → `MEMORY <rss bytes>`.
 */
import { createInterface } from 'node:readline';
import { SmartsuppSimulator } from '../test/simulators/smartsupp/smartsupp.simulator';

async function main(): Promise<void> {
  const sim = new SmartsuppSimulator({ accountKeys: ['bench-key'] });
  await sim.start();
  process.stdout.write(`URL ${sim.url}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === 'live') process.stdout.write(`LIVE ${sim.liveSockets()}\n`);
    if (line.trim() === 'memory') process.stdout.write(`MEMORY ${process.memoryUsage().rss}\n`);
  }
  await sim.stop();
}

void main();
