/**
 * The five upstream simulators of `npm run demo`, the channel each one gets, and the scripted scenario per
 * provider. Every step waits for the events it caused before the next one, so the printed order is stable.
 */
import { randomUUID } from 'node:crypto';
import type { RunningBridge } from '../src/boot/bootstrap';
import type { CommandView } from '../src/commands/command.types';
import { CaptivateSimulator } from '../test/simulators/captivate/captivate.simulator';
import { JwtWebSocketSimulator } from '../test/simulators/jwt-websocket/jwt-websocket.simulator';
import { SmartsuppSimulator } from '../test/simulators/smartsupp/smartsupp.simulator';
import { WatchersSimulator } from '../test/simulators/watchers/watchers.simulator';
import { ZapThinkerSimulator } from '../test/simulators/zapthinker/zapthinker.simulator';

/** One channel per provider. */
export const CHANNELS = { zapthinker: 'wa-sales', jwtWebsocket: 'jwt-support', captivate: 'captivate-hub', smartsupp: 'smartsupp-web', watchers: 'watchers-bot' } as const;

/** A canonical event as printed in embedded mode (only what the demo reads). */
export interface DemoEvent {
  type: string;
  time: string;
  channelid: string;
  subject?: string;
  data: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** What a scenario works with. */
export interface DemoContext {
  sims: Simulators;
  running: RunningBridge;
  /** Every event the bridge has written so far. */
  events: DemoEvent[];
  header(text: string): void;
  note(text: string): void;
  sleep(ms: number): Promise<unknown>;
}

const JWT_CONVERSATION = 'conv-123';
const WATCHERS_ROOM = '144444';
const WATCHERS_BOT = 'bot-1';
const GIOVANNA = '5511999999999@s.whatsapp.net';

/** The five simulators, started on 127.0.0.1 with random ports. */
export interface Simulators {
  zap: ZapThinkerSimulator;
  jwt: JwtWebSocketSimulator;
  captivate: CaptivateSimulator;
  smartsupp: SmartsuppSimulator;
  watchers: WatchersSimulator;
  urls(): Record<string, string>;
  stop(): Promise<void>;
}

export async function startSimulators(): Promise<Simulators> {
  const zap = new ZapThinkerSimulator({ instances: { sales: { token: 'demo-sales-key', profileName: 'Sales' } } });
  const jwt = new JwtWebSocketSimulator({ secret: 'demo-jwt-secret' });
  const captivate = new CaptivateSimulator({ apiKeys: ['demo-captivate-key'], botReplyDelayMs: 200 });
  const smartsupp = new SmartsuppSimulator({ accountKeys: ['demo-smartsupp-key'] });
  const watchers = new WatchersSimulator({ bots: [WATCHERS_BOT] });
  await Promise.all([zap.start(), jwt.start(), captivate.start(), smartsupp.start(), watchers.start()]);
  zap.touch('sales');
  return {
    zap, jwt, captivate, smartsupp, watchers,
    urls: () => ({ zapthinker: zap.url, 'jwt-websocket': jwt.url, captivate: captivate.url, smartsupp: smartsupp.url, watchers: watchers.url }),
    stop: async () => void (await Promise.all([zap.stop(), jwt.stop(), captivate.stop(), smartsupp.stop(), watchers.stop()])),
  };
}

/** `channels:` of the demo's config, one per simulator. */
export function channelConfigs(s: Simulators): unknown[] {
  return [
    { id: CHANNELS.zapthinker, provider: 'zapthinker', zapthinker: { url: s.zap.url, instance: 'sales', apiKey: 'demo-sales-key' } },
    { id: CHANNELS.jwtWebsocket, provider: 'jwt-websocket', 'jwt-websocket': { url: s.jwt.url, token: s.jwt.token({ sub: 'bridge' }), subscribe: [`conversation:${JWT_CONVERSATION}`, 'task:task-789'], subscribeConfirmMs: 200 } },
    { id: CHANNELS.captivate, provider: 'captivate', captivate: { url: s.captivate.url, httpUrl: s.captivate.httpUrl, apiKey: 'demo-captivate-key' } },
    { id: CHANNELS.smartsupp, provider: 'smartsupp', smartsupp: { url: s.smartsupp.url, key: 'demo-smartsupp-key', pageUrl: 'https://shop.example.com/help' } },
    { id: CHANNELS.watchers, provider: 'watchers', watchers: { url: s.watchers.url, bearer: s.watchers.bearerFor(WATCHERS_BOT), apiKey: s.watchers.apiKey, userId: WATCHERS_BOT, rooms: [WATCHERS_ROOM] } },
  ];
}

/** Resolves when an event matching `match` has been written (or throws after `timeoutMs`). */
async function waitEvent(ctx: DemoContext, what: string, match: (e: DemoEvent) => boolean, timeoutMs = 10_000): Promise<DemoEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = ctx.events.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    await ctx.sleep(20);
  }
}

/** Resolves when the bridge has suppressed at least `n` duplicates on `channel` (its metrics say so). */
async function waitDeduplicated(ctx: DemoContext, channel: string, n: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const series = new RegExp(`^chatbridge_events_deduplicated_total\\{channel="${channel}"\\} (\\d+)`, 'm');
  while (Number(series.exec(await (await fetch(`${ctx.running.url}/metrics`)).text())?.[1] ?? 0) < n) {
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for a suppressed duplicate on ${channel}`);
    await ctx.sleep(20);
  }
}

const messageText = (channel: string, text: string) => (e: DemoEvent) => e.channelid === channel && e.data.message?.text === text;

/** The API token the demo configures (CHATBRIDGE_API_TOKENS). */
export const DEMO_API_TOKEN = 'demo-token-0123456789';

/**
 * Sends a command through the command gateway's HTTP door (`POST /v1/channels/:id/commands`), follows it with
 * `GET /v1/commands/:id` until it ends, and prints it and what the upstream confirmed.
 */
async function execute(ctx: DemoContext, channel: string, command: { type: string; [field: string]: unknown }): Promise<CommandView> {
  const { type, ...fields } = command;
  ctx.note(`→ command ${type} on ${channel} ${JSON.stringify(fields)}`);
  const headers = { authorization: `Bearer ${DEMO_API_TOKEN}`, 'content-type': 'application/json' };
  const commandId = randomUUID();
  const accepted = await fetch(`${ctx.running.url}/v1/channels/${channel}/commands`, { method: 'POST', headers, body: JSON.stringify({ commandId, ...command }) });
  if (accepted.status !== 202) throw new Error(`demo: command ${type} on ${channel} refused: ${accepted.status} ${await accepted.text()}`);
  const deadline = Date.now() + 10_000;
  let outcome: CommandView | undefined;
  while (!outcome || outcome.status === 'accepted' || outcome.status === 'sending') {
    if (Date.now() > deadline) throw new Error(`demo: command ${type} on ${channel} did not end within 10 s`);
    await ctx.sleep(20);
    outcome = (await (await fetch(`${ctx.running.url}/v1/commands/${commandId}`, { headers })).json()) as CommandView;
  }
  if (outcome.status === 'failed') throw new Error(`demo: command ${type} on ${channel} failed: ${outcome.error?.message}`);
  const confirmed = [outcome.conversationId && `conversationId ${outcome.conversationId}`, outcome.upstreamMessageId && `upstreamMessageId ${outcome.upstreamMessageId}`].filter(Boolean);
  ctx.note(`← done${confirmed.length ? `: ${confirmed.join(', ')}` : ''}`);
  return outcome;
}

async function startup(ctx: DemoContext): Promise<void> {
  const { sims } = ctx;
  await sims.zap.waitForClients('sales', 1, 10_000);
  await sims.jwt.waitUntil('jwt-websocket subscriptions', () => sims.jwt.subscriberCount(`conversation:${JWT_CONVERSATION}`) === 1, 10_000);
  await sims.watchers.waitUntil('Watchers room listener', () => sims.watchers.listeners(WATCHERS_ROOM) === 1, 10_000);
  for (const id of Object.values(CHANNELS)) await waitEvent(ctx, `${id} connected`, (e) => e.channelid === id && e.data.status?.state === 'connected');
}

/** ZapThinker (Evolution API, socket.io v4): messages, typing, receipts, a drop, a restart, a replay, a malformed frame. */
async function zapthinker(ctx: DemoContext): Promise<void> {
  const { zap: sim } = ctx.sims;
  ctx.header(`ZapThinker (${CHANNELS.zapthinker}): WhatsApp messages, typing and a read receipt`);
  const first = sim.sendMessage('sales', { remoteJid: GIOVANNA, text: 'Olá! Is the blue jacket in stock?', pushName: 'Giovanna' });
  await ctx.sleep(300);
  sim.emit('sales', 'presence.update', sim.presenceUpdate({ remoteJid: GIOVANNA, presence: 'composing' }));
  await ctx.sleep(300);
  sim.emit('sales', 'messages.upsert', sim.messageUpsert({ instance: 'sales', remoteJid: GIOVANNA, text: 'Yes, size M and L.', fromMe: true }));
  sim.emit('sales', 'messages.update', sim.messagesUpdate({ instance: 'sales', keyId: first.key.id, remoteJid: GIOVANNA, fromMe: false, status: 'READ' }));
  sim.sendMessage('sales', { remoteJid: '5521988887777@s.whatsapp.net', text: 'Hi, order #1234 status?', pushName: 'Rafael' });
  await ctx.sleep(500);

  ctx.header(`ZapThinker (${CHANNELS.zapthinker}): the upstream drops the connection; the bridge reconnects, and a replayed message is suppressed`);
  sim.dropConnections('sales');
  await ctx.sleep(300);
  await sim.waitForClients('sales', 1, 10_000);
  sim.emit('sales', 'messages.upsert', first); // Evolution replays after reconnects: same id, not republished
  sim.sendMessage('sales', { remoteJid: GIOVANNA, text: 'Great, I will take the M.', pushName: 'Giovanna' });
  await ctx.sleep(500);

  ctx.header(`ZapThinker (${CHANNELS.zapthinker}): the upstream restarts: "Invalid namespace" until the instance is back, retried, not fatal`);
  await sim.restart();
  await ctx.sleep(600);
  sim.touch('sales');
  await sim.waitForClients('sales', 1, 10_000);
  sim.sendMessage('sales', { remoteJid: GIOVANNA, text: 'Still there?', pushName: 'Giovanna' });
  await ctx.sleep(300);

  ctx.header(`ZapThinker (${CHANNELS.zapthinker}): a malformed frame: published as a provider event with the error, nothing stops`);
  sim.emitMalformed('sales', 'no-key');
  sim.emit('sales', 'qrcode.updated', sim.qrcodeUpdated({ instance: 'sales' }));
  await ctx.sleep(500);
}

/** jwt-websocket (raw ws, JWT in the query): the three event types of a subscribed user. */
async function jwtWebsocket(ctx: DemoContext): Promise<void> {
  const { jwt: sim } = ctx.sims;
  ctx.header(`jwt-websocket (${CHANNELS.jwtWebsocket}): a chat message on a subscribed conversation, a notification, a status update`);
  sim.chatMessage({ conversation_id: JWT_CONVERSATION, sender_id: 'user-456', content: 'Hello there! Any news on my ticket?' });
  await waitEvent(ctx, 'jwt chat message', messageText(CHANNELS.jwtWebsocket, 'Hello there! Any news on my ticket?'));
  sim.notification({ message: 'New comment on your ticket', level: 'info' });
  await waitEvent(ctx, 'jwt notification', (e) => e.channelid === CHANNELS.jwtWebsocket && e.type === 'chatbridge.notification');
  sim.statusUpdate({ entity_type: 'task', entity_id: 'task-789', status: 'completed' });
  await waitEvent(ctx, 'jwt status update', (e) => e.channelid === CHANNELS.jwtWebsocket && e.type === 'chatbridge.entity.status');
  await ctx.sleep(100);
}

/** Captivate Hub (raw ws): commands through the bridge start a conversation and send a message; the bot answers. */
async function captivate(ctx: DemoContext): Promise<void> {
  ctx.header(`Captivate (${CHANNELS.captivate}): conversation.start and message.send through the bridge; the bot replies`);
  const { conversationId } = await execute(ctx, CHANNELS.captivate, { type: 'conversation.start', userId: 'sigrid', userBasicInfo: { firstName: 'Sigrid' } });
  await waitEvent(ctx, 'Captivate greeting', (e) => e.channelid === CHANNELS.captivate && e.type === 'chatbridge.message.sent');
  await execute(ctx, CHANNELS.captivate, { type: 'message.send', conversationId, text: 'Can I change my delivery address?' });
  await waitEvent(ctx, 'Captivate bot reply', messageText(CHANNELS.captivate, 'You said: Can I change my delivery address?'));
  await ctx.sleep(100);
}

/** Smartsupp (socket.io v2, one visitor socket per conversation): a visitor opens a chat, writes, an agent answers. */
async function smartsupp(ctx: DemoContext): Promise<void> {
  const { smartsupp: sim } = ctx.sims;
  ctx.header(`Smartsupp (${CHANNELS.smartsupp}): conversation.start opens a visitor; message.send is published once although the upstream echoes it`);
  const { conversationId: visitor } = await execute(ctx, CHANNELS.smartsupp, { type: 'conversation.start', name: 'Jana', email: 'jana@example.com' });
  await waitEvent(ctx, 'Smartsupp account status', (e) => e.channelid === CHANNELS.smartsupp && e.type === 'chatbridge.account.status');
  const sent = await execute(ctx, CHANNELS.smartsupp, { type: 'message.send', conversationId: visitor, text: 'My order is late' });
  await waitEvent(ctx, 'Smartsupp visitor message', messageText(CHANNELS.smartsupp, 'My order is late'));
  // The upstream echoes the message (`chat.message_received`, same id) about 20 ms after the ack.
  await waitDeduplicated(ctx, CHANNELS.smartsupp, 1);
  ctx.note(`the upstream's chat.message_received echo of ${sent.upstreamMessageId} (same id) was suppressed`);
  sim.agentTyping(visitor!, true, 'Let me');
  await ctx.sleep(200);
  sim.agentSays(visitor!, 'Hi Jana, let me check that for you.');
  await waitEvent(ctx, 'Smartsupp agent reply', messageText(CHANNELS.smartsupp, 'Hi Jana, let me check that for you.'));
  await ctx.sleep(100);
}

/** Watchers.io (socket.io v4, bot bearer): a user writes in a listened room; the bot answers through the bridge. */
async function watchers(ctx: DemoContext): Promise<void> {
  const { watchers: sim } = ctx.sims;
  ctx.header(`Watchers (${CHANNELS.watchers}): a user message in a listened room; the bot's message.send comes back as its echo (message.sent)`);
  sim.userSays(WATCHERS_ROOM, 'user-123', 'Who scores first tonight?');
  await waitEvent(ctx, 'Watchers user message', messageText(CHANNELS.watchers, 'Who scores first tonight?'));
  await execute(ctx, CHANNELS.watchers, { type: 'message.send', conversationId: WATCHERS_ROOM, text: 'Place your prediction before kick-off!' });
  await waitEvent(ctx, 'Watchers bot echo', messageText(CHANNELS.watchers, 'Place your prediction before kick-off!'));
  await ctx.sleep(100);
}

/** The scenario, in order. */
export const scenarios: Array<(ctx: DemoContext) => Promise<void>> = [startup, zapthinker, jwtWebsocket, captivate, smartsupp, watchers];

/** DEMO_FOREVER: one message on the next upstream in turn. */
export function tick(ctx: DemoContext, n: number): void {
  const { sims } = ctx;
  const conversation = (channel: string) => ctx.events.find((e) => e.channelid === channel && e.type.startsWith('chatbridge.message.'))?.subject;
  const text = `tick ${n}`;
  const send = [
    () => sims.zap.sendMessage('sales', { remoteJid: GIOVANNA, text, pushName: 'Giovanna' }),
    () => sims.jwt.chatMessage({ conversation_id: JWT_CONVERSATION, sender_id: 'user-456', content: text }),
    () => sims.captivate.botMessage(conversation(CHANNELS.captivate)!, text),
    () => sims.smartsupp.agentSays(conversation(CHANNELS.smartsupp)!, text),
    () => sims.watchers.userSays(WATCHERS_ROOM, 'user-123', text),
  ];
  send[(n - 1) % send.length]();
}
