import { io, type Socket as ClientSocket } from 'socket.io-client';
import type { WebSocket } from 'ws';
import { metricValue, TEST_TOKEN } from '../helpers/bridge-harness';
import type { BridgeProcess } from '../helpers/bridge-process';
import { newSecret, WebhookReceiver } from '../helpers/webhook-receiver';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

/**
 * The live event stream (socket.io `/v1`, `subscribe` → `event`) against the built bridge, with the Watchers simulator
 * as the upstream and a webhook receiver as the sink: a hostile glob, and hundreds of subscribers that never read.
 */
describe('fault rows: live event stream', () => {
  const ROOM = '144444';
  let sim: WatchersSimulator;
  let receiver: WebhookReceiver;
  let bridge: BridgeProcess | undefined;
  const clients: ClientSocket[] = [];

  interface Ack {
    subscribed?: unknown;
    error?: { statusCode: number; message: string };
  }

  async function connect(token: string): Promise<{ socket: ClientSocket; texts: string[] }> {
    const socket = io(`${bridge!.url}/v1`, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
    clients.push(socket);
    const texts: string[] = [];
    socket.on('event', (e: { data: { message?: { text?: string } } }) => texts.push(e.data.message?.text ?? ''));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return { socket, texts };
  }

  const subscribe = (socket: ClientSocket, payload: unknown) => socket.timeout(10_000).emitWithAck('subscribe', payload) as Promise<Ack>;
  const metric = async (name: string, labels: Record<string, string> = {}) => metricValue(await (await fetch(`${bridge!.url}/metrics`)).text(), name, labels);
  /** The number at the start of each text, for order checks. */
  const numbers = (texts: string[]) => texts.map((t) => Number(t.split(' ')[0]));

  async function start(stream: Record<string, unknown>, tokens: string[]): Promise<BridgeProcess> {
    bridge = await startBuiltBridge('stream', {
      api: { stream },
      webhooks: [{ id: 'hook', url: receiver.url, secret: newSecret(), types: ['chatbridge.message.*'] }],
      channels: [{ id: 'bot-a', provider: 'watchers', watchers: { url: sim.url, bearer: sim.bearerFor('bot-1'), apiKey: sim.apiKey, userId: 'bot-1', rooms: [ROOM] } }],
    }, { env: { CHATBRIDGE_API_TOKENS: tokens.join(',') } });
    await sim.waitUntil('room listened', () => sim.listeners(ROOM) === 1, 20_000);
    return bridge;
  }

  beforeEach(async () => {
    sim = new WatchersSimulator({ bots: ['bot-1'] });
    await sim.start();
    receiver = new WebhookReceiver();
    await receiver.start();
  });

  afterEach(async () => {
    for (const s of clients.splice(0)) s.close();
    await bridge?.kill();
    bridge = undefined;
    await sim.stop();
    await receiver.stop();
  });

  it('a subscribe with a 25-star glob: the bridge stays responsive, another subscriber gets the next 20 events, SIGTERM exits 0', async () => {
    const b = await start({}, [TEST_TOKEN]);
    const normal = await connect(TEST_TOKEN);
    expect(await subscribe(normal.socket, { types: ['chatbridge.message.*'] })).toEqual({ subscribed: { types: ['chatbridge.message.*'] } });
    const hostile = await connect(TEST_TOKEN);
    const glob = `${'*'.repeat(25)}Z`;
    const adversarial = `${'*a'.repeat(99)}*Z`;
    const t0 = performance.now();
    expect(await subscribe(hostile.socket, { types: [glob, adversarial] })).toEqual({ subscribed: { types: [glob, adversarial] } });
    const ackMs = performance.now() - t0;
    const healthMs = await expectHealthy(b);

    for (let i = 0; i < 20; i++) sim.userSays(ROOM, 'user-9', `${i} ${'a'.repeat(500)}`);
    await until('20 events at the other subscriber', () => normal.texts.length === 20);
    expect(numbers(normal.texts)).toEqual([...Array(20).keys()]);
    expect(hostile.texts).toEqual([]);
    const healthAfterMs = await expectHealthy(b);
    const rss = rssMiB(b.pid);
    expect(rss).toBeLessThan(250);

    const exit = await b.signal('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    report('stream 25-star glob', {
      ackMs: Math.round(ackMs), healthzMs: Math.round(healthMs), healthzAfterMs: Math.round(healthAfterMs), delivered: `${normal.texts.length}/20`, rssMiB: rss, exit: exit.code ?? -1,
    });
  });

  it('500 subscribers that never read: the ones past the token and total limits are refused, the rest cut off, a normal subscriber gets every event', async () => {
    const tokens = ['slow-token-a-0123456789', 'slow-token-b-0123456789', 'slow-token-c-0123456789', TEST_TOKEN];
    // 1 normal + 200 slow fit; per token 100 (the default): token a and b each get 100 in and 100 refused (429), token c
    // finds the stream full (503). Every subscriber holds the same encoded events, so memory grows with the longest
    // backlog (api.stream.maxBufferedBytes, default 4 MiB), not with the number of subscribers.
    const limits = { maxSubscribers: 201 };
    const RSS_BOUND_MIB = 300;
    const b = await start(limits, tokens);
    const rssBefore = rssMiB(b.pid);
    const normal = await connect(TEST_TOKEN);
    expect((await subscribe(normal.socket, { types: ['chatbridge.message.*'] })).subscribed).toBeDefined();

    const statuses = new Map<string, number>();
    const slow: ClientSocket[] = [];
    for (const [token, count] of [[tokens[0], 200], [tokens[1], 200], [tokens[2], 100]] as const) {
      for (let i = 0; i < count; i++) {
        const { socket } = await connect(token);
        const ack = await subscribe(socket, {});
        const key = ack.error ? String(ack.error.statusCode) : 'subscribed';
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (ack.subscribed) slow.push(socket);
        // It stops reading its TCP socket: kernel buffers fill first, then the bridge's write buffer for it.
        (socket.io.engine.transport as unknown as { ws: WebSocket }).ws.pause();
      }
    }
    expect(Object.fromEntries(statuses)).toEqual({ subscribed: 200, 429: 200, 503: 100 });
    expect(await metric('chatbridge_refused_total', { origin: 'stream', reason: 'subscribers_per_token' })).toBe(200);
    expect(await metric('chatbridge_refused_total', { origin: 'stream', reason: 'subscribers_total' })).toBe(100);
    const healthWithAllMs = await expectHealthy(b);

    const big = 'x'.repeat(60_000);
    let sent = 0;
    let peakRss = 0;
    let worstHealthMs = 0;
    const t0 = performance.now();
    while ((await metric('chatbridge_stream_disconnects_total', { reason: 'slow_consumer' })) < slow.length && sent < 2000) {
      for (let i = 0; i < 10; i++) sim.userSays(ROOM, 'user-9', `${sent++} ${big}`);
      await until(`normal subscriber has ${sent}`, () => normal.texts.length === sent, 30_000);
      worstHealthMs = Math.max(worstHealthMs, await expectHealthy(b));
      peakRss = Math.max(peakRss, rssMiB(b.pid));
    }
    const cutOffMs = performance.now() - t0;
    expect(await metric('chatbridge_stream_disconnects_total', { reason: 'slow_consumer' })).toBe(slow.length);
    expect(await metric('chatbridge_stream_subscribers')).toBe(1);

    // The next normal items still arrive, in order, and nothing was skipped for the normal subscriber.
    for (let i = 0; i < 10; i++) sim.userSays(ROOM, 'user-9', `${sent++} after`);
    await until('normal subscriber has all', () => normal.texts.length === sent, 30_000);
    expect(numbers(normal.texts)).toEqual([...Array(sent).keys()]);
    // So does the webhook: subscribers that never read cost it nothing.
    expect(numbers((await receiver.waitForDelivered(sent, 60_000)).map((r) => r.event.data.message!.text!))).toEqual([...Array(sent).keys()]);
    const healthAfterMs = await expectHealthy(b);
    peakRss = Math.max(peakRss, rssMiB(b.pid));
    expect(peakRss).toBeLessThan(RSS_BOUND_MIB);
    report('stream 500 non-reading subscribers', {
      subscribed: statuses.get('subscribed') ?? 0, refused429: statuses.get('429') ?? 0, refused503: statuses.get('503') ?? 0, events: sent,
      cutOff: slow.length, cutOffMs: Math.round(cutOffMs), normalGot: `${normal.texts.length}/${sent}`, healthzMs: Math.round(healthWithAllMs),
      worstHealthzMs: Math.round(worstHealthMs), healthzAfterMs: Math.round(healthAfterMs), rssBeforeMiB: rssBefore, peakRssMiB: peakRss, rssBoundMiB: RSS_BOUND_MIB,
    });
  });
});
