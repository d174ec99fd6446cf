import { Kafka, logLevel } from 'kafkajs';
import type { BridgeProcess } from '../helpers/bridge-process';
import { ClusterRun } from '../helpers/cluster-run';
import { FAST_RECONNECT, waitFor } from '../helpers/bridge-harness';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';

const BOT = 'bot-1';
const CHANNELS = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
const room = (id: string): string => `room-${id}`;
const TOPICS = { events: 'cl.events', commands: 'cl.commands', deadLetter: 'cl.dlq', state: 'cl.channels', commandLedger: 'cl.ledger' };
/**
 * The overlap covers the group's rebalance after a replica leaves. On the test broker that takes rounds of ~5 s:
 * when a SyncGroup crosses the end of a sync it answers INVALID_REQUEST (real Kafka answers the member normally or
 * REBALANCE_IN_PROGRESS), kafkajs restarts the consumer and the group rebalances once more, sometimes again after
 * that. Takeovers 10 s and 22 s after the SIGTERM were seen here (against overlaps of 8 and 13 s then); 25 s covers
 * four rounds. The SIGTERM phase lasts the whole overlap.
 */
const CLUSTER = { enabled: true, sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000, rebalanceTimeoutMs: 10_000, handoverOverlapMs: 25_000 };
const SHUTDOWN_GRACE_MS = 30_000;
/**
 * The handover bound docs/operations.md documents for a crashed replica (Handover): sessionTimeoutMs + the rebalance + connecting.
 * The test broker's rebalance alone takes ~5 s (it waits for members to rejoin); real Kafka takes about a heartbeat.
 */
const CRASH_HANDOVER_MS = CLUSTER.sessionTimeoutMs + CLUSTER.rebalanceTimeoutMs + 5000;

interface Sent { room: string; text: string; at: number; listeners: number }

/**
 * Three bridge processes share six Watchers channels through the command consumer group (docs/operations.md): each channel is
 * held by exactly one replica; commands sent to any replica run once, on the holder; a SIGTERM hands channels over
 * make-before-break with nothing lost; a SIGKILL hands them over after the session timeout.
 */
describe('several replicas share the channels (cluster.enabled)', () => {
  const run = new ClusterRun();
  const { replicas } = run;
  let sim: WatchersSimulator;

  beforeAll(async () => {
    sim = new WatchersSimulator({ bots: [BOT] });
    await sim.start();
    await run.start(TOPICS, (brokers) => ({
      kafka: { brokers, clientId: 'cluster-test', topics: TOPICS, connectionTimeoutMs: 1000, consumer: { maxWaitTimeMs: 100 } },
      cluster: CLUSTER,
      reconnect: FAST_RECONNECT,
      shutdownGraceMs: SHUTDOWN_GRACE_MS,
      channels: CHANNELS.map((id) => ({
        id, provider: 'watchers', watchers: { url: sim.url, bearer: sim.bearerFor(BOT), apiKey: sim.apiKey, userId: BOT, rooms: [room(id)], ackTimeoutMs: 2000 },
      })),
    }));
  }, 120_000);

  afterAll(async () => {
    await run.stop();
    await sim?.stop();
  });

  /** Which replica holds which channel, by each live replica's own GET /v1/channels. */
  async function holders(live: BridgeProcess[]): Promise<Map<string, string[]>> {
    const held = new Map<string, string[]>(CHANNELS.map((id) => [id, []]));
    for (const r of live) {
      const res = await r.request('GET', '/v1/channels');
      for (const c of (res.body as { channels: Array<{ id: string; held: boolean }> }).channels) if (c.held) held.get(c.id)?.push(r.name);
    }
    return held;
  }

  /** Every channel held by exactly one of `live`, and every room with exactly one upstream listener. */
  async function settled(live: BridgeProcess[]): Promise<Map<string, string> | undefined> {
    const held = await holders(live);
    if (![...held.values()].every((h) => h.length === 1)) return undefined;
    if (!CHANNELS.every((id) => sim.listeners(room(id)) === 1)) return undefined;
    return new Map([...held].map(([id, h]) => [id, h[0]]));
  }

  function pump(sent: Sent[]): { stop: () => void } {
    let i = 0;
    const timer = setInterval(() => {
      for (const id of CHANNELS) {
        const text = `m-${id}-${i}`;
        sent.push({ room: room(id), text, at: Date.now(), listeners: sim.listeners(room(id)) });
        sim.userSays(room(id), 'user-1', text);
      }
      i++;
    }, 40);
    return { stop: () => clearInterval(timer) };
  }

  /** Texts of upstream messages in Kafka, and how many distinct event ids carried each. */
  function published(): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const r of run.reader.ofType('chatbridge.message.received')) {
      const text = (JSON.parse(r.value ?? '{}') as { message?: { text?: string } }).message?.text;
      if (!text) continue;
      const ids = out.get(text) ?? new Set<string>();
      out.set(text, ids.add(r.headers.ce_id));
    }
    return out;
  }

  it('holds each channel on exactly one replica, runs a command sent to any replica once on the holder, hands over on SIGTERM without loss and on SIGKILL within the bound', async () => {
    const [a, b, c] = replicas;
    const owners = await waitFor('each channel held by exactly one replica', () => settled(replicas), 60_000);
    expect(new Set(owners.values()).size).toBeGreaterThanOrEqual(2); // spread over the group, not all on one

    // A command at a replica that does not hold the channel: forwarded through the commands topic, executed once.
    const target = 'w1';
    const holder = replicas.find((r) => r.name === owners.get(target)) as BridgeProcess;
    const others = replicas.filter((r) => r !== holder);
    const cmd = { commandId: 'cluster-cmd-1', type: 'message.send', conversationId: room(target), text: 'sent through another replica' };
    const first = await others[0].request('POST', `/v1/channels/${target}/commands`, cmd);
    expect(first).toMatchObject({ status: 202, body: { commandId: cmd.commandId, channelId: target, status: 'accepted', duplicate: false } });
    // A mode switch at a replica that does not hold the channel is validated there like at the holder: refused (no
    // inbound auth configured), it changes nothing anywhere (cluster-conversations.e2e covers an accepted one).
    const refused = await others[0].request('PUT', `/v1/channels/${target}/mode`, { mode: 'webhook' });
    expect(refused).toMatchObject({ status: 409, body: { message: expect.stringContaining('no inbound auth') } });
    expect((await holder.request('GET', `/v1/channels/${target}`)).body).toMatchObject({ mode: 'socket', held: true });

    // An immediate repeat at a third replica, before its ledger follower has the first record: accepted too, and
    // still executed once, because only the holder executes and its ledger knows the id by then.
    const again = await others[1].request('POST', `/v1/channels/${target}/commands`, cmd);
    expect(again).toMatchObject({ status: 202, body: { commandId: cmd.commandId } });
    const sends = (text: string): number => sim.emitsOf('external/send').filter((e) => (e.payload as { text?: string }).text === text).length;
    await waitFor('the command sent upstream', () => sends(cmd.text) > 0, 20_000);
    for (const r of others) {
      await waitFor(`the command sent, seen from ${r.name}`, async () => {
        const res = await r.request('GET', `/v1/commands/${cmd.commandId}`);
        return (res.body as { status?: string }).status === 'sent';
      }, 20_000);
    }
    const late = await others[1].request('POST', `/v1/channels/${target}/commands`, cmd);
    expect(late).toMatchObject({ status: 202, body: { commandId: cmd.commandId, status: 'sent', duplicate: true } });
    await new Promise((r) => setTimeout(r, 500));
    expect(sends(cmd.text)).toBe(1);
    expect(holder.logs.some((l) => l.msg === 'command sent' && l.commandId === cmd.commandId)).toBe(true);
    expect(others.every((r) => !r.logs.some((l) => l.msg === 'command sent' && l.commandId === cmd.commandId))).toBe(true);

    // A command record produced onto another partition than its channel's (another client's partitioner): re-routed.
    const kafka = new Kafka({ brokers: run.broker.bootstrap, clientId: 'foreign-producer', logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const rerouted = { commandId: 'cluster-cmd-2', type: 'message.send', conversationId: room('w2'), text: 'from a foreign partitioner', channelId: 'w2' };
    const { partitionOf } = await import('../../src/kafka/partitioner');
    await producer.send({ topic: TOPICS.commands, messages: [{ key: 'w2', value: JSON.stringify(rerouted), partition: (partitionOf('w2', 6) + 1) % 6 }] });
    await producer.disconnect();
    await waitFor('the re-routed command sent upstream', () => sim.emitsOf('external/send').some((e) => (e.payload as { text?: string }).text === rerouted.text), 20_000);

    // SIGTERM during a steady stream: the channels move make-before-break, nothing is lost.
    const sent: Sent[] = [];
    const stream = pump(sent);
    await new Promise((r) => setTimeout(r, 1000));
    const termAt = Date.now();
    const exit = await b.signal('SIGTERM');
    const exitAt = Date.now();
    expect(exit.code).toBe(0);
    expect(Date.now() - termAt).toBeLessThan(SHUTDOWN_GRACE_MS + 5000); // shutdownGraceMs + the hard-stop margin
    const afterTerm = await waitFor('b\'s channels held by a and c', () => settled([a, c]), 30_000);
    expect([...afterTerm.values()].every((h) => h === 'a' || h === 'c')).toBe(true);
    // The sticky assignment: only b's channels moved; a and c kept theirs (round robin would have reshuffled them).
    for (const [id, h] of owners) if (h !== 'b') expect([id, afterTerm.get(id)]).toEqual([id, h]);
    expect(a.logs.some((l) => l.msg === 'group assignment: holding the channels of these partitions of the commands topic' && l.protocol === 'ChatbridgeSticky')).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    const termPhase = sent.filter((s) => s.at >= termAt);
    const zeros = termPhase.filter((s) => s.listeners === 0);
    if (zeros.length) console.log('diagnostics: no listener from', zeros[0].at - termAt, 'to', zeros.at(-1)!.at - termAt, 'exit after', exitAt - termAt, 'term', new Date(termAt).toISOString(), zeros.map((z) => z.room).join(','), '\nB', JSON.stringify(b.logs.slice(-25).map((l) => [l.time, l.msg, l.channel ?? l.channels])), '\nA', JSON.stringify(a.logs.slice(-15).map((l) => [l.time, l.msg, l.channel ?? l.channels])), '\nC', JSON.stringify(c.logs.slice(-15).map((l) => [l.time, l.msg, l.channel ?? l.channels])));
    expect(termPhase.filter((s) => s.listeners === 0)).toEqual([]); // never a moment without a connected replica

    // SIGKILL: the group notices after the session timeout; its channels move to a.
    const cRooms = new Set([...afterTerm].filter(([, h]) => h === 'c').map(([id]) => room(id)));
    const killAt = Date.now();
    await c.signal('SIGKILL');
    // The simulator still counts c's sockets as listeners until it has read their close: messages emitted to a room in
    // that moment went to a dead process only (a CI run saw 140 ms on a loaded machine). When it has, c's rooms are empty.
    await sim.waitUntil('the killed replica\'s sockets closed', () => [...cRooms].every((r) => sim.listeners(r) === 0), 5000);
    const closedAt = Date.now();
    await waitFor('every channel held by a', async () => {
      const s = await settled([a]);
      return s && [...s.values()].every((h) => h === 'a') ? s : undefined;
    }, CRASH_HANDOVER_MS);
    const handoverMs = Date.now() - killAt;
    await new Promise((r) => setTimeout(r, 1000));
    stream.stop();

    // Every message the upstream delivered to a live replica is in Kafka; deduplicated by id, each exactly once.
    // Excluded: messages only the killed process had received in its last instant (SIGKILL: not yet produced), from
    // just before the kill until the simulator saw its sockets close.
    const expected = sent.filter((s) => s.listeners > 0 && !(cRooms.has(s.room) && s.at >= killAt - 500 && s.at <= closedAt));
    await waitFor('every delivered message in Kafka', () => {
      const now = published();
      return expected.every((s) => now.has(s.text)) || undefined;
    }, 30_000, 250).catch(() => undefined);
    const inKafka = published();
    const missing = expected.filter((s) => !inKafka.has(s.text)).map((s) => s.text);
    if (missing.length) console.log('diagnostics: missing', JSON.stringify(expected.filter((s) => missing.includes(s.text)).map((s) => [s.text, s.at - killAt, s.listeners])), 'closed', closedAt - killAt, 'stop', Date.now() - killAt, '\nA', JSON.stringify(a.logs.slice(-20).map((l) => [l.time, l.msg, l.channel ?? l.channels])));
    expect(missing).toEqual([]);
    const twoIds = [...inKafka].filter(([, ids]) => ids.size !== 1).map(([text]) => text);
    expect(twoIds).toEqual([]); // one id per upstream message, whichever replica published it
    const lostUpstream = sent.filter((s) => s.listeners === 0 && s.at >= killAt);
    expect(handoverMs).toBeLessThan(CRASH_HANDOVER_MS);
    // For the record: messages the upstream dropped while no replica was connected after the crash (Watchers keeps no history).
    expect(lostUpstream.length).toBeLessThan(sent.length);
  }, 180_000);
});
