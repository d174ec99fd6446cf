import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka as CloudEventsKafka, type KafkaMessage } from 'cloudevents';
import { CommandError } from '../../src/common/errors';
import type { UpstreamCommand } from '../../src/connectors/connector.interface';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';

/**
 * Watchers simulator → bridge → the shared test broker. Each test has its own events topic and state dir.
 */
describe('Watchers.io → CloudEvents → Kafka (e2e)', () => {
  const ROOM = '144444';
  const ROOM_B = '155555';
  const BOT = 'bot-1';
  let sim: WatchersSimulator;
  let bearer: string;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;

  const watchers = (extra: Record<string, unknown> = {}) => ({
    url: sim.url, bearer, apiKey: sim.apiKey, userId: BOT, rooms: [ROOM, ROOM_B], connectTimeoutMs: 2000, ackTimeoutMs: 400, ...extra,
  });
  const channel = (extra: Record<string, unknown> = {}, id = 'bot-eu', mode = 'socket') => ({
    id, provider: 'watchers', mode, ...(mode === 'webhook' ? { inbound: { token: 'inbound-token-0123456789' } } : {}), watchers: watchers(extra),
  });

  async function start(channels: unknown[]): Promise<TestBridge> {
    const topic = uniqueTopic('events');
    reader = new KafkaReader(sharedBrokers(), [topic]);
    const stateDir = mkdtempSync(join(tmpdir(), 'watchers-state-'));
    const started = startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events: topic } }, stateDir, channels });
    await reader.start();
    bridge = await started;
    return bridge;
  }

  /** A local port nothing listens on (connections are refused). Not port 1: fetch refuses "bad ports" itself. */
  async function deadUrl(): Promise<string> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return `http://127.0.0.1:${port}`;
  }

  beforeEach(async () => {
    sim = new WatchersSimulator({ bots: [BOT] });
    await sim.start();
    bearer = sim.bearerFor(BOT);
  });

  afterEach(async () => {
    await bridge?.close();
    await reader?.stop();
    await sim.stop();
    bridge = undefined;
    reader = undefined;
  });

  const listening = (...rooms: string[]) => sim.waitUntil(`listeners of ${rooms.join(',')}`, () => rooms.every((r) => sim.listeners(r) === 1));
  const messages = (type = 'chatbridge.message.') =>
    reader!.records.filter((r) => r.headers.ce_type?.startsWith(type)).map((r) => JSON.parse(r.value!) as { message: { id: string; text?: string; direction: string; sender: unknown } });
  const hasText = (text: string) => () => messages().some((m) => m.message.text === text);
  const channelState = async (id = 'bot-eu') => (await bridge!.get(`/v1/channels/${id}`)).body as { state: string; reconnects: number; malformedFrames: number };
  const run = (command: { type: string; [field: string]: unknown }, channelId = 'bot-eu') => {
    const full: UpstreamCommand = { commandId: `c-${Math.random()}`, ...command };
    return bridge!.bridge.router.execute(channelId, full);
  };
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as CommandError);

  it('listens to every room with the exact wire format and publishes received messages and bot echoes', async () => {
    await start([channel()]);
    await listening(ROOM, ROOM_B);
    expect(sim.emitsOf('external/listen').map((e) => e.payload)).toEqual([{ roomId: ROOM, apiKey: sim.apiKey }, { roomId: ROOM_B, apiKey: sim.apiKey }]);
    expect(sim.handshakes.map((h) => h.accepted)).toEqual([true]);

    const said = sim.userSays(ROOM, '123', 'Hello');
    sim.userSays(ROOM, BOT, 'Hi! How can I help?');
    await reader!.waitFor('2 messages', () => messages().length === 2);
    const [rec] = reader!.ofType('chatbridge.message.received');
    expect(rec.key).toBe(`bot-eu:${ROOM}`);
    expect(rec.headers).toMatchObject({
      ce_specversion: '1.0', ce_source: '/chatbridge/watchers/bot-eu', ce_type: 'chatbridge.message.received', ce_subject: ROOM,
      ce_partitionkey: `bot-eu:${ROOM}`, ce_channelid: 'bot-eu', ce_provider: 'watchers', 'content-type': 'application/json',
    });
    const message: KafkaMessage<string> = { key: rec.key!, value: rec.value!, body: rec.value!, headers: rec.headers, timestamp: rec.timestamp };
    const ce = CloudEventsKafka.toEvent(message) as unknown as { id: string; data: Record<string, unknown> };
    expect(ce.id).toBe(rec.headers.ce_id);
    expect(ce.data).toEqual({
      channel: { id: 'bot-eu', provider: 'watchers' },
      conversation: { id: ROOM },
      message: { id: String(said.message.id), direction: 'inbound', text: 'Hello', sender: { role: 'contact', id: '123' } },
      upstream: { event: 'message', payload: said },
    });
    const [sent] = reader!.ofType('chatbridge.message.sent');
    expect(JSON.parse(sent.value!)).toMatchObject({ message: { direction: 'outbound', text: 'Hi! How can I help?', sender: { role: 'bot', id: BOT } } });
  });

  it('retries a refused or unacked room listen on its own, without dropping the connection', async () => {
    sim.failNextListens(ROOM_B, 2);
    sim.withholdNextListenAcks(ROOM, 1);
    const b = await start([channel()]);
    await sim.waitUntil('3 listens of room B', () => sim.emitsOf('external/listen').filter((e) => (e.payload as { roomId: string }).roomId === ROOM_B).length >= 3);
    await listening(ROOM, ROOM_B);
    // The withheld ack timed out (400 ms) and was asked again; the connection was never replaced.
    await sim.waitUntil('room A asked again', () => sim.emitsOf('external/listen').filter((e) => (e.payload as { roomId: string }).roomId === ROOM).length >= 2, 3000);
    expect(sim.handshakes).toHaveLength(1);
    expect((await channelState()).reconnects).toBe(0);
    sim.userSays(ROOM_B, '123', 'room b works');
    await reader!.waitFor('room b message', hasText('room b works'));
    expect((await b.get('/v1/channels/bot-eu')).status).toBe(200);
  });

  it('reconnects after a drop and a restart, re-listens to every room (incl. room.listen ones), dedupes replays', async () => {
    const b = await start([channel()]);
    await listening(ROOM, ROOM_B);
    await expect(run({ type: 'room.listen', conversationId: 'r-new' })).resolves.toEqual({ conversationId: 'r-new', result: { status: 'ok', roomId: 'r-new' } });
    const first = sim.userSays('r-new', '123', 'one');
    await reader!.waitFor('first', hasText('one'));

    expect(sim.dropConnections()).toBe(1);
    await waitFor('reconnected', async () => (await channelState()).reconnects >= 1 && (await channelState()).state === 'connected');
    await listening(ROOM, ROOM_B, 'r-new');
    sim.emitRaw('r-new', 'message', first); // the same upstream message again
    sim.userSays('r-new', '123', 'two');
    await reader!.waitFor('second', hasText('two'));

    await sim.restart();
    await waitFor('reconnected after restart', async () => (await channelState()).reconnects >= 2 && (await channelState()).state === 'connected');
    await listening(ROOM, ROOM_B, 'r-new');
    sim.userSays('r-new', '123', 'three');
    await reader!.waitFor('third', hasText('three'));

    expect(messages().map((m) => m.message.text)).toEqual(['one', 'two', 'three']);
    const listens = sim.emitsOf('external/listen').map((e) => (e.payload as { roomId: string }).roomId);
    expect(listens).toEqual([ROOM, ROOM_B, 'r-new', ROOM, ROOM_B, 'r-new', ROOM, ROOM_B, 'r-new']);
    expect(metricValue((await b.get('/metrics')).text, 'chatbridge_events_deduplicated_total', { channel: 'bot-eu' })).toBe(1);
    const states = reader!.ofType('chatbridge.channel.status').map((r) => (JSON.parse(r.value!) as { status: { state: string } }).status.state);
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected', 'reconnecting', 'connected']);
  });

  it('reports auth_failed for a rejected bearer, once, without a busy loop', async () => {
    const b = await start([channel({ bearer: 'not.a.token' })]);
    await waitFor('auth_failed', async () => (await channelState()).state === 'auth_failed');
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    // authBackoff in the harness: 400 ms growing to 1 s → a handful of attempts, not hundreds.
    // Full jitter can draw several short delays in a row (~5 attempts expected here); a busy loop would be hundreds.
    expect(sim.handshakes.filter((h) => h.at >= t0).length).toBeLessThanOrEqual(20);
    expect(sim.handshakes.every((h) => !h.accepted && h.reason === 'invalid bearer')).toBe(true);
    const states = reader!.ofType('chatbridge.channel.status').map((r) => (JSON.parse(r.value!) as { status: { state: string; reason?: string } }).status);
    expect(states.map((s) => `${s.state}:${s.reason ?? ''}`)).toEqual(['connecting:', 'auth_failed:auth_rejected']);
    expect((await b.get('/healthz')).status).toBe(200);
  });

  it('survives malformed frames: counted, published as provider events, later events flow', async () => {
    const b = await start([channel()]);
    await listening(ROOM, ROOM_B);
    for (const kind of ['string-payload', 'message-null', 'no-message-id', 'no-room', 'unknown-event'] as const) sim.emitMalformed(ROOM, kind);
    sim.userSays(ROOM, '123', 'still fine');
    await reader!.waitFor('valid message after garbage', hasText('still fine'));
    // Frames without a room are keyed by the channel: another partition, so they may arrive later.
    await reader!.waitFor('5 provider events', () => reader!.ofType('chatbridge.provider.event').length >= 5);
    const provider = reader!.ofType('chatbridge.provider.event').map((r) => JSON.parse(r.value!) as { upstream: { event: string; error?: string } });
    expect(provider).toHaveLength(5);
    expect(provider.filter((p) => p.upstream.error)).toHaveLength(4);
    expect(metricValue((await b.get('/metrics')).text, 'chatbridge_frames_malformed_total', { channel: 'bot-eu' })).toBe(4);
    expect((await channelState()).malformedFrames).toBe(4);
  });

  it('message.send over the socket in the exact wire format; acks decide the outcome; the echo is the sent event', async () => {
    const dead = await deadUrl();
    await start([channel(), channel({ url: dead }, 'bot-down'), channel({ url: dead, restUrl: sim.url }, 'bot-fallback')]);
    await listening(ROOM, ROOM_B);
    await expect(run({ type: 'message.send', conversationId: ROOM, text: 'Hello from the bot' })).resolves.toEqual({ conversationId: ROOM, result: null });
    expect(sim.emitsOf('external/send').map((e) => e.payload)).toEqual([{ roomId: ROOM, apiKey: sim.apiKey, userId: BOT, text: 'Hello from the bot' }]);
    await reader!.waitFor('echo', () => reader!.ofType('chatbridge.message.sent').length === 1);
    expect(JSON.parse(reader!.ofType('chatbridge.message.sent')[0].value!)).toMatchObject({ message: { text: 'Hello from the bot', sender: { role: 'bot', id: BOT } } });

    sim.failNextSends(1);
    expect(await failure(run({ type: 'message.send', roomId: ROOM_B, text: 'refused' }))).toMatchObject({ code: 'upstream_rejected', sent: false, retriable: false });
    sim.withholdNextSendAcks(1);
    expect(await failure(run({ type: 'message.send', conversationId: ROOM, text: 'ack lost' }))).toMatchObject({ code: 'ack_timeout', sent: true, retriable: false });
    await reader!.waitFor('echo of the unacked send', hasText('ack lost'));
    expect(await failure(run({ type: 'message.send', conversationId: ROOM, text: '' }))).toMatchObject({ code: 'invalid_command', sent: false });
    expect(await failure(run({ type: 'typing', conversationId: ROOM }))).toMatchObject({ code: 'unsupported_command' });

    expect(await failure(run({ type: 'message.send', conversationId: ROOM, text: 'x' }, 'bot-down'))).toMatchObject({ code: 'not_connected', retriable: true, sent: false });
    expect(await failure(run({ type: 'room.listen', conversationId: 'r9' }, 'bot-down'))).toMatchObject({ code: 'not_connected', retriable: true });
    await expect(run({ type: 'message.send', conversationId: ROOM, text: 'rest fallback' }, 'bot-fallback')).resolves.toMatchObject({ upstreamMessageId: expect.any(String) });
    expect(sim.requests.map((r) => r.path)).toEqual(['/api/bot/sendMessage']);
  });

  it('webhook mode sends over the Bot REST API with the exact headers; HTTP failures are classified', async () => {
    const dead = { restUrl: await deadUrl() };
    await start([channel({ restUrl: sim.url }, 'bot-hook', 'webhook'), channel({}, 'bot-norest', 'webhook'), channel(dead, 'bot-dead', 'webhook')]);
    const done = await run({ type: 'message.send', conversationId: ROOM, text: 'via REST' }, 'bot-hook');
    expect(done).toMatchObject({ conversationId: ROOM, upstreamMessageId: '101', result: { id: 101, text: 'via REST' } });
    const [req] = sim.requests;
    expect(req).toMatchObject({ method: 'POST', path: '/api/bot/sendMessage', body: { roomId: ROOM, text: 'via REST' } });
    expect(req.headers).toMatchObject({ 'x-api-key': sim.apiKey, authorization: `Bearer ${bearer}`, 'x-bot-id': BOT, 'content-type': 'application/json' });

    sim.failNextRestSends(1, 503);
    expect(await failure(run({ type: 'message.send', conversationId: ROOM, text: 'busy' }, 'bot-hook'))).toMatchObject({ code: 'upstream_unavailable', retriable: true, sent: false });
    sim.failNextRestSends(1, 422);
    expect(await failure(run({ type: 'message.send', conversationId: ROOM, text: 'bad' }, 'bot-hook'))).toMatchObject({ code: 'upstream_rejected', retriable: false, sent: false });
    expect(await failure(run({ type: 'message.send', conversationId: ROOM, text: 'x' }, 'bot-dead'))).toMatchObject({ code: 'network', retriable: true, sent: false });
    expect(await failure(run({ type: 'message.send', conversationId: ROOM, text: 'x' }, 'bot-norest'))).toMatchObject({ code: 'no_http_path', retriable: false });
    expect(await failure(run({ type: 'room.listen', conversationId: 'r1' }, 'bot-hook'))).toMatchObject({ code: 'webhook_mode' });
    // Webhook mode holds no socket.
    expect(sim.handshakes).toHaveLength(0);
    expect(sim.connectedClients()).toBe(0);
  });
});
