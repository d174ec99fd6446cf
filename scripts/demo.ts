/**
 * `npm run demo`: the bridge on this machine with no external services. Local simulators of all five upstreams
 * (ZapThinker, jwt-websocket, Captivate, Smartsupp, Watchers), the bridge in embedded mode (no Kafka) with one
 * channel per provider, a local webhook receiver (demo-receiver.ts) to which the bridge delivers every event,
 * signed, and which verifies each one with `standardwebhooks` and prints it; and a short scripted scenario per provider (see
 * demo-scenarios.ts): inbound and outbound messages, commands through the bridge, receipts, typing, a dropped
 * connection and an upstream restart (the bridge reconnects by itself), a replayed duplicate and an upstream
 * echo (both suppressed), and a malformed frame.
 *
 *   DEMO_JSON=1 npm run demo     print the raw CloudEvent JSON bodies the receiver got instead of the summary lines
 *   DEMO_FOREVER=1 npm run demo  keep emitting a message (round robin over the five upstreams) every 2 s until Ctrl-C
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBridge } from '../src/boot/bootstrap';
import { createRootLogger } from '../src/common/logger';
import { loadConfig } from '../src/config/config.loader';
import { startDemoReceiver, type Delivery } from './demo-receiver';
import { CHANNELS, DEMO_API_TOKEN, channelConfigs, scenarios, startSimulators, tick, type DemoContext, type DemoEvent } from './demo-scenarios';

const json = process.env.DEMO_JSON === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const c = (code: number, s: string) => (process.stdout.isTTY ? `\x1b[${code}m${s}\x1b[0m` : s);
const ID_WIDTH = Math.max(...Object.values(CHANNELS).map((id) => id.length));

/** Long ids (Captivate's `<user>-<uuid>` conversations) keep their start and end, so columns stay aligned. */
const short = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 11)}…${s.slice(-10)}`);

/** `inbound <id> "text" status=… from …` for a message event. */
function describeMessage(m: { direction: string; id?: string; text?: string; status?: string; sender?: { id?: string; name?: string; role?: string } }): string {
  const from = m.sender?.name ?? [m.sender?.role, m.sender?.id].filter(Boolean).join(' ');
  return [m.direction, m.id, m.text !== undefined ? JSON.stringify(m.text) : undefined, m.status ? `status=${m.status}` : undefined, from ? `from ${from}` : undefined].filter(Boolean).join(' ');
}

/** Turns one CloudEvent into one readable line (after the verification mark and the id). */
function summarise(e: DemoEvent): string {
  const d = e.data;
  const what =
    d.message ? describeMessage(d.message)
    : d.status ? `${d.status.previous} → ${c(1, d.status.state)}${d.status.reason ? ` (${d.status.reason})` : ''}`
    : d.typing ? `typing=${d.typing.active}`
    : d.account ? `account ${d.account.status}`
    : d.notification ? `notification [${d.notification.level ?? '-'}] ${JSON.stringify(d.notification.message ?? '')}`
    : d.entity ? `${d.entity.type} ${d.entity.id} is ${c(1, String(d.entity.status))}`
    : d.change ? `${d.change.kind}${d.change.agent?.name ? ` (${d.change.agent.name})` : ''}`
    : e.type === 'chatbridge.conversation.started' ? `started (${d.upstream?.event})`
    : d.upstream ? `${d.upstream.event}${d.upstream.error ? c(31, ` ERROR: ${d.upstream.error}`) : ''}`
    : '';
  return `${c(2, e.time.slice(11, 23))} ${c(36, e.type.padEnd(31))} ${e.channelid.padEnd(ID_WIDTH)} ${short(e.subject ?? '', 28).padEnd(28)} ${what}`;
}

/** `✓ <id8> <event line>`, or `✗ <id8> <why>` for a delivery whose signature did not verify. */
function deliveryLine(d: Delivery): string {
  const id = c(2, (d.id || '-').slice(0, 8).padEnd(8));
  if (!d.verified) return `${c(31, '✗')} ${id} signature verification failed: ${d.error}${d.event ? ` (${d.event.type} ${d.event.channelid})` : ''}`;
  return `${c(32, '✓')} ${id} ${summarise(d.event!)}`;
}

async function main(): Promise<void> {
  const sims = await startSimulators();
  const events: DemoEvent[] = [];
  // Lines are held until the banner is printed (the first status events come while the bridge starts).
  let held: string[] | undefined = [];
  const print = (line: string) => (held ? held.push(line) : process.stdout.write(`${line}\n`));
  const receiver = await startDemoReceiver((d) => {
    if (d.event) events.push(d.event);
    print(json ? d.body : deliveryLine(d));
  });
  // Captivate conversations and Smartsupp visitors are persisted; a fresh directory keeps runs independent.
  const stateDir = mkdtempSync(join(tmpdir(), 'chatbridge-demo-'));
  const { config } = loadConfig({
    raw: {
      reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
      deadLetter: { file: './.data/demo-dead-letter.jsonl' },
      stateDir,
      channels: channelConfigs(sims),
      webhooks: [{ id: 'demo-receiver', url: receiver.url, secret: receiver.secret }],
    },
    env: { ...process.env, PORT: process.env.PORT ?? '0', CHATBRIDGE_API_TOKENS: DEMO_API_TOKEN },
  });
  // The bridge's own logs (warnings and up) on stderr; stdout is the receiver's.
  const log = createRootLogger((process.env.LOG_LEVEL as 'warn') ?? 'warn', 2);
  const running = await startBridge(config, log, { host: '127.0.0.1' });
  console.log(c(1, `chatbridge demo: five upstream simulators on 127.0.0.1, bridge API at ${running.url} (token: ${DEMO_API_TOKEN})`));
  for (const [provider, url] of Object.entries(sims.urls())) console.log(c(2, `  ${provider.padEnd(14)} ${url}`));
  console.log(c(2, `  webhook receiver ${receiver.url} (secret whsec_…, generated for this run)`));
  console.log(c(2, 'embedded mode (no Kafka): the bridge POSTs every canonical event, signed (Standard Webhooks), to the local receiver,'));
  console.log(c(2, 'which verifies it with the standardwebhooks library and prints it below: ✓ verified, ✗ failed, then the first 8 characters of its id\n'));
  for (const line of held) process.stdout.write(`${line}\n`);
  held = undefined;

  const ctx: DemoContext = { sims, running, events, header: (text) => console.log(c(33, `\n-- ${text} --`)), note: (text) => console.log(c(2, `   ${text}`)), sleep };
  for (const scenario of scenarios) await scenario(ctx);

  if (process.env.DEMO_FOREVER === '1') {
    console.log(c(2, '\nDEMO_FOREVER: a message every 2 s, round robin over the five upstreams; Ctrl-C to stop'));
    let n = 0;
    const t = setInterval(() => tick(ctx, ++n), 2000);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    clearInterval(t);
  }

  const channels = (await (await fetch(`${running.url}/v1/channels`, { headers: { authorization: `Bearer ${DEMO_API_TOKEN}` } })).json()) as { channels: Array<Record<string, string | number | undefined>> };
  const metrics = await (await fetch(`${running.url}/metrics`)).text();
  const dupes = new Map([...metrics.matchAll(/^chatbridge_events_deduplicated_total\{channel="([^"]+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
  ctx.header('shutdown: every channel closes its upstream connection');
  await running.close();
  await receiver.close();
  await sims.stop();
  rmSync(stateDir, { recursive: true, force: true });

  const replayed = dupes.get(CHANNELS.zapthinker) ?? 0;
  const echoes = dupes.get(CHANNELS.smartsupp) ?? 0;
  const other = [...dupes.values()].reduce((a, b) => a + b, 0) - replayed - echoes;
  const { stats } = receiver;
  console.log(c(1, `\nwebhook receiver: ${stats.delivered} deliveries, ${stats.verified} verified ✓, ${stats.failed} failed verification ✗`));
  console.log(c(1, `verified per provider: ${[...stats.byProvider].map(([p, n]) => `${p} ${n}`).join(', ')}`));
  console.log(c(1, `${events.length} events printed, ${replayed} replayed duplicate(s) suppressed (${CHANNELS.zapthinker}), ${echoes} upstream echo(es) suppressed (${CHANNELS.smartsupp})${other ? `, ${other} other(s)` : ''}.`));
  console.log(c(1, 'GET /v1/channels (before shutdown):'));
  const cols = ['id', 'provider', 'state', 'reconnects', 'eventsIn', 'malformedFrames', 'lastError'] as const;
  const rows = channels.channels.map((ch) => cols.map((k) => String(ch[k] ?? '')));
  const widths = cols.map((k, i) => Math.max(k.length, ...rows.map((r) => r[i].length)));
  for (const r of [[...cols] as string[], ...rows]) console.log(`  ${r.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
