import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import { CaptivateSimulator } from '../simulators/captivate/captivate.simulator';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { commandFingerprint } from '../../src/commands/command-ledger';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';

type Door = 'http' | 'socket.io' | 'kafka';
type Body = { commandId: string; type: string; [field: string]: unknown };
interface View { status: string; attempts: number; conversationId?: string; result?: unknown; error?: { code: string; message: string } }

/**
 * Every door (HTTP, socket.io, Kafka) × every command type of every provider, against the five simulators and the
 * test broker: each command reaches its simulator as the provider's exact wire call, exactly once; one commandId
 * over all three doors is sent once.
 */
describe('command doors × providers (e2e)', () => {
  const ROOM = '144444';
  const BOT = 'bot-1';
  const CONTACT = '5511987654321';
  let watchers: WatchersSimulator;
  let zap: ZapThinkerSimulator;
  let captivate: CaptivateSimulator;
  let smartsupp: SmartsuppSimulator;
  let jwt: JwtWebSocketSimulator;
  let bridge: TestBridge;
  let socket: ClientSocket;
  let producer: Producer;
  const commandsTopic = uniqueTopic('commands');
  const ledgerTopic = uniqueTopic('ledger');

  beforeAll(async () => {
    watchers = new WatchersSimulator({ bots: [BOT] });
    zap = new ZapThinkerSimulator({ instances: { sales: { token: 'zap-token-0123' } } });
    captivate = new CaptivateSimulator({ botReplyDelayMs: 20 });
    smartsupp = new SmartsuppSimulator({ accountKeys: ['ss-key'] });
    jwt = new JwtWebSocketSimulator({ secret: 'doors-secret' });
    await Promise.all([watchers.start(), zap.start(), captivate.start(), smartsupp.start(), jwt.start()]);
    zap.touch('sales');
    bridge = await startTestBridge({
      kafka: {
        brokers: sharedBrokers(),
        topics: { events: uniqueTopic('events'), commands: commandsTopic, commandLedger: ledgerTopic, state: uniqueTopic('state') },
        consumer: { commandGroup: `doors-${randomUUID()}`, maxWaitTimeMs: 100, sessionTimeoutMs: 6000 },
      },
      api: { rateLimit: { perSecond: 1000, burst: 1000 } },
      channels: [
        { id: 'bot-eu', provider: 'watchers', watchers: { url: watchers.url, bearer: watchers.bearerFor(BOT), apiKey: watchers.apiKey, userId: BOT, rooms: [ROOM], ackTimeoutMs: 1000 } },
        { id: 'wa', provider: 'zapthinker', zapthinker: { url: zap.url.replace(/^http/, 'ws'), instance: 'sales', apiKey: 'zap-token-0123' } },
        { id: 'hub', provider: 'captivate', captivate: { url: captivate.url, apiKey: 'test-key', httpUrl: captivate.httpUrl, commandTimeoutMs: 2000 } },
        { id: 'site', provider: 'smartsupp', smartsupp: { url: smartsupp.url, key: 'ss-key', ackTimeoutMs: 1000 } },
        { id: 'support', provider: 'jwt-websocket', 'jwt-websocket': { url: jwt.url, token: jwt.token({ sub: 'bridge' }), subscribe: ['conversation:conv-1'] } },
      ],
    });
    await waitFor('every channel connected', async () => {
      const { channels } = (await bridge.get('/v1/channels')).body as { channels: Array<{ id: string; state: string }> };
      return channels.filter((c) => c.id !== 'site').every((c) => c.state === 'connected');
    }, 15_000);
    socket = io(`${bridge.url}/v1`, { auth: { token: TEST_TOKEN }, transports: ['websocket'], reconnection: false, forceNew: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    producer = new Kafka({ clientId: 'doors-spec', brokers: sharedBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
  }, 30_000);

  afterAll(async () => {
    socket?.close();
    await producer?.disconnect();
    await bridge?.close();
    await Promise.all([watchers.stop(), zap.stop(), captivate.stop(), smartsupp.stop(), jwt.stop()]);
  });

  /** Sends through one door; answers what the door answered (Kafka: nothing, the record is consumed asynchronously). */
  async function via(door: Door, channelId: string, body: Body): Promise<unknown> {
    if (door === 'http') {
      const res = await fetch(`${bridge.url}/v1/channels/${channelId}/commands`, {
        method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      return { httpStatus: res.status, ...((await res.json()) as object) };
    }
    if (door === 'socket.io') return socket.timeout(5000).emitWithAck('command', { ...body, channelId });
    await producer.send({ topic: commandsTopic, messages: [{ key: channelId, value: JSON.stringify({ ...body, channelId }) }] });
    return undefined;
  }

  const view = async (id: string) => {
    const res = await bridge.get(`/v1/commands/${id}`);
    return res.status === 200 ? (res.body as View) : undefined;
  };

  /** Sends `fields` as a new command through `door` and waits until it is sent; returns its final view. */
  async function run(door: Door, channelId: string, fields: Record<string, unknown> & { type: string }): Promise<View & { commandId: string }> {
    const commandId = randomUUID();
    await via(door, channelId, { commandId, ...fields });
    const v = await waitFor(`${fields.type} on ${channelId} via ${door}`, async () => {
      const s = await view(commandId);
      return s && (s.status === 'sent' || s.status === 'failed') ? s : undefined;
    }, 15_000);
    if (v.status !== 'sent') throw new Error(`${fields.type} on ${channelId} via ${door} ended ${v.status}: ${JSON.stringify(v.error)}`);
    return { ...v, commandId };
  }

  describe.each<Door>(['http', 'socket.io', 'kafka'])('door %s', (door) => {
    it('delivers every command type of every provider as the exact upstream wire call', async () => {
      // Watchers: external/send and external/listen.
      await run(door, 'bot-eu', { type: 'message.send', conversationId: ROOM, text: `hello via ${door}` });
      expect(watchers.emitsOf('external/send').at(-1)!.payload).toEqual({ roomId: ROOM, apiKey: watchers.apiKey, userId: BOT, text: `hello via ${door}` });
      const room = `room-${door}`;
      await run(door, 'bot-eu', { type: 'room.listen', conversationId: room });
      expect(watchers.emitsOf('external/listen').at(-1)!.payload).toEqual({ roomId: room, apiKey: watchers.apiKey });

      // ZapThinker: POST /message/sendText/{instance} with apikey.
      const zapSent = await run(door, 'wa', { type: 'message.send', conversationId: CONTACT, text: `olá via ${door}` });
      expect(zap.requests.at(-1)).toMatchObject({ method: 'POST', path: '/message/sendText/sales', headers: expect.objectContaining({ apikey: 'zap-token-0123' }), body: { number: CONTACT, text: `olá via ${door}` } });
      expect(zapSent).toMatchObject({ upstreamMessageId: expect.stringMatching(/^BAE5/), conversationId: CONTACT });

      // Captivate: socket frames {action: "sendMessage", event: {event_type, event_payload}}.
      const started = await run(door, 'hub', { type: 'conversation.start', userId: `u-${door}` });
      const conv = started.conversationId!;
      expect(conv).toMatch(new RegExp(`^u-${door.replace('.', '\\.')}-`));
      expect(captivate.sent('conversation_start').at(-1)!.json).toEqual({ action: 'sendMessage', event: { event_type: 'conversation_start', event_payload: { userId: `u-${door}` } } });
      const msg = await run(door, 'hub', { type: 'message.send', conversationId: conv, text: 'Hello bot' });
      expect(captivate.sent('user_message').at(-1)!.json).toEqual({
        action: 'sendMessage', event: { event_type: 'user_message', event_payload: { type: 'message_create', client_msg_id: msg.commandId, conversation_id: conv, content: { type: 'text', text: 'Hello bot' } } },
      });
      const meta = await run(door, 'hub', { type: 'metadata', conversationId: conv, metadata: { plan: 'pro' }, target: 'bot' });
      expect(captivate.sent('metadata').at(-1)!.json).toEqual({ action: 'sendMessage', event: { event_type: 'metadata', event_payload: { metadata: { plan: 'pro' }, target: 'bot', client_msg_id: meta.commandId, conversation_id: conv } } });
      await run(door, 'hub', { type: 'action', conversationId: conv, actionId: 'escalateToHuman', data: { reason: 'vip' } });
      expect(captivate.sent('action').at(-1)!.json).toEqual({ action: 'sendMessage', event: { event_type: 'action', event_payload: { type: 'normal', id: 'escalateToHuman', data: { reason: 'vip' }, conversation_id: conv } } });
      const transcript = await run(door, 'hub', { type: 'transcript', conversationId: conv });
      expect(captivate.sent('conversation_transcript_request').at(-1)!.json).toEqual({ action: 'sendMessage', event: { event_type: 'conversation_transcript_request', event_payload: { conversation_id: conv } } });
      expect(transcript.result).toMatchObject({ transcript: expect.any(Array) });

      // Smartsupp: a visitor socket per conversation, socket.io v2 emits.
      const visitor = (await run(door, 'site', { type: 'conversation.start', name: `Jana ${door}` })).conversationId!;
      await run(door, 'site', { type: 'message.send', conversationId: visitor, text: 'My order is late' });
      await run(door, 'site', { type: 'typing', conversationId: visitor, typing: true, text: 'Wher' });
      await run(door, 'site', { type: 'read', conversationId: visitor });
      const init = await run(door, 'site', { type: 'upload.init', conversationId: visitor });
      const { token } = init.result as { token: string };
      await run(door, 'site', { type: 'upload.finish', conversationId: visitor, uploadToken: token });
      await run(door, 'site', { type: 'close', conversationId: visitor });
      await waitFor('smartsupp wire', () => smartsupp.emitsOf('chat.close', visitor).length === 1);
      expect(smartsupp.emits.filter((e) => e.visitorId === visitor && e.event.startsWith('chat.')).map((e) => [e.event, e.args, e.ack])).toEqual([
        ['chat.message', [{ content: { type: 'text', text: 'My order is late' } }], true],
        ['chat.typing', [{ typing: { is: true, text: 'Wher' } }], false],
        ['chat.read', [null], false],
        ['chat.upload_init', [null], true],
        ['chat.upload_finish', [{ uploadToken: token }], true],
        ['chat.close', [null], true],
      ]);

      // jwt-websocket: subscribe / unsubscribe frames.
      const channel = `conversation:via-${door}`;
      await run(door, 'support', { type: 'room.listen', roomId: channel });
      expect(jwt.framesOfType('subscribe').at(-1)!.raw).toBe(JSON.stringify({ type: 'subscribe', data: { channel } }));
      await run(door, 'support', { type: 'room.unlisten', roomId: channel });
      expect(jwt.framesOfType('unsubscribe').at(-1)!.raw).toBe(JSON.stringify({ type: 'unsubscribe', data: { channel } }));
    }, 60_000);
  });

  it('sends a command once when the same commandId arrives over all three doors, and refuses a changed body', async () => {
    const body: Body = { commandId: randomUUID(), type: 'message.send', conversationId: ROOM, text: 'three doors, one send' };
    const sendsBefore = watchers.emitsOf('external/send').length;
    expect(await via('http', 'bot-eu', body)).toMatchObject({ httpStatus: 202, status: 'accepted', duplicate: false });
    expect(await via('socket.io', 'bot-eu', body)).toMatchObject({ commandId: body.commandId, duplicate: true });
    await via('kafka', 'bot-eu', body);
    const duplicates = async () => metricValue((await bridge.get('/metrics')).text, 'chatbridge_commands_duplicate_total', { door: 'kafka' });
    await waitFor('the Kafka copy answered from the ledger', async () => (await duplicates()) >= 1, 15_000);
    await waitFor('sent', async () => (await view(body.commandId))?.status === 'sent');
    expect(watchers.emitsOf('external/send').length - sendsBefore).toBe(1);

    expect(await via('http', 'bot-eu', { ...body, text: 'changed' })).toMatchObject({ httpStatus: 409, statusCode: 409, error: 'Conflict' });
    expect(await via('socket.io', 'bot-eu', { ...body, text: 'changed' })).toMatchObject({ error: { statusCode: 409, error: 'Conflict' } });
    expect(watchers.emitsOf('external/send').length - sendsBefore).toBe(1);
  }, 30_000);

  it('delivers an accepted command whose ledger record landed late (its claim was refused), once, when the client repeats it', async () => {
    // A claim write that timed out after it left can still land in the ledger topic; this replica's follower reads it back.
    const command = { commandId: randomUUID(), type: 'message.send', conversationId: ROOM, text: 'landed late' };
    const now = new Date().toISOString();
    const record = {
      commandId: command.commandId, channelId: 'bot-eu', type: 'message.send', status: 'accepted', attempts: 0,
      fingerprint: commandFingerprint('bot-eu', command), door: 'http', acceptedAt: now, updatedAt: now, conversationId: ROOM, command,
    };
    await producer.send({ topic: ledgerTopic, messages: [{ key: command.commandId, value: JSON.stringify(record) }] });
    await waitFor('the follower merged the record', async () => (await view(command.commandId))?.status === 'accepted', 15_000);
    const sendsBefore = watchers.emitsOf('external/send').length;
    expect(await via('http', 'bot-eu', command)).toMatchObject({ httpStatus: 202, duplicate: true });
    await waitFor('sent', async () => (await view(command.commandId))?.status === 'sent');
    expect(await via('http', 'bot-eu', command)).toMatchObject({ httpStatus: 202, status: 'sent', duplicate: true });
    expect(watchers.emitsOf('external/send').slice(sendsBefore).map((e) => e.payload)).toEqual([{ roomId: ROOM, apiKey: watchers.apiKey, userId: BOT, text: 'landed late' }]);
  }, 30_000);
});
