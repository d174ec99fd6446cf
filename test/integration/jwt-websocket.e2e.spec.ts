import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';

/**
 * JWT WebSocket simulator → bridge → the shared test broker. Each test has its own events topic.
 * Fast timings: ping every 200 ms, a socket silent 400 ms after a ping is dead, a 150 ms subscribe window.
 */
describe('jwt-websocket → CloudEvents → Kafka (e2e)', () => {
  let sim: JwtWebSocketSimulator;
  let bridge: TestBridge | undefined;
  // One reader (one consumer group join, ~3 s) for the whole file; every test still has its own topic.
  const topics = Array.from({ length: 12 }, () => uniqueTopic('events-jwtws'));
  const reader = new KafkaReader(sharedBrokers(), topics);
  let topic: string;

  beforeAll(async () => {
    await reader.start();
  });

  const CONV = 'conversation:conv-123';
  const SUB_RAW = (channel: string) => `{"type":"subscribe","data":{"channel":"${channel}"}}`;

  const channel = (extra: Record<string, unknown> = {}) => ({
    id: 'support',
    provider: 'jwt-websocket',
    'jwt-websocket': {
      url: sim.url, token: sim.token({ sub: 'bridge' }), subscribe: [CONV, 'task:task-789'],
      pingIntervalMs: 200, pongTimeoutMs: 400, connectTimeoutMs: 1500, subscribeConfirmMs: 150, ...extra,
    },
  });

  async function start(channels: unknown[]): Promise<TestBridge> {
    topic = topics.shift()!;
    bridge = await startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events: topic } }, channels });
    return bridge;
  }

  /** This test's records (its own topic) of one CloudEvents type. */
  const ofType = (type: string) => reader.records.filter((r) => r.topic === topic && r.headers.ce_type === type);
  const waitRecords = (what: string, check: () => boolean) => reader.waitFor(what, check);

  const status = async (id = 'support') => (await bridge!.get(`/v1/channels/${id}`)).body as { state: string; reconnects: number; lastError?: string; malformedFrames: number };
  const connected = () => sim.waitUntil('subscribed', () => sim.subscriberCount(CONV) === 1 && sim.subscriberCount('task:task-789') === 1);
  const parse = (r: ReadRecord) => JSON.parse(r.value!) as Record<string, unknown> & { upstream: { event: string; payload: unknown; error?: string } };
  const texts = () => ofType('chatbridge.message.received').map((r) => (parse(r) as unknown as { message: { text: string } }).message.text);
  const states = () => ofType('chatbridge.channel.status').map((r) => parse(r) as unknown as { status: { state: string; reason?: string } }).map((s) => `${s.status.state}${s.status.reason ? `:${s.status.reason}` : ''}`);

  /** This test's channel states so far, once at least `n` have reached Kafka (their partition lags the messages'). */
  const statesAfter = async (n: number): Promise<string[]> => {
    await waitRecords(`${n} status events`, () => states().length >= n);
    return states();
  };

  beforeEach(async () => {
    sim = new JwtWebSocketSimulator({ secret: 'e2e-secret' });
    await sim.start();
  });

  afterEach(async () => {
    await bridge?.close();
    await sim.stop();
    bridge = undefined;
  });

  afterAll(async () => {
    await reader.stop();
  });

  it('connects with ?token=, subscribes, pings, and publishes the three event types with the right key and headers', async () => {
    const cfg = channel();
    await start([cfg]);
    await connected();
    expect(sim.handshakes).toEqual([expect.objectContaining({ token: cfg['jwt-websocket'].token, accepted: true, sub: 'bridge' })]);
    const chat = sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'Hello there!' }, '2023-08-15T10:30:00Z');
    sim.notification({ message: 'New comment on your post', level: 'info' }, '2023-08-15T10:30:05Z');
    sim.statusUpdate({ entity_type: 'task', entity_id: 'task-789', status: 'completed' }, '2023-08-15T10:30:10Z');
    await waitRecords('three events', () => ofType('chatbridge.entity.status').length === 1 && texts().length === 1 && ofType('chatbridge.notification').length === 1);

    const [rec] = ofType('chatbridge.message.received');
    expect(rec.key).toBe('support:conv-123');
    expect(rec.headers).toMatchObject({
      ce_specversion: '1.0', ce_type: 'chatbridge.message.received', ce_source: '/chatbridge/jwt-websocket/support', ce_subject: 'conv-123',
      ce_time: '2023-08-15T10:30:00.000Z', ce_partitionkey: 'support:conv-123', ce_channelid: 'support', ce_provider: 'jwt-websocket', 'content-type': 'application/json',
    });
    expect(rec.headers.ce_id).toMatch(/^[0-9a-f]{32}$/);
    expect(parse(rec)).toEqual({
      channel: { id: 'support', provider: 'jwt-websocket' },
      conversation: { id: 'conv-123' },
      message: { direction: 'inbound', text: 'Hello there!', sender: { id: 'user-456', role: 'contact' } },
      upstream: { event: 'chat_message', payload: chat },
    });
    expect(ofType('chatbridge.notification')[0].key).toBe('support');
    expect(parse(ofType('chatbridge.entity.status')[0])).toMatchObject({ entity: { type: 'task', id: 'task-789', status: 'completed' } });

    // Exact client frames: subscriptions in config order, then pings; pongs are never published.
    await sim.waitUntil('pings', () => sim.framesOfType('ping').length >= 3);
    expect(sim.framesOfType('subscribe').map((f) => f.raw)).toEqual([SUB_RAW(CONV), SUB_RAW('task:task-789')]);
    expect(new Set(sim.framesOfType('ping').map((f) => f.raw))).toEqual(new Set(['{"type":"ping","data":{}}']));
    expect(reader.records.filter((r) => r.topic === topic && parse(r).upstream?.event === 'pong')).toEqual([]);
  });

  it('reconnects after a drop, resubscribes, resumes, and suppresses an exact replay', async () => {
    const b = await start([channel()]);
    await connected();
    const first = sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'one' });
    await waitRecords('one', () => texts().length === 1);

    expect(sim.dropConnections()).toBe(1);
    await sim.waitUntil('reconnected', () => sim.handshakes.length === 2);
    await connected();
    sim.sendFrame(first); // the same frame again (e.g. an upstream replay): same content hash, same id
    sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'two' });
    await waitRecords('two', () => texts().includes('two'));
    await new Promise((r) => setTimeout(r, 200));

    expect(texts()).toEqual(['one', 'two']);
    expect(sim.framesOfType('subscribe').map((f) => [f.connection, f.raw])).toEqual([
      [1, SUB_RAW(CONV)], [1, SUB_RAW('task:task-789')], [2, SUB_RAW(CONV)], [2, SUB_RAW('task:task-789')],
    ]);
    const metrics = (await b.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_events_deduplicated_total', { channel: 'support' })).toBe(1);
    expect(await statesAfter(4)).toEqual(['connecting', 'connected', 'reconnecting:disconnected', 'connected']);
  });

  it('treats a socket that goes silent after a ping as dead: terminates it and reconnects', async () => {
    await start([channel()]);
    await connected();
    sim.answerPings(false);
    await waitFor('loss detected', async () => (await status()).lastError?.includes('no frame within 400 ms'), 5000);
    sim.answerPings(true);
    await sim.waitUntil('second connection', () => sim.handshakes.length >= 2 && sim.connectionCount() === 1, 5000);
    await connected();
    sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'after silence' });
    await waitRecords('after silence', () => texts().includes('after silence'));
    expect((await statesAfter(3)).slice(0, 3)).toEqual(['connecting', 'connected', 'reconnecting:silent']);
  });

  it('reports auth_failed for a token refused at the upgrade (HTTP 401), without a busy loop', async () => {
    await start([channel({ token: sim.token({ secret: 'forged' }) })]);
    await waitFor('auth_failed', async () => (await status()).state === 'auth_failed');
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    // authBackoff in the harness: 400 ms growing to 1 s.
    // Full jitter can draw several short delays in a row (~5 attempts expected here); a busy loop would be hundreds.
    expect(sim.handshakes.filter((h) => h.at >= t0).length).toBeLessThanOrEqual(20);
    expect(sim.handshakes.every((h) => !h.accepted && h.reason === 'invalid signature')).toBe(true);
    expect(await statesAfter(2)).toEqual(['connecting', 'auth_failed:auth_rejected']);
    expect((await bridge!.get('/healthz')).status).toBe(200);
  });

  it('an unauthorized error frame (revoked token, or refusal after the upgrade): reconnecting for the grace of a token that connected, then auth_failed; recovers when accepted again', async () => {
    await start([channel()]);
    await connected();
    sim.setAuthFailureMode('error-frame');
    sim.rejectAuth(true);
    sim.revokeAuth();
    await waitFor('auth_failed', async () => (await status()).state === 'auth_failed');
    await sim.waitUntil('refused after the upgrade', () => sim.handshakes.filter((h) => !h.accepted).length >= 1, 3000);
    expect((await status()).state).toBe('auth_failed');
    // The unauthorized frames are visible as provider events with their code.
    await waitRecords('error frames', () => ofType('chatbridge.provider.event').length >= 2);
    const codes = ofType('chatbridge.provider.event').map((r) => (parse(r).upstream.payload as { type: string; data: { code: string } }));
    expect(codes.every((e) => e.type === 'error' && e.data.code === 'unauthorized')).toBe(true);

    sim.rejectAuth(false);
    await waitFor('connected again', async () => (await status()).state === 'connected', 5000);
    await connected();
    // The token had just connected: its first refusals are retried on the normal schedule (reconnecting), then auth_failed.
    expect((await statesAfter(4)).slice(0, 4)).toEqual(['connecting', 'connected', 'reconnecting:unauthorized', 'auth_failed:unauthorized']);
    expect(sim.handshakes.filter((h) => !h.accepted).length).toBeGreaterThanOrEqual(5);
  });

  it('survives malformed frames: counted, published as provider events, later events flow', async () => {
    const b = await start([channel()]);
    await connected();
    sim.malformed('not-json');
    sim.malformed('no-type');
    sim.malformed('chat-no-conversation');
    sim.malformed('binary');
    sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'still fine' });
    await waitRecords('valid after garbage', () => texts().includes('still fine'));
    // Provider events without a conversation are keyed by the channel: another partition, maybe later.
    await waitRecords('4 provider events', () => ofType('chatbridge.provider.event').length >= 4);
    const provider = ofType('chatbridge.provider.event').map(parse);
    expect(provider).toHaveLength(4);
    expect(provider.every((p) => typeof p.upstream.error === 'string')).toBe(true);
    expect(provider[0].upstream.payload).toBe('{"type":"chat_message","data":{"conversation_id":');
    const metrics = (await b.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_frames_malformed_total', { channel: 'support' })).toBe(4);
    expect((await status()).malformedFrames).toBe(4);
    expect((await status()).state).toBe('connected');
  });

  it('retries a failed subscription with backoff on the same connection, and publishes the error frames', async () => {
    sim.failSubscriptions(CONV, 2);
    await start([channel()]);
    await sim.waitUntil('subscribed on the 3rd try', () => sim.subscriberCount(CONV) === 1, 5000);
    sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'finally' });
    await waitRecords('finally and both errors', () => texts().includes('finally') && ofType('chatbridge.provider.event').length === 2);
    expect(sim.handshakes).toHaveLength(1);
    expect(sim.framesOfType('subscribe').filter((f) => f.raw === SUB_RAW(CONV)).map((f) => f.connection)).toEqual([1, 1, 1]);
    const codes = ofType('chatbridge.provider.event').map((r) => parse(r).upstream.payload as { type: string; data: { code: string; channel: string } });
    expect(codes.map((c) => [c.type, c.data.code, c.data.channel])).toEqual([['error', 'subscription_failed', CONV], ['error', 'subscription_failed', CONV]]);
    expect((await status()).reconnects).toBe(0);
  });

  it('an unauthorized error frame naming a channel refuses that subscription only: retried alone, counted, the connection stays', async () => {
    sim.failSubscriptions(CONV, 2, 'unauthorized');
    const b = await start([channel()]);
    await sim.waitUntil('subscribed on the 3rd try', () => sim.subscriberCount(CONV) === 1, 10_000);
    await sim.waitUntil('the other channel subscribed', () => sim.subscriberCount('task:task-789') === 1);
    sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'permitted at last' });
    await waitRecords('message after the refusals', () => texts().includes('permitted at last'));
    expect(sim.handshakes).toHaveLength(1);
    expect(sim.framesOfType('subscribe').filter((f) => f.raw === SUB_RAW(CONV)).map((f) => f.connection)).toEqual([1, 1, 1]);
    expect(await statesAfter(2)).toEqual(['connecting', 'connected']);
    expect((await status()).reconnects).toBe(0);
    const metrics = (await b.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_subscription_failures_total', { channel: 'support', code: 'subscription_refused' })).toBe(2);
  });

  it('room.listen / room.unlisten send subscribe / unsubscribe frames; listened rooms survive a reconnect; errors are typed', async () => {
    const b = await start([channel()]);
    await connected();
    const exec = (cmd: Record<string, unknown>) => b.bridge.router.execute('support', { commandId: `c-${Math.random()}`, ...cmd } as { commandId: string; type: string });

    await expect(exec({ type: 'room.listen', roomId: 'conversation:conv-555' })).resolves.toEqual({
      result: { channel: 'conversation:conv-555', subscriptions: [CONV, 'task:task-789', 'conversation:conv-555'] },
    });
    expect(sim.framesOfType('subscribe').at(-1)!.raw).toBe(SUB_RAW('conversation:conv-555'));
    sim.chatMessage({ conversation_id: 'conv-555', sender_id: 'user-1', content: 'listened' });
    await waitRecords('listened', () => texts().includes('listened'));

    sim.failSubscriptions('conversation:denied', 1);
    await expect(exec({ type: 'room.listen', channel: 'conversation:denied' })).rejects.toMatchObject({ code: 'subscription_failed', sent: false, retriable: true });
    await expect(exec({ type: 'room.listen' })).rejects.toMatchObject({ code: 'invalid_command', sent: false });
    await expect(exec({ type: 'message.send', text: 'x' })).rejects.toMatchObject({ code: 'unsupported_command' });

    await expect(exec({ type: 'room.unlisten', roomId: CONV })).resolves.toMatchObject({ result: { subscriptions: ['task:task-789', 'conversation:conv-555'] } });
    expect(sim.framesOfType('unsubscribe').map((f) => f.raw)).toEqual(['{"type":"unsubscribe","data":{"channel":"conversation:conv-123"}}']);
    expect(sim.subscriberCount(CONV)).toBe(0);

    sim.dropConnections();
    await sim.waitUntil('resubscribed', () => sim.subscriberCount('conversation:conv-555') === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.framesOfType('subscribe').filter((f) => f.connection === 2).map((f) => f.raw)).toEqual([SUB_RAW('task:task-789'), SUB_RAW('conversation:conv-555')]);

    await sim.stop();
    await waitFor('disconnected', async () => (await status()).state !== 'connected');
    await expect(exec({ type: 'room.listen', roomId: 'conversation:later' })).rejects.toMatchObject({ code: 'not_connected', sent: false, retriable: true });
  });

  it('refreshes a token from tokenUrl before exp with a planned reconnect', async () => {
    // A token endpoint (as a sidecar would run): a token about to expire first, then a fresh one.
    const shortLived = sim.token({ sub: 'bridge', expiresInSec: 5 });
    const fresh = sim.token({ sub: 'bridge-2', expiresInSec: 3600 });
    const served: string[] = [];
    const tokens = createServer((_req, res) => {
      const token = served.length === 0 ? shortLived : fresh;
      served.push(token);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
    });
    await new Promise<void>((r) => tokens.listen(0, '127.0.0.1', r));
    try {
      const tokenUrl = `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/token`;
      // Refresh 4 s before exp, i.e. about a second after connecting.
      await start([channel({ token: undefined, tokenUrl, tokenRefreshMarginMs: 4000 })]);
      await sim.waitUntil('reconnect with the fresh token', () => sim.handshakes.length === 2, 5000);
      expect(sim.handshakes.map((h) => h.token)).toEqual([shortLived, fresh]);
      await sim.waitUntil('resubscribed', () => sim.framesOfType('subscribe').filter((f) => f.connection === 2).length === 2);
      expect(await statesAfter(4)).toEqual(['connecting', 'connected', 'reconnecting:token_refresh', 'connected']);
      await new Promise((r) => setTimeout(r, 300));
      expect(sim.handshakes).toHaveLength(2); // the fresh token is far from exp: no further reconnects
    } finally {
      await new Promise<void>((r) => tokens.close(() => r()));
    }
  });
});
