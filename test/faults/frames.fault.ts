import { randomUUID } from 'node:crypto';
import { CaptivateSimulator } from '../simulators/captivate/captivate.simulator';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import type { BridgeProcess } from '../helpers/bridge-process';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';
import { deadLetters, expectHealthy, report, rssMiB, sentCommand, startBuiltBridge, until } from './harness';

/**
 * Hostile upstream frames, one channel per provider in one built bridge publishing to Kafka: a frame nested 20,000
 * deep (it crashed the process: JSON.stringify overflowed inside a socket listener), a frame over `limits.maxFrameBytes`
 * and an event over `limits.maxEventBytes`. Each is refused where it enters: dead-lettered whole, reported by a small
 * `chatbridge.provider.event`, and the channel's next message arrives.
 */
const RSS_BOUND_MIB = 400;
const DEPTH = 20_000;
/** `{"a":{"a":…1…}}`, 20,000 levels, as text (no JSON.stringify can build it). */
const DEEP_JSON = `${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}`;

describe('fault suite: hostile upstream frames', () => {
  const jwt = new JwtWebSocketSimulator({ secret: 'faults-secret' });
  const zap = new ZapThinkerSimulator({ instances: { sales: { token: 'sales-token-0123456789' } } });
  const watchers = new WatchersSimulator({ bots: ['bot-1'] });
  const captivate = new CaptivateSimulator({ apiKeys: ['cap-key-0123456789'], greeting: false, botReplyDelayMs: 20 });
  const smartsupp = new SmartsuppSimulator({ accountKeys: ['smartsupp-key'] });
  const topic = uniqueTopic('faults-frames');
  const reader = new KafkaReader(sharedBrokers(), [topic]);
  let bridge: BridgeProcess;
  let visitor = '';
  let captivateConv = '';
  const ROOM = '177777';

  beforeAll(async () => {
    await Promise.all([jwt.start(), zap.start(), watchers.start(), captivate.start(), smartsupp.start()]);
    zap.touch('sales');
    await reader.start();
    bridge = await startBuiltBridge('frames', {
      kafka: { brokers: sharedBrokers(), topics: { events: topic } },
      channels: [
        { id: 'jwt', provider: 'jwt-websocket', 'jwt-websocket': { url: jwt.url, token: jwt.token({ sub: 'bridge' }), subscribe: ['conversation:c1'] } },
        { id: 'zap', provider: 'zapthinker', zapthinker: { url: zap.url, instance: 'sales', apiKey: 'sales-token-0123456789' } },
        { id: 'wat', provider: 'watchers', watchers: { url: watchers.url, bearer: watchers.bearerFor('bot-1'), apiKey: watchers.apiKey, userId: 'bot-1', rooms: [ROOM] } },
        { id: 'cap', provider: 'captivate', captivate: { url: captivate.url, httpUrl: captivate.httpUrl, apiKey: 'cap-key-0123456789' } },
        { id: 'ss', provider: 'smartsupp', smartsupp: { url: smartsupp.url, key: 'smartsupp-key' } },
      ],
    });
    await until('every channel connected', async () => {
      const { body } = await bridge.request('GET', '/v1/channels');
      return (body as { channels: Array<{ state: string }> }).channels.every((c) => c.state === 'connected');
    }, 30_000);
    visitor = await startConversation('ss');
    captivateConv = await startConversation('cap');
    await smartsupp.waitForLive(1, visitor);
  }, 120_000);

  afterAll(async () => {
    await bridge?.signal('SIGTERM');
    await reader.stop();
    await Promise.all([jwt.stop(), zap.stop(), watchers.stop(), captivate.stop(), smartsupp.stop()]);
  });

  /** `conversation.start` through the HTTP command door; resolves with the new conversation's id. */
  const startConversation = async (channel: string) => (await sentCommand(bridge, channel, { commandId: randomUUID(), type: 'conversation.start' })).conversationId as string;

  const textOf = (r: ReadRecord) => (JSON.parse(r.value ?? '{}') as { message?: { text?: string } }).message?.text;
  const arrived = (channel: string, text: string) => () => reader.records.some((r) => r.headers.ce_channelid === channel && textOf(r) === text);
  const notices = (channel: string, reason: string) =>
    reader.ofType('chatbridge.provider.event').filter((r) => r.headers.ce_channelid === channel && ((JSON.parse(r.value ?? '{}') as { upstream?: { error?: string } }).upstream?.error ?? '').startsWith(`${reason}:`));
  const lettersOf = (channel: string, reason: string) => deadLetters(bridge).filter((d) => d.channelId === channel && d.reason === reason);

  /** One hostile item on one channel, then a normal message: the four checks of every row, and the printed line. */
  async function row(name: string, channel: string, reason: string, hostile: () => void, normal: (text: string) => void): Promise<void> {
    const t0 = performance.now();
    hostile();
    const notice = await reader.waitFor(`${name}: refusal notice`, () => notices(channel, reason).length > 0, 20_000);
    const healthz = await expectHealthy(bridge);
    const text = `after ${name} ${randomUUID()}`;
    normal(text);
    await reader.waitFor(`${name}: next message`, arrived(channel, text), 20_000);
    const nextMs = Math.round(performance.now() - t0);
    const letters = await until(`${name}: dead letter`, () => lettersOf(channel, reason).length > 0 && lettersOf(channel, reason));
    expect(notices(channel, reason)).toHaveLength(1);
    expect(letters).toHaveLength(1);
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report(name, { up: !bridge.exit, healthzMs: Math.round(healthz), nextMessageMs: nextMs, refusalNotices: notice.length ? 1 : 0, deadLettered: letters.length, lost: 0, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB });
  }

  it('jwt-websocket: a frame nested 20,000 deep is refused (frame_too_deep); the next message arrives', async () => {
    await row('deep-frame/jwt-websocket', 'jwt', 'frame_too_deep', () => jwt.sendText(`{"type":"chat_message","data":${DEEP_JSON}}`), (text) => jwt.sendFrame(jwt.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: text })));
  });

  it('ZapThinker: a frame nested 20,000 deep is refused; the next message arrives', async () => {
    await row('deep-frame/zapthinker', 'zap', 'frame_too_deep', () => zap.emitRawText('sales', 'messages.upsert', DEEP_JSON), (text) => zap.sendMessage('sales', { remoteJid: '5511911112222', text }));
  });

  it('Watchers: a frame nested 20,000 deep is refused; the next message arrives', async () => {
    await row('deep-frame/watchers', 'wat', 'frame_too_deep', () => watchers.emitRawText(ROOM, 'message', DEEP_JSON), (text) => watchers.userSays(ROOM, 'user-1', text));
  });

  it('Captivate: a frame nested 20,000 deep is refused; the next message arrives', async () => {
    await row('deep-frame/captivate', 'cap', 'frame_too_deep', () => captivate.sendRawText(`{"event_type":"livechat_message","event_id":"${randomUUID()}","event_payload":${DEEP_JSON}}`), (text) => captivate.livechatMessage(captivateConv, text));
  });

  it('Smartsupp: a frame nested 20,000 deep is refused; the next message arrives', async () => {
    await row('deep-frame/smartsupp', 'ss', 'frame_too_deep', () => smartsupp.emitRawText(visitor, 'chat.message_received', DEEP_JSON), (text) => smartsupp.agentSays(visitor, text));
  });

  it('a 3 MiB message (over limits.maxFrameBytes) is refused whole; the next message arrives', async () => {
    await row('large-frame/zapthinker', 'zap', 'frame_too_large', () => zap.sendMessage('sales', { remoteJid: '5511911112222', text: 'x'.repeat(3 * 1024 * 1024) }), (text) => zap.sendMessage('sales', { remoteJid: '5511911112222', text }));
    const [letter] = lettersOf('zap', 'frame_too_large');
    expect(JSON.stringify(letter.frame).length).toBeGreaterThan(3 * 1024 * 1024);
  });

  it('a frame under the frame limit whose event is over limits.maxEventBytes: the event is dead-lettered, a notice names its id', async () => {
    let sent = '';
    await row('large-event/watchers', 'wat', 'event_too_large', () => watchers.userSays(ROOM, 'user-1', (sent = 'y'.repeat(600 * 1024))), (text) => watchers.userSays(ROOM, 'user-1', text));
    const [letter] = lettersOf('wat', 'event_too_large');
    const refused = letter.event as { id: string; type: string; data: { message: { text: string } } };
    expect(refused.data.message.text).toBe(sent);
    const [notice] = notices('wat', 'event_too_large');
    expect((JSON.parse(notice.value ?? '{}') as { upstream: { payload: { refused: { id: string } } } }).upstream.payload.refused.id).toBe(refused.id);
  });
});
