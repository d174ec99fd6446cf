/**
 * `npm run demo`: the bridge on this machine with no external services. A local ZapThinker (Evolution API)
 * simulator, the bridge in embedded mode (no Kafka: events are written to stdout), and a short scripted
 * scenario: inbound and outbound messages, delivery receipts, typing, a dropped connection and an upstream
 * restart (the bridge reconnects by itself), a replayed duplicate (suppressed) and a malformed frame.
 *
 *   DEMO_JSON=1 npm run demo     print the raw CloudEvent JSON lines instead of the summary lines
 *   DEMO_FOREVER=1 npm run demo  keep emitting a message every 2 s until Ctrl-C
 */
import { Writable } from 'node:stream';
import { startBridge } from '../src/bootstrap';
import { createRootLogger } from '../src/common/logger';
import { loadConfig } from '../src/config/config.loader';
import { ZapThinkerSimulator } from '../test/simulators/zapthinker/zapthinker.simulator';

const json = process.env.DEMO_JSON === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const c = (code: number, s: string) => (process.stdout.isTTY ? `\x1b[${code}m${s}\x1b[0m` : s);

/** Turns each CloudEvent line into one readable line. */
function summarise(line: string): string {
  const e = JSON.parse(line) as { type: string; time: string; channelid: string; subject?: string; data: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  const d = e.data;
  const what =
    d.message ? `${d.message.direction} ${d.message.id ?? ''} ${d.message.text !== undefined ? JSON.stringify(d.message.text) : ''}${d.message.status ? ` status=${d.message.status}` : ''}${d.message.sender?.name ? ` from ${d.message.sender.name}` : ''}`
    : d.status ? `${d.status.previous} → ${c(1, d.status.state)}${d.status.reason ? ` (${d.status.reason})` : ''}`
    : d.typing ? `typing=${d.typing.active}`
    : d.account ? `account ${d.account.status}`
    : d.upstream ? `${d.upstream.event}${d.upstream.error ? c(31, ` ERROR: ${d.upstream.error}`) : ''}`
    : '';
  return `${c(2, e.time.slice(11, 23))} ${c(36, e.type.padEnd(30))} ${e.channelid.padEnd(9)} ${(e.subject ?? '').padEnd(28)} ${what}`;
}

async function main(): Promise<void> {
  const sim = new ZapThinkerSimulator({ instances: { sales: { token: 'demo-sales-key', profileName: 'Sales' } } });
  await sim.start();
  sim.touch('sales');

  const { config } = loadConfig({
    raw: {
      reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
      deadLetter: { file: './.data/demo-dead-letter.jsonl' },
      channels: [{ id: 'wa-sales', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'sales', apiKey: 'demo-sales-key' } }],
    },
    env: { ...process.env, PORT: process.env.PORT ?? '0', CHATBRIDGE_API_TOKENS: 'demo-token' },
  });
  // Events on stdout; the bridge's own logs (warnings and up) on stderr.
  const log = createRootLogger((process.env.LOG_LEVEL as 'warn') ?? 'warn', 2);
  let buffer = '';
  let count = 0;
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      buffer += chunk.toString();
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        count++;
        process.stdout.write(`${json ? line : summarise(line)}\n`);
      }
      done();
    },
  });
  const running = await startBridge(config, log, { stdout: out, host: '127.0.0.1' });
  console.log(c(1, `chatbridge demo: ZapThinker simulator at ${sim.url}, bridge API at ${running.url} (token: demo-token)`));
  console.log(c(2, 'embedded mode (no Kafka): every canonical event is printed below as it flows\n'));
  await sim.waitForClients('sales', 1, 10_000);

  const giovanna = '5511999999999@s.whatsapp.net';
  const first = sim.sendMessage('sales', { remoteJid: giovanna, text: 'Olá! Is the blue jacket in stock?', pushName: 'Giovanna' });
  await sleep(300);
  sim.emit('sales', 'presence.update', sim.presenceUpdate({ remoteJid: giovanna, presence: 'composing' }));
  await sleep(300);
  sim.emit('sales', 'messages.upsert', sim.messageUpsert({ instance: 'sales', remoteJid: giovanna, text: 'Yes, size M and L.', fromMe: true }));
  sim.emit('sales', 'messages.update', sim.messagesUpdate({ instance: 'sales', keyId: first.key.id, remoteJid: giovanna, fromMe: false, status: 'READ' }));
  sim.sendMessage('sales', { remoteJid: '5521988887777@s.whatsapp.net', text: 'Hi, order #1234 status?', pushName: 'Rafael' });
  await sleep(500);

  console.log(c(33, '\n-- the upstream drops the connection; the bridge reconnects, and a replayed message is suppressed --'));
  sim.dropConnections('sales');
  await sleep(300);
  await sim.waitForClients('sales', 1, 10_000);
  sim.emit('sales', 'messages.upsert', first); // Evolution replays after reconnects: same id, not republished
  sim.sendMessage('sales', { remoteJid: giovanna, text: 'Great, I will take the M.', pushName: 'Giovanna' });
  await sleep(500);

  console.log(c(33, '\n-- the upstream restarts: "Invalid namespace" until the instance is back, retried, not fatal --'));
  await sim.restart();
  await sleep(600);
  sim.touch('sales');
  await sim.waitForClients('sales', 1, 10_000);
  sim.sendMessage('sales', { remoteJid: giovanna, text: 'Still there?', pushName: 'Giovanna' });
  await sleep(300);

  console.log(c(33, '\n-- a malformed frame: published as a provider event with the error, nothing stops --'));
  sim.emitMalformed('sales', 'no-key');
  sim.emit('sales', 'qrcode.updated', sim.qrcodeUpdated({ instance: 'sales' }));
  await sleep(500);

  if (process.env.DEMO_FOREVER === '1') {
    console.log(c(2, '\nDEMO_FOREVER: a message every 2 s; Ctrl-C to stop'));
    let n = 0;
    const t = setInterval(() => sim.sendMessage('sales', { remoteJid: giovanna, text: `tick ${++n}`, pushName: 'Giovanna' }), 2000);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    clearInterval(t);
  }

  const channels = (await (await fetch(`${running.url}/v1/channels`, { headers: { authorization: 'Bearer demo-token' } })).json()) as { channels: unknown[] };
  const metrics = await (await fetch(`${running.url}/metrics`)).text();
  const dupes = /^chatbridge_events_deduplicated_total\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? '0';
  console.log(c(1, `\n${count} events printed, ${dupes} replayed duplicate(s) suppressed. GET /v1/channels:`));
  console.log(JSON.stringify(channels.channels, null, 2));
  await running.close();
  await sim.stop();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
