import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError } from '../../src/common/errors';
import type { CommandOutcome } from '../../src/connectors/connector.interface';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';

const KEY = 'acct-key-1';
const CHANNEL = 'site-chat';

interface Data {
  conversation?: { id: string };
  message?: { id: string; text?: string; direction: string; sender?: { role: string } };
  change?: { kind: string };
  account?: { status: string };
  status?: { state: string; reason?: string };
  upstream: { event: string; error?: string };
}

/**
 * Smartsupp simulator (socket.io 2.x) → bridge → the shared test broker. One visitor socket per
 * conversation; each test has its own topic and its own state directory.
 */
describe('Smartsupp → CloudEvents → Kafka (e2e)', () => {
  let sim: SmartsuppSimulator;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;
  let stateDir: string;
  let topic: string;

  async function start(extra: Record<string, unknown> = {}, keepTopic = false): Promise<TestBridge> {
    if (!keepTopic) {
      topic = uniqueTopic('smartsupp');
      reader = new KafkaReader(sharedBrokers(), [topic]);
      await reader.start();
    }
    const channel = { id: CHANNEL, provider: 'smartsupp', smartsupp: { url: sim.url, key: KEY, connectTimeoutMs: 1500, ackTimeoutMs: 600, ...extra } };
    bridge = await startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events: topic } }, stateDir, channels: [channel] });
    await waitFor('channel connected', () => state() === 'connected');
    return bridge;
  }

  const state = () => bridge?.bridge.channels.get(CHANNEL)?.state;
  const exec = (cmd: { type: string; [field: string]: unknown }): Promise<CommandOutcome> => bridge!.bridge.router.execute(CHANNEL, { commandId: randomUUID(), ...cmd });
  const startVisitor = async (fields: Record<string, unknown> = {}) => (await exec({ type: 'conversation.start', ...fields })).conversationId as string;
  const data = (r: ReadRecord) => JSON.parse(r.value ?? '{}') as Data;
  const ofType = (type: string) => reader!.ofType(type).map(data);
  const messageIds = () => reader!.records.filter((r) => r.headers.ce_type?.startsWith('chatbridge.message.')).map((r) => data(r).message?.id);
  const states = () => ofType('chatbridge.channel.status').map((d) => d.status!.state);
  const waitMessage = (id: string) => reader!.waitFor(`message ${id}`, () => messageIds().includes(id), 10_000);
  const commandError = async (p: Promise<unknown>): Promise<CommandError> => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    return err as CommandError;
  };

  beforeEach(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'smartsupp-state-'));
    sim = new SmartsuppSimulator({ accountKeys: [KEY] });
    await sim.start();
  });

  afterEach(async () => {
    await bridge?.close();
    await reader?.stop();
    await sim.stop();
    bridge = undefined;
    reader = undefined;
  });

  it('starts a visitor, publishes agent and visitor messages once (ack + echo), persists the visitor', async () => {
    await start({ pageUrl: 'https://shop.example.com/help' });
    const v = await startVisitor({ name: 'Jana', email: 'jana@example.com', ignored: 'x' });
    expect(sim.connects[0].data).toEqual({ pageUrl: 'https://shop.example.com/help', pageTitle: null, referer: null, domain: null, bundleVersion: 'Websocket SDK 1.2.2', name: 'Jana', email: 'jana@example.com', id: null, key: KEY });
    expect(sim.connects[0].visitorId).toBe(v);

    const reply = sim.agentSays(v, 'Hi Jana, how can I help?');
    await waitMessage(reply.id);
    const [rec] = reader!.records.filter((r) => r.headers.ce_type === 'chatbridge.message.sent');
    expect(rec.key).toBe(`${CHANNEL}:${v}`);
    expect(rec.headers).toMatchObject({ ce_source: `/chatbridge/smartsupp/${CHANNEL}`, ce_subject: v, ce_partitionkey: `${CHANNEL}:${v}`, ce_provider: 'smartsupp', ce_time: reply.createdAt });
    expect(data(rec).message).toEqual({ id: reply.id, direction: 'outbound', text: 'Hi Jana, how can I help?', sender: { id: 'agent-1', role: 'agent' } });

    const sent = await exec({ type: 'message.send', conversationId: v, text: 'My order is late' });
    const emitted = sim.emitsOf('chat.message', v);
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({ args: [{ content: { type: 'text', text: 'My order is late' } }], ack: true });
    const stored = sim.store.get(v)!.chat!.messages.at(-1)!;
    expect(sent).toMatchObject({ upstreamMessageId: stored.id, conversationId: v });
    await waitMessage(stored.id);
    // The echo (`chat.message_received`, 20 ms later) has the same id: deduplicated, published once.
    await waitFor('echo deduplicated', async () => metricValue((await bridge!.get('/metrics')).text, 'chatbridge_events_deduplicated_total', { channel: CHANNEL }) >= 1);
    expect(messageIds().filter((id) => id === stored.id)).toHaveLength(1);
    expect(ofType('chatbridge.message.received')[0]).toMatchObject({ message: { direction: 'inbound', text: 'My order is late', sender: { id: v, role: 'contact' } }, upstream: { event: 'chat.message' } });
    // Account status is keyed by the channel: another partition than the visitor's messages.
    await reader!.waitFor('account status', () => ofType('chatbridge.account.status').length >= 1);
    expect(ofType('chatbridge.account.status').map((d) => d.account!.status)).toEqual(['online']);

    const persisted = JSON.parse(readFileSync(join(stateDir, `${CHANNEL}.json`), 'utf8')) as { visitors: Record<string, { identity?: unknown }> };
    expect(persisted.visitors[v].identity).toEqual({ name: 'Jana', email: 'jana@example.com' });
  });

  it('sends every command in the exact wire format and classifies failures', async () => {
    await start();
    const v = await startVisitor();
    await exec({ type: 'message.send', conversationId: v, text: 'hello' });
    await exec({ type: 'typing', conversationId: v, typing: true, text: 'Wher' });
    await exec({ type: 'typing', conversationId: v, typing: false });
    await exec({ type: 'read', conversationId: v });
    const init = await exec({ type: 'upload.init', conversationId: v });
    const { token, url } = init.result as { token: string; url: string };
    expect(url).toBe(`${sim.url}/upload/${token}`);
    const finished = await exec({ type: 'upload.finish', conversationId: v, uploadToken: token });
    await exec({ type: 'close', conversationId: v });
    await waitFor('wire frames', () => sim.emitsOf('chat.close').length === 1);
    const wire = sim.emits.filter((e) => e.visitorId === v).map((e) => [e.event, e.args, e.ack]);
    expect(wire).toEqual([
      ['chat.message', [{ content: { type: 'text', text: 'hello' } }], true],
      ['chat.typing', [{ typing: { is: true, text: 'Wher' } }], false],
      ['chat.typing', [{ typing: { is: false, text: null } }], false],
      ['chat.read', [null], false],
      ['chat.upload_init', [null], true],
      ['chat.upload_finish', [{ uploadToken: token }], true],
      ['chat.close', [null], true],
    ]);
    expect(finished.upstreamMessageId).toBe(sim.store.get(v)!.chat!.messages.find((m) => m.content.type === 'upload')!.id);
    await reader!.waitFor('read + closed', () => ofType('chatbridge.read').length === 1 && ofType('chatbridge.conversation.updated').some((d) => d.change?.kind === 'closed'));

    const unknown = await commandError(exec({ type: 'message.send', conversationId: 'v-nope', text: 'x' }));
    expect(unknown).toMatchObject({ code: 'unknown_conversation', retriable: false, sent: false });
    const invalid = await commandError(exec({ type: 'upload.finish', conversationId: v }));
    expect(invalid).toMatchObject({ code: 'invalid_command', sent: false });
    const refused = await commandError(exec({ type: 'upload.finish', conversationId: v, uploadToken: 'deadbeef' }));
    expect(refused).toMatchObject({ code: 'not_found', retriable: false, sent: false });

    // Ack lost: ambiguous (sent: true, never retried blindly); the echo still publishes the message once.
    sim.withholdAcks('chat.message', 1);
    const lost = await commandError(exec({ type: 'message.send', conversationId: v, text: 'ack lost' }));
    expect(lost).toMatchObject({ code: 'ack_timeout', retriable: false, sent: true });
    const echoed = sim.store.get(v)!.chat!.messages.find((m) => m.content.text === 'ack lost')!;
    await waitMessage(echoed.id);
  });

  it('reconnects a dropped visitor, fills the gap from the snapshot without duplicates, and resumes after a bridge restart', async () => {
    const b = await start();
    const v = await startVisitor();
    const before = [sim.agentSays(v, 'one'), sim.agentSays(v, 'two')];
    await waitMessage(before[1].id);

    expect(sim.dropVisitor(v)).toBe(1);
    const away = sim.agentSays(v, 'while away'); // stored only: the visitor has no socket now
    await waitMessage(away.id);
    await waitFor('reconnected', () => state() === 'connected' && sim.liveSockets(v) === 1);
    const live = sim.agentSays(v, 'after');
    await waitMessage(live.id);
    expect(messageIds()).toEqual([before[0].id, before[1].id, away.id, live.id]);
    expect(states()).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    expect((b.bridge.channels.get(CHANNEL)?.reconnects ?? 0)).toBeGreaterThanOrEqual(1);

    // Upstream down: commands are refused before sending (retriable), not queued.
    await sim.stop();
    await waitFor('reconnecting', () => state() === 'reconnecting');
    expect(await commandError(exec({ type: 'message.send', conversationId: v, text: 'x' }))).toMatchObject({ code: 'not_connected', retriable: true, sent: false });
    await sim.start();
    await waitFor('back', () => state() === 'connected', 10_000);

    // Bridge restart: the same visitor resumes; only what it missed is published (the new bridge has an empty dedupe cache).
    await bridge!.close();
    bridge = undefined;
    const missed = sim.agentSays(v, 'while the bridge was down');
    const connectsBefore = sim.connects.length;
    await start({}, true);
    await waitMessage(missed.id);
    expect(sim.connects.slice(connectsBefore).map((c) => c.requestedId)).toEqual([v]);
    await new Promise((r) => setTimeout(r, 300));
    expect(messageIds()).toEqual([before[0].id, before[1].id, away.id, live.id, missed.id]);
  });

  it('goes auth_failed when the account key is refused, without a busy loop, and recovers', async () => {
    const b = await start();
    const v = await startVisitor();
    sim.setAccountKeys(['rotated-key']);
    sim.dropVisitor(v);
    await waitFor('auth_failed', async () => ((await b.get(`/v1/channels/${CHANNEL}`)).body as { state: string }).state === 'auth_failed');
    expect((await b.get('/healthz')).status).toBe(200);

    // authBackoff in the harness: 400 ms growing to 1 s. Over 2 s that is a handful of attempts.
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    const attempts = sim.connects.filter((c) => c.at >= t0);
    expect(attempts.length).toBeGreaterThanOrEqual(1);
    // Full jitter can draw several short delays in a row (~5 attempts expected here); a busy loop would be hundreds.
    expect(attempts.length).toBeLessThanOrEqual(20);
    expect(attempts.every((c) => c.requestedId === v && !c.accepted)).toBe(true);
    const refused = await commandError(exec({ type: 'conversation.start' }));
    expect(refused).toMatchObject({ code: 'auth_rejected', retriable: false });
    const statusEvents = ofType('chatbridge.channel.status').map((d) => `${d.status!.state}:${d.status!.reason ?? ''}`);
    expect(statusEvents).toEqual(['connecting:', 'connected:', 'reconnecting:disconnected', 'reconnecting:auth_rejected', 'auth_failed:auth_rejected']);

    sim.setAccountKeys([KEY]);
    await waitFor('recovered', () => state() === 'connected', 5000);
    const m = sim.agentSays(v, 'back online');
    await waitMessage(m.id);
  });

  it('survives malformed frames, maps server events, and publishes account-wide events once for all visitors', async () => {
    const b = await start();
    const [v1, v2] = [await startVisitor(), await startVisitor()];
    sim.emitMalformed(v1, 'string-payload');
    sim.emitMalformed(v1, 'message-without-id');
    sim.emitMalformed(v1, 'typing-without-is');
    sim.emitMalformed(v1, 'unknown-event');
    const ok = sim.agentSays(v1, 'still fine');
    await waitMessage(ok.id);
    // Frames without a conversation go to the channel's partition: wait for them, too.
    await reader!.waitFor('malformed frames', () => ofType('chatbridge.provider.event').length === 4);
    const metrics = (await b.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_frames_malformed_total', { channel: CHANNEL })).toBe(3);
    expect(ofType('chatbridge.provider.event').filter((d) => d.upstream.error)).toHaveLength(3);

    sim.setAccountStatus('offline'); // reaches both visitor sockets
    sim.updateAgent('agent-1', { status: 'offline' });
    sim.agentTyping(v2, true, 'Hel');
    sim.agentJoins(v2);
    sim.serverError(v2, { message: 'Too many requests', code: 429 });
    sim.rateChat(v2, 5, 'thanks');
    await reader!.waitFor('server events', () => ofType('chatbridge.notification').length === 1 && ofType('chatbridge.conversation.updated').length === 2 && ofType('chatbridge.typing').length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(ofType('chatbridge.account.status').map((d) => d.account!.status)).toEqual(['online', 'offline']);
    expect(ofType('chatbridge.provider.event').filter((d) => d.upstream.event === 'agent.updated')).toHaveLength(1);
    expect(ofType('chatbridge.conversation.updated').map((d) => [d.conversation?.id, d.change?.kind])).toEqual([[v2, 'agent_joined'], [v2, 'rated']]);
    expect(ofType('chatbridge.typing')[0].conversation).toEqual({ id: v2 });

    // The upstream forgot v1: its id is answered with a new visitor, which replaces it (also on disk).
    sim.forgetVisitor(v1);
    await waitFor('v1 replaced', () => sim.connects.some((c) => c.requestedId === v1 && c.visitorId !== v1 && c.accepted));
    const v3 = sim.connects.find((c) => c.requestedId === v1)!.visitorId!;
    await waitFor('replacement live', () => sim.liveSockets(v3) === 1);
    const sent = await exec({ type: 'message.send', conversationId: v3, text: 'new me' });
    await waitMessage(sent.upstreamMessageId!);
    expect(await commandError(exec({ type: 'read', conversationId: v1 }))).toMatchObject({ code: 'unknown_conversation' });
    await waitFor('persisted', () => Object.keys((JSON.parse(readFileSync(join(stateDir, `${CHANNEL}.json`), 'utf8')) as { visitors: object }).visitors).sort().join() === [v2, v3].sort().join());
  });
});
