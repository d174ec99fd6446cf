import pino from 'pino';
import { CommandError } from '../../src/common/errors';
import type { UpstreamFrame } from '../../src/connectors/connector.interface';
import { SmartsuppConnector } from '../../src/connectors/smartsupp/smartsupp.connector';
import { SmartsuppOptions } from '../../src/connectors/smartsupp/smartsupp.options';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { waitFor } from '../helpers/bridge-harness';
import { MemoryRegistry } from '../helpers/memory-registry';

const KEY = 'sim-account-key';
const BACKOFF = { initialDelayMs: 50, maxDelayMs: 300, multiplier: 2 };
const LONG = 600_000;

type Visitors = Record<string, { activeAt?: string; chatId?: string }>;

/**
 * The bounds of a Smartsupp channel's visitors, against the real simulator: at most `maxVisitors` (a start beyond is
 * refused, non-retriable, and opens no socket), and expiry of visitors whose chat closed or that stayed idle (socket
 * closed, record removed from the state or the shared registry, a later command refused as expired, never resumed).
 */
describe('Smartsupp visitors bounded: maximum, idle and closed-chat expiry', () => {
  let sim: SmartsuppSimulator;
  const connectors: SmartsuppConnector[] = [];
  let frames: UpstreamFrame[];
  let state: Map<string, unknown>;
  let n = 0;

  const connector = (opts: Partial<SmartsuppOptions>, extra: { placement?: ConstructorParameters<typeof SmartsuppConnector>[0]['placement'] } = {}): SmartsuppConnector => {
    const options = Object.assign(new SmartsuppOptions(), { url: sim.url, key: KEY, connectTimeoutMs: 1500, ackTimeoutMs: 1000, visitorIdleMs: LONG, closedVisitorGraceMs: LONG }, opts);
    const c = new SmartsuppConnector({
      channelId: 'site', options, logger: pino({ level: 'silent' }), mode: () => 'socket',
      hooks: { frame: (f) => frames.push(f), lost: () => undefined, guard: (_where, fn) => fn, fault: (_where, err) => { throw err; } },
      store: { get: <T>(k: string) => state.get(k) as T | undefined, set: (k, v) => void state.set(k, v), setJson: (k, json) => void state.set(k, JSON.parse(json)) },
      policy: { backoff: BACKOFF, authBackoff: BACKOFF, stableAfterMs: 1000 },
      ...extra,
    });
    connectors.push(c);
    return c;
  };
  const start = async (c: SmartsuppConnector): Promise<string> => (await c.execute({ commandId: `s-${++n}`, type: 'conversation.start' })).conversationId as string;
  const send = (c: SmartsuppConnector, v: string, text = 'hello') => c.execute({ commandId: `m-${++n}`, type: 'message.send', conversationId: v, text });
  const refusal = async (p: Promise<unknown>): Promise<CommandError> => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    return err as CommandError;
  };
  const persisted = (): Visitors => (state.get('visitors') ?? {}) as Visitors;
  const connectsOf = (v: string) => sim.connects.filter((c) => c.requestedId === v).length;

  beforeEach(async () => {
    sim = new SmartsuppSimulator();
    await sim.start();
    frames = [];
    state = new Map();
  });

  afterEach(async () => {
    await Promise.all(connectors.splice(0).map((c) => c.close()));
    await sim.stop();
  });

  it('refuses conversation.start beyond maxVisitors (non-retriable, no socket opened), also when the starts race', async () => {
    const c = connector({ maxVisitors: 3 });
    await c.connect();
    // Five concurrent starts for three places: the starts in progress count, so exactly three visitors exist.
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => start(c)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as CommandError);
    expect(ok).toHaveLength(3);
    expect(refused).toHaveLength(2);
    for (const e of refused) {
      expect(e).toBeInstanceOf(CommandError);
      expect(e).toMatchObject({ code: 'too_many_visitors', retriable: false, sent: false });
      expect(e.message).toContain('smartsupp.maxVisitors 3');
    }
    await waitFor('three sockets', () => sim.liveSockets() === 3);
    expect(sim.connects).toHaveLength(3);
    await waitFor('three records', () => Object.keys(persisted()).length === 3);
    expect(c.heldConversations()).toBe(3);

    // Still refused later; the visitors that exist keep working.
    expect(await refusal(start(c))).toMatchObject({ code: 'too_many_visitors' });
    const [v] = ok.map((r) => (r as PromiseFulfilledResult<string>).value);
    await expect(send(c, v)).resolves.toMatchObject({ conversationId: v });
    expect(sim.connects).toHaveLength(3);
  }, 30_000);

  it('expires a visitor idle past visitorIdleMs (account-wide events do not count): socket closed, record removed, commands refused', async () => {
    const c = connector({ visitorIdleMs: 600 });
    await c.connect();
    const idle = await start(c);
    const busy = await start(c);
    await waitFor('both recorded', () => Object.keys(persisted()).length === 2);
    expect(Object.keys(persisted()).sort()).toEqual([idle, busy].sort());

    // `busy` gets frames and commands; the account status reaches both sockets and keeps neither alive.
    const stop = Date.now() + 1500;
    while (Date.now() < stop) {
      sim.agentTyping(busy, true);
      sim.setAccountStatus(Date.now() % 2 ? 'online' : 'offline');
      await c.execute({ commandId: `t-${++n}`, type: 'typing', conversationId: busy, typing: true });
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor('the idle socket closed', () => sim.liveSockets(idle) === 0, 3000);
    expect(sim.liveSockets(busy)).toBe(1);
    await waitFor('its record removed', () => !(idle in persisted()));
    expect(Object.keys(persisted())).toEqual([busy]);
    expect(c.heldConversations()).toBe(1);

    const err = await refusal(send(c, idle));
    expect(err).toMatchObject({ code: 'unknown_conversation', retriable: false, sent: false });
    expect(err.message).toContain('idle longer than smartsupp.visitorIdleMs');
    // Not resumed: no new visitor.connect for it, nothing sent upstream.
    await new Promise((r) => setTimeout(r, 300));
    expect(connectsOf(idle)).toBe(0);
    expect(sim.emitsOf('chat.message', idle)).toHaveLength(0);
  }, 30_000);

  it('expires a visitor whose chat closed after closedVisitorGraceMs; one whose chat reopens within the grace stays', async () => {
    const c = connector({ closedVisitorGraceMs: 400 });
    await c.connect();
    const closed = await start(c);
    const reopened = await start(c);
    await send(c, closed, 'order question');
    await send(c, reopened, 'another question');
    await waitFor('both live', () => sim.liveSockets() === 2);

    sim.closeChat(closed);
    sim.closeChat(reopened);
    await waitFor('both closes forwarded', () => frames.filter((f) => f.event === 'chat.closed').length === 2);
    // Within the grace the closed chat's visitor still works (a rating, a last word).
    expect(sim.liveSockets(closed)).toBe(1);
    sim.agentSays(reopened, 'Sorry, one more thing');

    await waitFor('the closed visitor\'s socket closed', () => sim.liveSockets(closed) === 0, 3000);
    await waitFor('its record removed', () => !(closed in persisted()));
    const err = await refusal(send(c, closed));
    expect(err).toMatchObject({ code: 'unknown_conversation', retriable: false, sent: false });
    expect(err.message).toContain('its chat was closed');

    await new Promise((r) => setTimeout(r, 600));
    expect(sim.liveSockets(reopened)).toBe(1);
    expect(persisted()).toHaveProperty(reopened);
    await expect(send(c, reopened)).resolves.toMatchObject({ conversationId: reopened });
    expect(c.heldConversations()).toBe(1);
  }, 30_000);

  it('a restart does not resume visitors already idle past visitorIdleMs (idle time is kept in the state)', async () => {
    const first = connector({});
    await first.connect();
    const old = await start(first);
    const recent = await start(first);
    await first.close();
    expect(persisted()[old].activeAt).toBeDefined();
    const visitors = persisted();
    state.set('visitors', { ...visitors, [old]: { ...visitors[old], activeAt: new Date(Date.now() - 2 * 3_600_000).toISOString() } });
    const before = sim.connects.length;

    const second = connector({ visitorIdleMs: 3_600_000 });
    await second.connect();
    await waitFor('the recent visitor resumed', () => sim.liveSockets(recent) === 1);
    expect(sim.connects.slice(before).map((x) => x.requestedId)).toEqual([recent]);
    await waitFor('the old record removed', () => !(old in persisted()));
    expect(Object.keys(persisted())).toEqual([recent]);
    expect(await refusal(send(second, old))).toMatchObject({ code: 'unknown_conversation', retriable: false });
  }, 30_000);

  it('cluster: the holder removes an expired visitor from the shared registry; every replica refuses it and none brings it back', async () => {
    const registry = new MemoryRegistry();
    const owner = new Map<string, 'a' | 'b'>();
    const placement = (name: 'a' | 'b') => ({ owns: (id: string) => (owner.get(id) ?? 'a') === name, registry: registry.view(), handoverOverlapMs: 200 });
    const a = connector({ closedVisitorGraceMs: 200, maxVisitors: 2 }, { placement: placement('a') });
    const b = connector({ closedVisitorGraceMs: 200, maxVisitors: 2 }, { placement: placement('b') });
    await Promise.all([a.connect(), b.connect()]);

    const v = await start(a);
    const w = await start(a);
    owner.set(v, 'b');
    a.placementChanged();
    await waitFor('b holds v alone', () => b.heldConversations() === 1 && a.heldConversations() === 1 && sim.liveSockets(v) === 1, 5000);
    // The channel's maximum counts every replica's visitors.
    expect(await refusal(start(a))).toMatchObject({ code: 'too_many_visitors', retriable: false });

    // The simulator counts b's socket before b's visitor has finished its handshake: until then a send is refused
    // `not_connected` with nothing sent, and is tried again.
    await waitFor('b sends to v', () => send(b, v, 'question').then(() => true, (e: unknown) => {
      if (e instanceof CommandError && e.code === 'not_connected' && e.sent === false) return false;
      throw e;
    }), 5000);
    sim.closeChat(v);
    await waitFor('v expired at its holder', () => sim.liveSockets(v) === 0 && !registry.values.has(v), 3000);
    expect(registry.values.has(w)).toBe(true);
    for (const replica of [a, b]) {
      const err = await waitFor('the removal reached the replica', () => refusal(send(replica, v)).then((e) => (e.retriable ? undefined : e)), 3000);
      expect(err).toMatchObject({ code: 'unknown_conversation', retriable: false, sent: false });
    }
    // A late write of its old record (a previous holder's read mark) is removed again, not resumed.
    registry.view().save(v, { since: new Date().toISOString() });
    await waitFor('removed again', () => !registry.values.has(v), 3000);
    await new Promise((r) => setTimeout(r, 300));
    expect(sim.liveSockets(v)).toBe(0);
    expect(connectsOf(v)).toBe(1); // only b's takeover, before the close
    // Its place is free again.
    await expect(start(a)).resolves.toEqual(expect.any(String));
  }, 30_000);
});
