import type { BridgeProcess } from '../helpers/bridge-process';
import { ClusterRun } from '../helpers/cluster-run';
import { FAST_RECONNECT, waitFor } from '../helpers/bridge-harness';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';

const KEY = 'sim-account-key';
const BOT = 'bot-1';
const ROOM = 'room-wm';
const VISITORS = 12;
const TOPICS = { events: 'cv.events', commands: 'cv.commands', deadLetter: 'cv.dlq', state: 'cv.state', commandLedger: 'cv.ledger' };
const CLUSTER = { enabled: true, sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000, rebalanceTimeoutMs: 10_000, handoverOverlapMs: 4000 };

interface ChannelView { id: string; held: boolean; mode: string; conversationsHeld?: number }
interface CommandView { status: string; conversationId?: string }

/**
 * Three bridge processes share a Smartsupp channel (one socket per visitor) and a Watchers channel through the Kafka
 * group (docs/operations.md): the visitors are spread across the replicas by visitor, each held by exactly one, and a command
 * for a visitor runs once on its holder whichever replica took it; a SIGTERM hands visitors over with no message
 * lost. A mode switch sent to a replica that does not hold the channel reaches the holder through the state topic,
 * and the replica taking the channel over later starts it in that mode.
 */
describe('several replicas share spread conversations and channel modes (cluster.enabled)', () => {
  const run = new ClusterRun();
  const { replicas } = run;
  let smartsupp: SmartsuppSimulator;
  let watchers: WatchersSimulator;

  beforeAll(async () => {
    smartsupp = new SmartsuppSimulator();
    watchers = new WatchersSimulator({ bots: [BOT] });
    await Promise.all([smartsupp.start(), watchers.start()]);
    await run.start(TOPICS, (brokers) => ({
      kafka: { brokers, clientId: 'cluster-conv', topics: TOPICS, connectionTimeoutMs: 1000, consumer: { maxWaitTimeMs: 100 } },
      cluster: CLUSTER,
      reconnect: FAST_RECONNECT,
      shutdownGraceMs: 10_000,
      modeSwitch: { overlapMs: 500 },
      channels: [
        { id: 'ss', provider: 'smartsupp', smartsupp: { url: smartsupp.url, key: KEY, ackTimeoutMs: 2000 } },
        {
          id: 'wm', provider: 'watchers', inbound: { token: 'wm-inbound-token' },
          watchers: { url: watchers.url, bearer: watchers.bearerFor(BOT), apiKey: watchers.apiKey, userId: BOT, rooms: [ROOM], ackTimeoutMs: 2000 },
        },
      ],
    }));
  }, 120_000);

  afterAll(async () => {
    await run.stop();
    await Promise.all([smartsupp?.stop(), watchers?.stop()]);
  });

  async function channel(r: BridgeProcess, id: string): Promise<ChannelView> {
    return (await r.request('GET', `/v1/channels/${id}`)).body as ChannelView;
  }

  async function command(r: BridgeProcess, channelId: string, body: Record<string, unknown>): Promise<CommandView> {
    const accepted = await r.request('POST', `/v1/channels/${channelId}/commands`, body);
    expect(accepted.status).toBe(202);
    return waitFor(`command ${String(body.commandId)} sent`, async () => {
      const view = (await r.request('GET', `/v1/commands/${String(body.commandId)}`)).body as CommandView;
      if (view.status === 'failed') throw new Error(`command failed: ${JSON.stringify(view)}`);
      return view.status === 'sent' ? view : undefined;
    }, 30_000);
  }

  /** Each visitor with exactly one live socket, and the replicas' shares adding up to all of them. */
  async function visitorsSettled(live: BridgeProcess[], visitors: string[]): Promise<Map<string, number> | undefined> {
    if (!visitors.every((v) => smartsupp.liveSockets(v) === 1)) return undefined;
    const shares = new Map<string, number>();
    for (const r of live) shares.set(r.name, (await channel(r, 'ss')).conversationsHeld ?? 0);
    return [...shares.values()].reduce((a, b) => a + b, 0) === visitors.length ? shares : undefined;
  }

  /** Message ids of agent replies in Kafka, with the distinct event ids that carried each. */
  function agentMessages(): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const r of run.reader.ofType('chatbridge.message.sent')) {
      const id = (JSON.parse(r.value ?? '{}') as { message?: { id?: string } }).message?.id;
      if (id) out.set(id, (out.get(id) ?? new Set<string>()).add(r.headers.ce_id));
    }
    return out;
  }

  it('spreads visitors by visitor, runs their commands once on their holders, and hands them over on SIGTERM without loss', async () => {
    await waitFor('wm held by exactly one replica', async () => {
      const held = await Promise.all(replicas.map(async (r) => (await channel(r, 'wm')).held));
      return held.filter(Boolean).length === 1 || undefined;
    }, 60_000);

    // New visitors: started by the channel's holder whichever replica took the command, then spread by visitor id.
    const visitors: string[] = [];
    for (let i = 0; i < VISITORS; i++) {
      const started = await command(replicas[i % 3], 'ss', { commandId: `start-${i}`, type: 'conversation.start', name: `Visitor ${i}` });
      visitors.push(started.conversationId as string);
    }
    expect(new Set(visitors).size).toBe(VISITORS);
    const shares = await waitFor('each visitor on exactly one replica', () => visitorsSettled(replicas, visitors), 30_000);
    expect([...shares.values()].filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);

    // A message to each visitor, all through replica a: most are forwarded to the visitor's holder; each runs once.
    for (const [i, v] of visitors.entries()) await command(replicas[0], 'ss', { commandId: `send-${i}`, type: 'message.send', conversationId: v, text: `hello from visitor ${i}` });
    for (const [i, v] of visitors.entries()) {
      expect(smartsupp.emitsOf('chat.message', v).map((e) => (e.args[0] as { content?: { text?: string } }).content?.text)).toEqual([`hello from visitor ${i}`]);
    }
    const senders = new Set(replicas.filter((r) => r.logs.some((l) => l.msg === 'command sent' && String(l.commandId).startsWith('send-'))).map((r) => r.name));
    expect(senders.size).toBeGreaterThanOrEqual(2);

    // Agent replies to every visitor while the replica with the most visitors is stopped (SIGTERM).
    const [victimName] = [...shares].sort((x, y) => y[1] - x[1])[0];
    const victim = replicas.find((r) => r.name === victimName) as BridgeProcess;
    const rest = replicas.filter((r) => r !== victim);
    const replies: string[] = [];
    let n = 0;
    const pump = setInterval(() => {
      for (const v of visitors) {
        replies.push(smartsupp.agentSays(v, `reply ${n}`).id);
      }
      n++;
    }, 100);
    await new Promise((r) => setTimeout(r, 500));
    const exit = await victim.signal('SIGTERM');
    expect(exit.code).toBe(0);
    const after = await waitFor('the visitors held by the other two replicas', () => visitorsSettled(rest, visitors), 30_000);
    expect([...after.values()].reduce((a, b) => a + b, 0)).toBe(VISITORS);
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(pump);

    // Smartsupp keeps the chat, so even a reply sent while a visitor had no socket reaches Kafka; one event id each.
    await waitFor('every agent reply in Kafka', () => {
      const now = agentMessages();
      return replies.every((id) => now.has(id)) || undefined;
    }, 30_000, 250).catch(() => undefined);
    const inKafka = agentMessages();
    expect(replies.filter((id) => !inKafka.has(id))).toEqual([]);
    expect([...inKafka].filter(([, ids]) => ids.size !== 1)).toEqual([]);

    // A message after the handover, through whichever replica: still exactly one send.
    await command(rest[0], 'ss', { commandId: 'send-after', type: 'message.send', conversationId: visitors[0], text: 'after the handover' });
    expect(smartsupp.emitsOf('chat.message', visitors[0])).toHaveLength(2);
  }, 180_000);

  it('applies a mode switch sent to any replica on the holder, and a new holder starts the channel in that mode', async () => {
    const live = replicas.filter((r) => !r.exit);
    const holderOf = async (): Promise<BridgeProcess | undefined> => {
      const held = [];
      for (const r of live) if ((await channel(r, 'wm')).held) held.push(r);
      return held.length === 1 ? held[0] : undefined;
    };
    const holder = await waitFor('wm held by one replica', holderOf, 30_000);
    const other = live.find((r) => r !== holder) as BridgeProcess;
    expect(watchers.listeners(ROOM)).toBe(1);

    const res = await other.request('PUT', '/v1/channels/wm/mode', { mode: 'webhook' });
    expect(res).toMatchObject({ status: 202, body: { id: 'wm', mode: 'webhook', previousMode: 'socket', changed: true, socket: 'another_replica' } });
    await waitFor('the holder in webhook mode', async () => (await channel(holder, 'wm')).mode === 'webhook' || undefined, 15_000);
    // No inbound post comes, so the holder closes the socket after modeSwitch.overlapMs.
    await waitFor('the socket closed by the holder', () => watchers.listeners(ROOM) === 0 || undefined, 15_000);
    expect(holder.logs.some((l) => l.msg === 'channel mode switched at another replica; applying it here (this replica holds the channel)')).toBe(true);

    // The holder stops: the replica taking wm over starts it in webhook mode (no socket), not the config's socket mode.
    const exit = await holder.signal('SIGTERM');
    expect(exit.code).toBe(0);
    await waitFor('wm held by the last replica', async () => (await channel(other, 'wm')).held || undefined, 30_000);
    expect(await channel(other, 'wm')).toMatchObject({ held: true, mode: 'webhook' });
    await new Promise((r) => setTimeout(r, 1500));
    expect(watchers.listeners(ROOM)).toBe(0);

    // And back: at the holder itself this time, the usual 200 once connected.
    const back = await other.request('PUT', '/v1/channels/wm/mode', { mode: 'socket' });
    expect(back).toMatchObject({ status: 200, body: { mode: 'socket', socket: 'connected' } });
    expect(watchers.listeners(ROOM)).toBe(1);
  }, 120_000);
});
