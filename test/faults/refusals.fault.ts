import { randomUUID } from 'node:crypto';
import { CaptivateSimulator } from '../simulators/captivate/captivate.simulator';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import type { BridgeProcess } from '../helpers/bridge-process';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';
import { expectHealthy, report, rssMiB, sentCommand, startBuiltBridge, until } from './harness';

/**
 * Handshake refusals against the built bridge with the default `reconnect` settings. Each upstream drops the bridge and
 * refuses handshakes for 1 s with its own auth-failure answer (as a restarting upstream does before it has loaded its
 * keys): the channel is back at the first retry after the refusal ended (on the normal schedule, usually within a
 * second or two), never `auth_failed`, and a message sent at +3 s arrives. A wrong key from the
 * start is `auth_failed` at the first refusal, and its next retry is on the slow schedule (≤ 5 s first delay).
 */
const RSS_BOUND_MIB = 400;
const REFUSE_MS = 1000;
const SEND_AT_MS = 3000;
/** From the retry's due time to the channel reported connected: one handshake and a poll of the API, with margin. */
const RETRY_CONNECTS_WITHIN_MS = 2000;
/** A refusal racing the end of the refusal window is logged a moment after it. */
const REFUSAL_LOGGED_WITHIN_MS = 500;
const SLOW_FIRST_DELAY_MS = 5000;

type Status = { state: string; reason?: string; nextRetryInMs?: number };

describe('fault suite: transient handshake refusals and wrong keys', () => {
  const jwt = new JwtWebSocketSimulator({ secret: 'faults-secret' });
  const zap = new ZapThinkerSimulator({ instances: { sales: { token: 'sales-token-0123456789' } } });
  const watchers = new WatchersSimulator({ bots: ['bot-1'] });
  const captivate = new CaptivateSimulator({ apiKeys: ['cap-key-0123456789'], greeting: false, botReplyDelayMs: 20 });
  const smartsupp = new SmartsuppSimulator({ accountKeys: ['smartsupp-key'] });
  const topic = uniqueTopic('faults-refusals');
  const reader = new KafkaReader(sharedBrokers(), [topic]);
  const ROOM = '188888';
  let bridge: BridgeProcess;
  let visitor = '';

  beforeAll(async () => {
    await Promise.all([jwt.start(), zap.start(), watchers.start(), captivate.start(), smartsupp.start()]);
    zap.touch('sales');
    await reader.start();
    bridge = await startBuiltBridge('refusals', {
      // The shipped schedules, not the harness's fast reconnects; only stableAfterMs is short, so that a connection up for
      // a few seconds counts as the long-lived one an upstream restart drops (a younger one is backed off as flapping).
      reconnect: { stableAfterMs: 2000 },
      kafka: { brokers: sharedBrokers(), topics: { events: topic } },
      channels: [
        { id: 'jwt', provider: 'jwt-websocket', 'jwt-websocket': { url: jwt.url, token: jwt.token({ sub: 'bridge' }), subscribe: ['conversation:c1'] } },
        { id: 'zap', provider: 'zapthinker', zapthinker: { url: zap.url, instance: 'sales', apiKey: 'sales-token-0123456789' } },
        { id: 'wat', provider: 'watchers', watchers: { url: watchers.url, bearer: watchers.bearerFor('bot-1'), apiKey: watchers.apiKey, userId: 'bot-1', rooms: [ROOM] } },
        { id: 'cap', provider: 'captivate', captivate: { url: captivate.url, httpUrl: captivate.httpUrl, apiKey: 'cap-key-0123456789' } },
        { id: 'ss', provider: 'smartsupp', smartsupp: { url: smartsupp.url, key: 'smartsupp-key' } },
        { id: 'jwt-bad', provider: 'jwt-websocket', 'jwt-websocket': { url: jwt.url, token: jwt.token({ sub: 'bridge', secret: 'forged-secret' }) } },
        { id: 'zap-bad', provider: 'zapthinker', zapthinker: { url: zap.url, instance: 'sales', apiKey: 'wrong-key-0123456789' } },
        { id: 'wat-bad', provider: 'watchers', watchers: { url: watchers.url, bearer: 'not-a-bearer', apiKey: watchers.apiKey, userId: 'bot-1', rooms: [ROOM] } },
        { id: 'cap-bad', provider: 'captivate', captivate: { url: captivate.url, httpUrl: captivate.httpUrl, apiKey: 'wrong-cap-key-0123' } },
      ],
    });
    await until('the good channels connected', async () => {
      const { body } = await bridge.request('GET', '/v1/channels');
      return (body as { channels: Array<{ id: string; state: string }> }).channels.filter((c) => !c.id.endsWith('-bad')).every((c) => c.state === 'connected');
    }, 30_000);
    await sleep(2500); // past stableAfterMs: the connections count as long-lived
    visitor = await startConversation('ss');
    await smartsupp.waitForLive(1, visitor);
  }, 120_000);

  afterAll(async () => {
    await bridge?.signal('SIGTERM');
    await reader.stop();
    await Promise.all([jwt.stop(), zap.stop(), watchers.stop(), captivate.stop(), smartsupp.stop()]);
  });

  const startConversation = async (channel: string) => (await sentCommand(bridge, channel, { commandId: randomUUID(), type: 'conversation.start' })).conversationId as string;

  const state = async (channel: string) => ((await bridge.request('GET', `/v1/channels/${channel}`)).body as { state: string }).state;
  const statuses = (channel: string): Status[] =>
    reader.ofType('chatbridge.channel.status').filter((r) => r.headers.ce_channelid === channel).map((r) => (JSON.parse(r.value ?? '{}') as { status: Status }).status);
  const textOf = (r: ReadRecord) => (JSON.parse(r.value ?? '{}') as { message?: { text?: string } }).message?.text;
  const arrived = (channel: string, text: string) => () => reader.records.some((r) => r.headers.ce_channelid === channel && textOf(r) === text);
  const refusedStatus = (s: Status) => s.reason === 'auth_rejected' || s.reason === 'unauthorized';
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Refuses for 1 s after dropping the bridge, sends at +3 s: back at the first retry after, never auth_failed, the message arrives. */
  async function transient(name: string, channel: string, refuse: (on: boolean) => void, drop: () => void, send: (text: string) => void, whenBack?: () => Promise<void>): Promise<void> {
    const before = statuses(channel).length;
    const t0 = performance.now();
    const wallT0 = Date.now();
    refuse(true);
    drop();
    await until(`${name}: the drop noticed`, async () => (await state(channel)) !== 'connected', 5000);
    await sleep(Math.max(0, REFUSE_MS - (performance.now() - t0)));
    // A retry drawn late in the first second may not have met the refusal yet: refuse until one was refused.
    await until(`${name}: a refused handshake`, () => statuses(channel).slice(before).some(refusedStatus), 5000);
    refuse(false);
    const refusedMs = Math.round(performance.now() - t0);
    await until(`${name}: connected again`, async () => (await state(channel)) === 'connected', 10_000);
    const backMs = Math.round(performance.now() - t0);
    await whenBack?.();
    await sleep(Math.max(0, SEND_AT_MS - (performance.now() - t0)));
    const text = `after ${name} ${randomUUID()}`;
    send(text);
    await reader.waitFor(`${name}: the message sent at +3 s`, arrived(channel, text), 20_000);
    const messageMs = Math.round(performance.now() - t0);
    await reader.waitFor(`${name}: the connected status`, () => statuses(channel).slice(before).some((s) => s.state === 'connected'), 10_000);
    const during = statuses(channel).slice(before);
    const healthz = await expectHealthy(bridge);
    const rss = rssMiB(bridge.pid);
    // Back at the first retry after the refusal ended, on the normal schedule. That retry is drawn with full jitter from
    // 0 up to 500 ms × 2^attempt, so after a few refused tries within the second it can fall past 4 s from the end (one
    // CI run drew 6.2 s); a fixed 5 s bound held only usually. The bridge's log says when each retry was due.
    // The last retry scheduled before the channel was back is the one that connected; it must have been scheduled by
    // the last refusal (logged before the refusal ended, give or take the moment between the two), not after another.
    const retries = bridge.logs
      .filter((l) => l.channel === channel && typeof l.retryInMs === 'number' && Date.parse(String(l.time)) >= wallT0 && Date.parse(String(l.time)) <= wallT0 + backMs)
      .map((l) => ({ atMs: Date.parse(String(l.time)) - wallT0, inMs: l.retryInMs as number, attempt: Number(l.attempt) }));
    const pending = retries.at(-1);
    const retryDueMs = pending ? pending.atMs + pending.inMs : refusedMs;
    const backAfterRefusalMs = backMs - refusedMs;
    report(`refused-1s/${name}`, {
      up: !bridge.exit, refusedMs, backMs, backAfterRefusalMs, retryDueMs, retriesLogged: retries.length, messageAtMs: messageMs, lost: 0,
      states: during.map((s) => `${s.state}${s.reason ? `:${s.reason}` : ''}`).join(','), healthzMs: Math.round(healthz), rssMiB: rss,
    });
    expect(pending).toBeDefined();
    // Scheduled by a refusal, so the first retry after the refusal ended connected; drawn from the normal schedule (not
    // the slow auth one, not stretched); and the channel was back as soon as it was due.
    expect(pending!.atMs).toBeLessThanOrEqual(refusedMs + REFUSAL_LOGGED_WITHIN_MS);
    expect(pending!.inMs).toBeLessThanOrEqual(Math.min(30_000, 500 * 2 ** Math.max(0, pending!.attempt - 1)));
    expect(backMs).toBeLessThanOrEqual(Math.max(refusedMs, retryDueMs) + RETRY_CONNECTS_WITHIN_MS);
    expect(during.some((s) => s.state === 'auth_failed')).toBe(false);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
  }

  it('jwt-websocket: HTTP 401 on the upgrade for 1 s after a drop', async () => {
    await transient('jwt-websocket', 'jwt', (on) => jwt.rejectAuth(on), () => jwt.dropConnections(), (text) => jwt.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: text }));
  });

  it('ZapThinker: HTTP 400 "Invalid global token" for 1 s after a drop (Evolution restarting)', async () => {
    await transient('zapthinker', 'zap', (on) => zap.rejectAuth(on), () => zap.dropConnections('sales'), (text) => zap.sendMessage('sales', { remoteJid: '5511911112222', text }));
  });

  it('Watchers: the bearer refused by the namespace middleware for 1 s after a drop', async () => {
    await transient('watchers', 'wat', (on) => watchers.rejectAuth(on), () => watchers.dropConnections(), (text) => watchers.userSays(ROOM, 'user-1', text));
  });

  it('Captivate: HTTP 403 on the upgrade for 1 s after a drop', async () => {
    // The +3 s message goes to a conversation the bridge started once back (older conversations are moved to the new
    // socket by the reconnect's transcript requests; test/integration/captivate.e2e.spec.ts covers that).
    let conv = '';
    await transient('captivate', 'cap', (on) => captivate.rejectAuth(on), () => captivate.dropConnections(), (text) => captivate.livechatMessage(conv, text), async () => {
      conv = await startConversation('cap');
    });
  });

  it('Smartsupp: visitor.connect answered auth_error 403 for 1 s after a drop', async () => {
    await transient('smartsupp', 'ss', (on) => smartsupp.setAccountKeys(on ? ['rotated-key'] : ['smartsupp-key']), () => smartsupp.dropVisitor(visitor), (text) => smartsupp.agentSays(visitor, text));
  });

  it.each([['jwt-websocket', 'jwt-bad'], ['zapthinker', 'zap-bad'], ['watchers', 'wat-bad'], ['captivate', 'cap-bad']])('%s: a wrong key from the start is auth_failed at once, retried on the slow schedule', async (name, channel) => {
    const [first] = await reader.waitFor(`${name}: first status after connecting`, () => statuses(channel).some((s) => s.state !== 'connecting'), 20_000).then(() => statuses(channel).filter((s) => s.state !== 'connecting'));
    expect(first.state).toBe('auth_failed');
    expect(first.nextRetryInMs).toBeLessThanOrEqual(SLOW_FIRST_DELAY_MS);
    expect(await state(channel)).toBe('auth_failed');
    const healthz = await expectHealthy(bridge);
    report(`wrong-key/${name}`, { up: !bridge.exit, firstState: `${first.state}:${first.reason ?? ''}`, firstRetryInMs: first.nextRetryInMs ?? -1, slowFirstBoundMs: SLOW_FIRST_DELAY_MS, healthzMs: Math.round(healthz) });
  });
});
