import { io, type Socket as ClientSocket } from 'socket.io-client';
import type { WebSocket } from 'ws';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { eventSchemaProblem } from '../helpers/event-schemas';
import { newSecret, WebhookReceiver } from '../helpers/webhook-receiver';

/** A structured CloudEvent as the `event` message carries it. */
interface StreamedEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype: string;
  dataschema: string;
  partitionkey: string;
  subject?: string;
  channelid?: string;
  provider?: string;
  data: { message?: { text?: string; direction?: string }; command?: { commandId: string; status: string; attempts: number } };
}

interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details?: string[];
  retryAfterMs?: number;
}

/** A socket.io v4 client of the bridge's `/v1` namespace and everything it received. */
interface Client {
  socket: ClientSocket;
  events: StreamedEvent[];
  texts(): string[];
}

/**
 * The socket.io API against a bridge in-process: real socket.io-client v4 clients over loopback, the Watchers
 * simulator as the upstream (events and the `external/send` wire call), a real webhook receiver.
 */
describe('socket.io gateway and live event stream (e2e)', () => {
  const ROOM_A = '144444';
  const ROOM_B = '155555';
  let sim: WatchersSimulator;
  let bridge: TestBridge | undefined;
  let receiver: WebhookReceiver | undefined;
  const clients: ClientSocket[] = [];
  // Every streamed event is checked against its type's schema (docs/events.md#schemas); afterEach asserts none failed.
  const schemaProblems: string[] = [];

  const channel = (id: string, bot: string, room: string) => ({
    id, provider: 'watchers', watchers: { url: sim.url, bearer: sim.bearerFor(bot), apiKey: sim.apiKey, userId: bot, rooms: [room], connectTimeoutMs: 2000, ackTimeoutMs: 1000 },
  });

  async function start(raw: Record<string, unknown> = {}): Promise<TestBridge> {
    bridge = await startTestBridge({ channels: [channel('bot-a', 'bot-1', ROOM_A), channel('bot-b', 'bot-2', ROOM_B)], ...raw });
    await sim.waitUntil('both rooms listened', () => sim.listeners(ROOM_A) === 1 && sim.listeners(ROOM_B) === 1);
    return bridge;
  }

  function open(auth: Record<string, unknown> = { token: TEST_TOKEN }): ClientSocket {
    const socket = io(`${bridge!.url}/v1`, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
    clients.push(socket);
    return socket;
  }

  async function connect(auth: Record<string, unknown> = { token: TEST_TOKEN }): Promise<Client> {
    const socket = open(auth);
    const events: StreamedEvent[] = [];
    socket.on('event', (e: StreamedEvent) => {
      const problem = eventSchemaProblem(e);
      if (problem) schemaProblems.push(problem);
      events.push(e);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return { socket, events, texts: () => events.map((e) => e.data.message?.text ?? `<${e.type}>`) };
  }

  async function refusal(auth: Record<string, unknown>): Promise<{ message: string; data: ErrorBody }> {
    const socket = open(auth);
    return new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error('connected without a valid token')));
      socket.once('connect_error', (err: Error & { data?: unknown }) => resolve({ message: err.message, data: err.data as ErrorBody }));
    });
  }

  /** Sends a socket.io EVENT packet whose arguments are `args` (JSON text) with ack id `id`; resolves with the ack's JSON text. */
  const rawAck = (c: Client, id: number, args: string): Promise<string> => new Promise((resolve, reject) => {
    const engine = c.socket.io.engine;
    const timer = setTimeout(() => reject(new Error(`no ack ${id}`)), 5000);
    const onPacket = (packet: { type: string; data?: unknown }) => {
      const prefix = `3/v1,${id}`;
      if (packet.type !== 'message' || typeof packet.data !== 'string' || !packet.data.startsWith(prefix)) return;
      clearTimeout(timer);
      engine.off('packet', onPacket);
      resolve(packet.data.slice(prefix.length));
    };
    engine.on('packet', onPacket);
    engine.send(`2/v1,${id}${args}`);
  });
  const ack = <T>(c: Client, event: string, payload?: unknown): Promise<T> =>
    (payload === undefined ? c.socket.timeout(5000).emitWithAck(event) : c.socket.timeout(5000).emitWithAck(event, payload)) as Promise<T>;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${bridge!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const metrics = async () => (await bridge!.get('/metrics')).text;
  const received = (c: Client, text: string) => () => c.texts().includes(text);

  beforeEach(async () => {
    sim = new WatchersSimulator({ bots: ['bot-1', 'bot-2'] });
    await sim.start();
  });

  afterEach(async () => {
    for (const s of clients.splice(0)) s.close();
    await bridge?.close();
    bridge = undefined;
    await receiver?.stop();
    receiver = undefined;
    await sim.stop();
    expect(schemaProblems.splice(0)).toEqual([]);
  });

  it('refuses connections without a configured token, with a wrong one or with none', async () => {
    bridge = await startTestBridge({}, { CHATBRIDGE_API_TOKENS: '' });
    const unconfigured = await refusal({ token: TEST_TOKEN });
    expect(unconfigured.message).toMatch(/no API tokens are configured: set CHATBRIDGE_API_TOKENS/);
    expect(unconfigured.data).toEqual({ statusCode: 401, error: 'Unauthorized', message: unconfigured.message });
    await bridge!.close();

    await start();
    expect(await refusal({ token: 'not-the-token' })).toEqual({ message: 'invalid token', data: { statusCode: 401, error: 'Unauthorized', message: 'invalid token' } });
    expect((await refusal({})).message).toMatch(/missing token: connect with auth: \{token/);
    expect((await refusal({ token: 42 })).data.statusCode).toBe(401);
    await expect(connect()).resolves.toBeDefined();
  });

  it('sends each subscriber exactly what it asked for, as structured CloudEvents, until it unsubscribes', async () => {
    await start();
    const [byChannel, byType, everything] = [await connect(), await connect(), await connect()];
    expect(await ack(byChannel, 'subscribe', { channels: ['bot-a'] })).toEqual({ subscribed: { channels: ['bot-a'] } });
    expect(await ack(byType, 'subscribe', { types: ['*.received'] })).toEqual({ subscribed: { types: ['*.received'] } });
    expect(await ack(everything, 'subscribe')).toEqual({ subscribed: {} });
    await waitFor('3 subscribers', async () => metricValue(await metrics(), 'chatbridge_stream_subscribers') === 3);

    const said = sim.userSays(ROOM_A, 'user-9', 'a1');
    sim.userSays(ROOM_A, 'bot-1', 'bot reply');
    await waitFor('a1 and the reply everywhere they belong', () => received(everything, 'bot reply')() && received(byChannel, 'bot reply')());
    sim.userSays(ROOM_B, 'user-9', 'b1');
    await waitFor('b1 through the pipeline', received(everything, 'b1'));
    // A last event both narrow subscribers match: everything published before it has reached them already.
    sim.userSays(ROOM_A, 'user-9', 'marker');
    await waitFor('marker', () => received(byChannel, 'marker')() && received(byType, 'marker')());

    expect(byChannel.texts()).toEqual(['a1', 'bot reply', 'marker']);
    expect(byChannel.events.every((e) => e.channelid === 'bot-a')).toBe(true);
    expect(byType.texts()).toEqual(['a1', 'b1', 'marker']);
    expect(byType.events.every((e) => e.type === 'chatbridge.message.received')).toBe(true);
    expect(everything.texts()).toEqual(expect.arrayContaining(['a1', 'bot reply', 'b1', 'marker']));
    expect(byChannel.events[0]).toEqual({
      specversion: '1.0', id: expect.stringMatching(/^[0-9a-f]{32}$/), source: '/chatbridge/watchers/bot-a', type: 'chatbridge.message.received',
      time: expect.any(String), datacontenttype: 'application/json',
      dataschema: 'https://chatbridge.dev/schemas/chatbridge.message.received.json#/properties/data', partitionkey: `bot-a:${ROOM_A}`, subject: ROOM_A, channelid: 'bot-a', provider: 'watchers',
      data: expect.objectContaining({ message: expect.objectContaining({ id: String(said.message.id), text: 'a1', direction: 'inbound' }) }),
    });
    // The same event, the same structured JSON, for every subscriber that gets it.
    expect(byType.events[0]).toEqual(byChannel.events[0]);

    expect(await ack(byChannel, 'unsubscribe')).toEqual({ subscribed: null });
    expect(await ack(byType, 'subscribe', { channels: ['bot-b'], types: ['chatbridge.message.*'] })).toEqual({ subscribed: { channels: ['bot-b'], types: ['chatbridge.message.*'] } });
    sim.userSays(ROOM_A, 'user-9', 'after');
    await waitFor('after', received(everything, 'after'));
    expect(await ack(byChannel, 'subscribe', { channels: ['bot-b'] })).toEqual({ subscribed: { channels: ['bot-b'] } });
    sim.userSays(ROOM_B, 'user-9', 'marker 2');
    await waitFor('marker 2', () => received(byChannel, 'marker 2')() && received(byType, 'marker 2')() && received(everything, 'marker 2')());
    expect(byChannel.texts()).toEqual(['a1', 'bot reply', 'marker', 'marker 2']);
    expect(byType.texts()).toEqual(['a1', 'b1', 'marker', 'marker 2']);
    expect(metricValue(await metrics(), 'chatbridge_stream_events_total')).toBe(byChannel.events.length + byType.events.length + everything.events.length);
  });

  it('refuses a malformed subscription with every problem and keeps the previous one', async () => {
    await start();
    const c = await connect();
    await ack(c, 'subscribe', { channels: ['bot-a'] });
    const bad = await ack<{ error: ErrorBody }>(c, 'subscribe', { channels: 'bot-a', types: [3], extra: true });
    expect(bad.error).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(/invalid subscription/) });
    expect(bad.error.details).toEqual(expect.arrayContaining(['extra: unknown key', expect.stringMatching(/^channels: .*array/), 'types[0]: must be a string']));
    const unknown = await ack<{ error: ErrorBody }>(c, 'subscribe', { channels: ['bot-a', 'nope'] });
    expect(unknown.error).toMatchObject({ statusCode: 400, details: ['channels[1]: unknown channel "nope"'] });
    expect((await ack<{ error: ErrorBody }>(c, 'subscribe', ['bot-a'])).error.details).toEqual(['(payload): must be an object']);

    sim.userSays(ROOM_A, 'user-9', 'still subscribed');
    await waitFor('the earlier subscription still works', received(c, 'still subscribed'));
  });

  it('refuses subscribers past the per-token (429) and total (503) limits, counts them, and has room again once one leaves', async () => {
    const OTHER = 'other-token-0123456789';
    bridge = await startTestBridge({
      channels: [channel('bot-a', 'bot-1', ROOM_A), channel('bot-b', 'bot-2', ROOM_B)], api: { stream: { maxSubscribersPerToken: 2, maxSubscribers: 3 } },
    }, { CHATBRIDGE_API_TOKENS: `${TEST_TOKEN},${OTHER}` });
    await sim.waitUntil('both rooms listened', () => sim.listeners(ROOM_A) === 1 && sim.listeners(ROOM_B) === 1);
    const [a1, a2, a3] = [await connect(), await connect(), await connect()];
    expect(await ack(a1, 'subscribe', {})).toEqual({ subscribed: {} });
    expect(await ack(a2, 'subscribe', {})).toEqual({ subscribed: {} });
    const perToken = await ack<{ error: ErrorBody }>(a3, 'subscribe', {});
    expect(perToken).toEqual({ error: { statusCode: 429, error: 'Too Many Requests', message: expect.stringMatching(/this API token has 2 subscribed sockets, its limit \(api\.stream\.maxSubscribersPerToken\)/) } });
    // Changing a subscription is not one more subscriber.
    expect(await ack(a1, 'subscribe', { channels: ['bot-a'] })).toEqual({ subscribed: { channels: ['bot-a'] } });
    const [b1, b2] = [await connect({ token: OTHER }), await connect({ token: OTHER })];
    expect(await ack(b1, 'subscribe', {})).toEqual({ subscribed: {} });
    const total = await ack<{ error: ErrorBody }>(b2, 'subscribe', {});
    expect(total).toEqual({ error: { statusCode: 503, error: 'Service Unavailable', message: expect.stringMatching(/the live stream has 3 subscribers, its limit \(api\.stream\.maxSubscribers\)/) } });
    const m = await metrics();
    expect(metricValue(m, 'chatbridge_refused_total', { origin: 'stream', reason: 'subscribers_per_token' })).toBe(1);
    expect(metricValue(m, 'chatbridge_refused_total', { origin: 'stream', reason: 'subscribers_total' })).toBe(1);
    expect(metricValue(m, 'chatbridge_stream_subscribers')).toBe(3);
    // Refused sockets stay connected; once a subscriber leaves, the token has room again, and events flow to all.
    expect(a3.socket.connected && b2.socket.connected).toBe(true);
    a2.socket.close();
    await waitFor('a2 gone', async () => metricValue(await metrics(), 'chatbridge_stream_subscribers') === 2);
    expect(await ack(a3, 'subscribe', {})).toEqual({ subscribed: {} });
    sim.userSays(ROOM_A, 'user-9', 'to all three');
    await waitFor('every subscriber has it', () => [a1, a3, b1].every((c) => received(c, 'to all three')()));
    expect(b2.events).toEqual([]);
  });

  it('answers any subscribe payload with an ack, refuses globs past the limits, and matches the 25-star glob in linear time', async () => {
    await start({ api: { stream: { maxPatterns: 3, maxPatternLength: 30 } } });
    const [c, other] = [await connect(), await connect()];
    expect(await ack(other, 'subscribe', { types: ['chatbridge.message.*'] })).toEqual({ subscribed: { types: ['chatbridge.message.*'] } });
    const tooMany = await ack<{ error: ErrorBody }>(c, 'subscribe', { types: ['a', 'b', 'c', 'd'] });
    expect(tooMany.error).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(/invalid subscription/), details: ['types: at most 3 patterns (api.stream.maxPatterns); got 4'] });
    const tooLong = await ack<{ error: ErrorBody }>(c, 'subscribe', { types: [`${'*'.repeat(31)}Z`] });
    expect(tooLong.error.details).toEqual(['types[0]: at most 30 characters (api.stream.maxPatternLength); got 32']);

    // As JSON text: socket.io-client itself cannot encode an object this deep (its binary check recurses).
    const deep = (n: number) => `${'{"types":['.repeat(n)}"x"${']}'.repeat(n)}`;
    const hostile: string[] = [
      '42', '"everything"', 'true', '[]', '["bot-a"]', deep(10_000), `{"types":${deep(10_000)}}`, JSON.stringify({ types: Array.from({ length: 20_000 }, (_, i) => i) }),
      JSON.stringify({ channels: Array.from({ length: 20_000 }, () => 'bot-a') }), '{"types":[null,{},[],1.5]}', JSON.stringify({ ['k'.repeat(50_000)]: 1 }),
      '{"__proto__":{"types":["*"]},"constructor":{"prototype":{}}}',
    ];
    for (const [i, payload] of hostile.entries()) {
      const answer = await rawAck(c, 9000 + i, `["subscribe",${payload}]`);
      expect(answer.length).toBeLessThan(4096);
      expect((JSON.parse(answer) as [{ error: ErrorBody }])[0].error).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    }
    // A binary packet this deep fails in socket.io's own decoder, before any handler: that one connection is closed.
    const binary = await connect();
    const closed = new Promise<string>((resolve) => binary.socket.once('disconnect', resolve));
    binary.socket.io.engine.send(`51-/v1,7["subscribe",${deep(10_000).replace('"x"', '{"_placeholder":true,"num":0}')}]`);
    binary.socket.io.engine.send(Buffer.from([1]) as unknown as string);
    expect(await closed).toBe('transport close');
    expect(c.socket.connected).toBe(true);
    expect(metricValue(await metrics(), 'chatbridge_refused_total', { origin: 'stream', reason: 'pattern_limit' })).toBe(2);
    expect(metricValue(await metrics(), 'chatbridge_refused_total', { origin: 'stream', reason: 'invalid' })).toBe(hostile.length);

    // The pattern that froze the backtracking matcher is an ordinary one now: it matches nothing, and the rest goes on.
    expect(await ack(c, 'subscribe', { types: [`${'*'.repeat(25)}Z`] })).toEqual({ subscribed: { types: [`${'*'.repeat(25)}Z`] } });
    for (let i = 0; i < 20; i++) sim.userSays(ROOM_A, 'user-9', `m${i}`);
    await waitFor('20 events at the other subscriber', () => other.events.length === 20);
    expect(other.texts()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(c.events).toEqual([]);
  });

  it('cuts off a subscriber that stops reading, while another one, the webhooks and the bridge keep going', async () => {
    receiver = new WebhookReceiver();
    await receiver.start();
    const b = await start({ api: { stream: { maxBufferedEvents: 20 } }, webhooks: [{ id: 'hook', url: receiver.url, secret: newSecret(), types: ['chatbridge.message.received'] }] });
    const [slow, fast] = [await connect(), await connect()];
    let cutOff: unknown;
    const slowSaw: string[] = [];
    slow.socket.on('stream_error', (e: unknown) => void (cutOff = e));
    slow.socket.on('disconnect', (reason: string) => void slowSaw.push(reason));
    await ack(slow, 'subscribe', { types: ['chatbridge.message.received'] });
    await ack(fast, 'subscribe', { types: ['chatbridge.message.received'] });
    // The slow client stops reading its TCP socket: kernel buffers fill first, then the bridge's write buffer.
    const ws = (slow.socket.io.engine.transport as unknown as { ws: WebSocket }).ws;
    ws.pause();

    const big = 'x'.repeat(60_000);
    let sent = 0;
    for (let round = 0; round < 40 && metricValue(await metrics(), 'chatbridge_stream_disconnects_total', { reason: 'slow_consumer' }) === 0; round++) {
      for (let i = 0; i < 10; i++) sim.userSays(ROOM_A, 'user-9', `${sent++} ${big}`);
      await waitFor(`fast subscriber has ${sent}`, () => fast.events.length === sent);
    }
    expect(metricValue(await metrics(), 'chatbridge_stream_disconnects_total', { reason: 'slow_consumer' })).toBe(1);
    expect(metricValue(await metrics(), 'chatbridge_stream_subscribers')).toBe(1);

    // The rest goes on: the fast subscriber and the webhook get every event, in order.
    for (let i = 0; i < 5; i++) sim.userSays(ROOM_A, 'user-9', `${sent++} after`);
    await waitFor('fast subscriber has all', () => fast.events.length === sent);
    expect(fast.texts().map((t) => Number(t.split(' ')[0]))).toEqual([...Array(sent).keys()]);
    const delivered = await receiver.waitForDelivered(sent, 20_000);
    expect(delivered.map((r) => Number(r.event.data.message!.text!.split(' ')[0]))).toEqual([...Array(sent).keys()]);
    expect((await b.get('/readyz', null)).body).toMatchObject({ status: 'ready', sinks: [{ name: 'webhooks', ready: true }] });

    // Reading again, the slow client learns why it was cut off, after the events that were already on their way.
    ws.resume();
    await waitFor('stream_error and disconnect', () => cutOff !== undefined && slowSaw.length > 0);
    expect(cutOff).toEqual({
      reason: 'slow_consumer', message: expect.stringMatching(/more than 20 messages .*api\.stream\.maxBufferedEvents/), buffered: expect.any(Number), limit: 20,
      bufferedBytes: expect.any(Number), limitBytes: 4 * 1024 * 1024,
    });
    expect((cutOff as { buffered: number }).buffered).toBeGreaterThan(20);
    expect(slowSaw).toEqual(['io server disconnect']);
    expect(slow.events.length).toBeLessThan(sent);
    expect(slow.texts().map((t) => Number(t.split(' ')[0]))).toEqual([...Array(slow.events.length).keys()]);
  });

  it('takes a command with an ack, sends the exact upstream call once across doors, and acks refusals as HTTP errors', async () => {
    await start({ api: { maxBodyBytes: 2048 } });
    const c = await connect();
    await ack(c, 'subscribe', { types: ['chatbridge.command.result'] });
    const command = { commandId: 'sock-1', type: 'message.send', conversationId: ROOM_A, text: 'Hello from socket.io' };
    expect(await ack(c, 'command', { ...command, channelId: 'bot-a' })).toEqual({ commandId: 'sock-1', channelId: 'bot-a', status: expect.stringMatching(/^(accepted|sending|sent)$/), duplicate: false });
    await waitFor('sent', async () => ((await bridge!.get('/v1/commands/sock-1')).body as { status: string }).status === 'sent');
    expect(sim.emitsOf('external/send').map((e) => e.payload)).toEqual([{ roomId: ROOM_A, apiKey: sim.apiKey, userId: 'bot-1', text: 'Hello from socket.io' }]);
    await waitFor('the result event on the stream', () => c.events.length === 1);
    expect(c.events[0]).toMatchObject({ type: 'chatbridge.command.result', channelid: 'bot-a', data: { command: { commandId: 'sock-1', status: 'sent', attempts: 1 } } });

    // The same command again, over socket.io and over HTTP: the stored state, nothing sent twice.
    expect(await ack(c, 'command', { ...command, channelId: 'bot-a' })).toEqual({ commandId: 'sock-1', channelId: 'bot-a', status: 'sent', duplicate: true });
    expect(await post('/v1/channels/bot-a/commands', command)).toEqual({ status: 202, body: { commandId: 'sock-1', channelId: 'bot-a', status: 'sent', duplicate: true } });
    expect(sim.emitsOf('external/send')).toHaveLength(1);

    const refused = async (body: unknown) => (await ack<{ error: ErrorBody }>(c, 'command', body)).error;
    expect(await refused({ ...command, channelId: 'bot-a', text: 'another text' })).toMatchObject({ statusCode: 409, error: 'Conflict' });
    const invalid = await refused({ channelId: 'bot-a', type: 'message.send', text: 7, colour: 'red' });
    expect(invalid).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(invalid.details).toEqual(expect.arrayContaining(['commandId: required', expect.stringMatching(/^text: /), 'colour: unknown key']));
    expect(await refused({ ...command, commandId: 'sock-2', channelId: 'nope' })).toMatchObject({ statusCode: 404, error: 'Not Found', message: expect.stringContaining('nope') });
    expect(await refused({ commandId: 'sock-3', channelId: 'bot-a', type: 'typing', conversationId: ROOM_A })).toMatchObject({ statusCode: 422, message: expect.stringContaining('watchers') });
    expect(await refused({ ...command, commandId: 'sock-4', channelId: 'bot-a', text: 'y'.repeat(3000) })).toEqual({
      statusCode: 413, error: 'Payload Too Large', message: 'command larger than the API limit of 2048 bytes (api.maxBodyBytes)',
    });
    expect(sim.emitsOf('external/send')).toHaveLength(1);
    // Refusals are answered, never turned into a dropped connection.
    expect(c.socket.connected).toBe(true);
  });

  it('limits commands per token with a 429 ack that says when to retry', async () => {
    await start({ api: { rateLimit: { perSecond: 1, burst: 2 } } });
    const c = await connect();
    const send = (n: number) => ack<{ status?: string; error?: ErrorBody }>(c, 'command', { channelId: 'bot-a', commandId: `rl-${n}`, type: 'message.send', conversationId: ROOM_A, text: `n${n}` });
    expect((await send(1)).error).toBeUndefined();
    expect((await send(2)).error).toBeUndefined();
    const third = await send(3);
    expect(third.error).toMatchObject({ statusCode: 429, error: 'Too Many Requests', message: expect.stringMatching(/rate limit of this API token exceeded \(api\.rateLimit\); retry in \d+ ms/) });
    expect(third.error!.retryAfterMs).toBeGreaterThan(0);
    await sim.waitUntil('two sends', () => sim.emitsOf('external/send').length === 2);
    expect(sim.emitsOf('external/send').map((e) => (e.payload as { text: string }).text)).toEqual(['n1', 'n2']);
    // One bucket per token for HTTP and socket.io together; once it refills, the refused command proves never accepted.
    expect((await bridge!.get('/v1/commands/rl-3')).status).toBe(429);
    const status = await waitFor('the bucket refilled', async () => { const r = await bridge!.get('/v1/commands/rl-3'); return r.status !== 429 ? r.status : 0; }, 5000, 100);
    expect(status).toBe(404);
  });

  it('closes connected clients when the bridge shuts down', async () => {
    const b = await start();
    const c = await connect();
    await ack(c, 'subscribe', {});
    const gone = new Promise<string>((resolve) => c.socket.once('disconnect', resolve));
    await b.close();
    bridge = undefined;
    expect(await gone).toMatch(/transport close|io server disconnect/);
  });
});
