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
    } else if (cmd === 'paced') {
      // `paced <count> <perSecond>`: the same messages at a steady rate, in 10 ms ticks.
      const count = Number(a);
      const perTick = Math.max(1, Math.round(Number(b) / 100));
      const t0 = performance.now();
      let sent = 0;
      while (sent < count) {
        for (let i = 0; i < perTick && sent < count; i++, sent++) {
          const conv = sent % 200;
          sim.sendMessage('bench', { remoteJid: `55119${String(10000000 + conv)}`, text: `msg ${conv}#${sent}`, pushName: `Contact ${conv}` });
        }
        const due = t0 + (sent / perTick) * 10;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      }
      process.stdout.write(`DONE ${(performance.now() - t0).toFixed(1)}\n`);
    } else if (cmd === 'clients') {
      process.stdout.write(`CLIENTS ${sim.connectedClients('bench')}\n`);
    }
  }
  await sim.stop();
}

void main();
