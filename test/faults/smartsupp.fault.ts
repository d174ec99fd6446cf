import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BridgeProcess } from '../helpers/bridge-process';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

interface CommandResult {
  command: { commandId: string; type: string; status: string; error?: string; errorCode?: string };
  conversation?: { id: string };
}

/** The simulator, a reader of the events topic and the built bridge with one Smartsupp channel, connected. */
async function startRow(name: string, topics: Record<string, string>, smartsupp: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const sim = new SmartsuppSimulator({ accountKeys: [KEY] });
  await sim.start();
  const reader = new KafkaReader(sharedBrokers(), [topics.events]);
  await reader.start();
  const bridge = await startBuiltBridge(name, {
    kafka: { brokers: sharedBrokers(), topics, consumer: { commandGroup: `${name}-${randomUUID()}`, maxWaitTimeMs: 100 } },
    ...extra,
    channels: [{ id: CHANNEL, provider: 'smartsupp', smartsupp: { url: sim.url, key: KEY, ...smartsupp } }],
  });
  await until('channel connected', async () => ((await bridge.request('GET', `/v1/channels/${CHANNEL}`)).body as { state?: string }).state === 'connected', 30_000);
  return { sim, reader, bridge };
}

async function stopRow(row: { sim?: SmartsuppSimulator; reader?: KafkaReader; bridge?: BridgeProcess }): Promise<void> {
  await row.bridge?.kill();
  await row.reader?.stop();
  await row.sim?.stop();
}

const CHANNEL = 'site';
const KEY = 'sim-account-key';

/**
 * A caller that starts Smartsupp visitors without end, against the built bridge and the Smartsupp simulator: 1,000
 * `conversation.start` commands over the HTTP command door with `smartsupp.maxVisitors` 200. Exactly 200 visitor
 * sockets open; every other start ends `failed` with the reason (`too_many_visitors`), the process stays up and
 * answers /healthz fast, memory stays bounded, and a message to an existing visitor is still delivered.
 */
describe('fault rows: smartsupp', () => {
  const MAX = 200;
  const STARTS = 1000;
  const RSS_BOUND_MIB = 250;
  const topics = { events: uniqueTopic('events'), commands: uniqueTopic('commands'), deadLetter: uniqueTopic('dlq'), state: uniqueTopic('state'), commandLedger: uniqueTopic('ledger') };
  let sim: SmartsuppSimulator;
  let bridge: BridgeProcess;
  let reader: KafkaReader;

  beforeAll(async () => {
    ({ sim, reader, bridge } = await startRow('faults-smartsupp', topics, { maxVisitors: MAX }, {
      api: { rateLimit: { perSecond: 10_000, burst: 10_000 } },
      commands: { maxPendingPerChannel: 2 * STARTS },
    }));
  }, 90_000);

  afterAll(() => stopRow({ sim, reader, bridge }));

  const results = (): CommandResult[] => reader.ofType('chatbridge.command.result').map((r: ReadRecord) => JSON.parse(r.value ?? '{}') as CommandResult);
  const post = (body: Record<string, unknown>) => bridge.request('POST', `/v1/channels/${CHANNEL}/commands`, body);

  it(`${STARTS} conversation.start with maxVisitors ${MAX}: ${MAX} sockets, the rest failed too_many_visitors, the next message delivered`, async () => {
    const rssBefore = rssMiB(bridge.pid);
    const ids = Array.from({ length: STARTS }, () => randomUUID());
    const t0 = performance.now();
    const healthz: number[] = [];
    // 50 callers at a time, /healthz timed between the waves.
    for (let i = 0; i < STARTS; i += 50) {
      const answers = await Promise.all(ids.slice(i, i + 50).map((commandId) => post({ commandId, type: 'conversation.start' })));
      for (const a of answers) expect(a.status).toBe(202);
      healthz.push(await expectHealthy(bridge));
    }
    const acceptMs = Math.round(performance.now() - t0);

    // Every command ends, sent or failed with its reason: nothing silently dropped.
    const mine = new Set<string>(ids);
    await until(`${STARTS} command results`, () => results().filter((r) => mine.has(r.command.commandId)).length >= STARTS, 120_000);
    const ended = results().filter((r) => mine.has(r.command.commandId));
    const endMs = Math.round(performance.now() - t0);
    const sent = ended.filter((r) => r.command.status === 'sent');
    const failed = ended.filter((r) => r.command.status === 'failed');
    expect(new Set(ended.map((r) => r.command.commandId)).size).toBe(STARTS);
    expect(sent).toHaveLength(MAX);
    expect(failed).toHaveLength(STARTS - MAX);
    for (const f of failed) expect(f.command).toMatchObject({ errorCode: 'too_many_visitors', error: expect.stringContaining(`smartsupp.maxVisitors ${MAX}`) });
    healthz.push(await expectHealthy(bridge));
    expect(sim.liveSockets()).toBe(MAX);
    expect(sim.connects.filter((c) => c.accepted)).toHaveLength(MAX);
    // The caller sees the same reason on the command itself.
    const one = await bridge.request('GET', `/v1/commands/${failed[0].command.commandId}`);
    expect(one.body).toMatchObject({ status: 'failed', error: { code: 'too_many_visitors', mayHaveActed: false } });

    // A normal message to an existing visitor is still sent and reaches the upstream.
    const visitor = sent[0].conversation?.id as string;
    const t1 = performance.now();
    const commandId = randomUUID();
    expect((await post({ commandId, type: 'message.send', conversationId: visitor, text: 'still here' })).status).toBe(202);
    await until('message at the upstream', () => sim.emitsOf('chat.message', visitor).some((e) => (e.args[0] as { content?: { text?: string } }).content?.text === 'still here'), 20_000);
    await until('message.send sent', () => results().some((r) => r.command.commandId === commandId && r.command.status === 'sent'), 20_000);
    const nextMs = Math.round(performance.now() - t1);

    healthz.push(await expectHealthy(bridge));
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('smartsupp/1000-conversation-start', {
      starts: STARTS, maxVisitors: MAX, sockets: sim.liveSockets(), sent: sent.length, failedTooMany: failed.length, acceptMs, allEndedMs: endMs,
      healthzMaxMs: Math.round(Math.max(...healthz)), nextMessageMs: nextMs, rssBeforeMiB: rssBefore, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB,
    });
  }, 180_000);
});

/**
 * The channel's state file cannot be written (its temp path is taken by a directory, as a full or broken volume would
 * refuse it): every failed write is logged, the process stays up, visitors still start and their messages still go
 * out; once the path is free, the next write holds every visitor, those started meanwhile included.
 */
describe('fault rows: smartsupp state file unwritable', () => {
  const topics = { events: uniqueTopic('events'), commands: uniqueTopic('commands'), deadLetter: uniqueTopic('dlq'), state: uniqueTopic('state'), commandLedger: uniqueTopic('ledger') };
  let sim: SmartsuppSimulator;
  let bridge: BridgeProcess;
  let reader: KafkaReader;

  beforeAll(async () => {
    ({ sim, reader, bridge } = await startRow('faults-smartsupp-state', topics, { maxVisitors: 10 }));
  }, 90_000);

  afterAll(() => stopRow({ sim, reader, bridge }));

  const results = (): CommandResult[] => reader.ofType('chatbridge.command.result').map((r: ReadRecord) => JSON.parse(r.value ?? '{}') as CommandResult);
  /** Starts a visitor; resolves with its conversation id once the start is `sent`. */
  async function startVisitor(): Promise<string> {
    const commandId = randomUUID();
    expect((await bridge.request('POST', `/v1/channels/${CHANNEL}/commands`, { commandId, type: 'conversation.start' })).status).toBe(202);
    const result = await until('conversation.start sent', () => results().find((r) => r.command.commandId === commandId && r.command.status === 'sent'), 20_000);
    return result.conversation?.id as string;
  }
  const failedWrites = () => bridge.logs.filter((l) => l.msg === 'cannot persist Smartsupp visitors').length;
  /** The visitor ids in the channel's state file (none while it was never written). */
  const savedVisitors = () => {
    const file = join(bridge.dir, 'state', `${CHANNEL}.json`);
    return existsSync(file) ? Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { visitors?: object }).visitors ?? {}) : [];
  };

  it('writes refused: each logged, visitors start and their messages go out; once writable, the next write holds them all', async () => {
    const blocker = join(bridge.dir, 'state', `${CHANNEL}.json.${bridge.pid}.tmp`);
    mkdirSync(blocker);
    const started = [await startVisitor(), await startVisitor(), await startVisitor()];
    await until('the refused writes logged', () => failedWrites() >= 1);
    const healthzMs = await expectHealthy(bridge);

    // The next item flows: a message to a visitor started while nothing could be written reaches the upstream.
    const commandId = randomUUID();
    expect((await bridge.request('POST', `/v1/channels/${CHANNEL}/commands`, { commandId, type: 'message.send', conversationId: started[2], text: 'not persisted, still sent' })).status).toBe(202);
    await until('message at the upstream', () => sim.emitsOf('chat.message', started[2]).some((e) => (e.args[0] as { content?: { text?: string } }).content?.text === 'not persisted, still sent'), 20_000);
    expect(savedVisitors().filter((id) => started.includes(id))).toEqual([]);

    // Writable again: the next write (a new visitor's) holds every visitor, nothing of the refused writes lost.
    rmdirSync(blocker);
    const refusedInAll = failedWrites();
    const after = await startVisitor();
    await until('the state file holds every visitor', () => [...started, after].every((id) => savedVisitors().includes(id)));
    expect(failedWrites()).toBe(refusedInAll);
    report('smartsupp/state-file-unwritable', { visitorsWhileRefused: started.length, refusedWritesLogged: refusedInAll, healthzMs: Math.round(healthzMs), nextMessageSent: true, savedAfter: savedVisitors().length, exit: bridge.exit ? 'exited' : 'up' });
  }, 120_000);
});
