import pino from 'pino';
import type { UpstreamFrame } from '../../src/connectors/connector.interface';
import { SmartsuppConnector } from '../../src/connectors/smartsupp/smartsupp.connector';
import { SmartsuppOptions } from '../../src/connectors/smartsupp/smartsupp.options';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { waitFor } from '../helpers/bridge-harness';
import { MemoryRegistry } from '../helpers/memory-registry';

const KEY = 'sim-account-key';
const OVERLAP_MS = 600;
const BACKOFF = { initialDelayMs: 50, maxDelayMs: 300, multiplier: 2 };

/**
 * One Smartsupp channel on two "replicas" (two connectors sharing a registry), against the real simulator: visitors
 * placed by an ownership function that the test moves. Each visitor is held by the replica that owns it; a lost
 * visitor keeps its socket for the overlap (make before break) and is closed after; a visitor
 * owned again before the overlap ends keeps its socket; the read mark travels with the visitor.
 */
describe('Smartsupp visitors placed across replicas (cluster)', () => {
  let sim: SmartsuppSimulator;
  const connectors: SmartsuppConnector[] = [];
  let registry: MemoryRegistry;
  let owner: Map<string, 'a' | 'b'>;
  const frames: Record<'a' | 'b', UpstreamFrame[]> = { a: [], b: [] };

  const replica = (name: 'a' | 'b'): SmartsuppConnector => {
    const options = Object.assign(new SmartsuppOptions(), { url: sim.url, key: KEY, connectTimeoutMs: 1500, ackTimeoutMs: 1000 });
    const state = new Map<string, unknown>();
    const c = new SmartsuppConnector({
      channelId: 'site', options, logger: pino({ level: 'silent' }), mode: () => 'socket',
      hooks: { frame: (f) => frames[name].push(f), lost: () => undefined, guard: (_where, fn) => fn, fault: (_where, err) => { throw err; } },
      store: { get: <T>(k: string) => state.get(k) as T | undefined, set: (k, v) => void state.set(k, v), setJson: (k, json) => void state.set(k, JSON.parse(json)) },
      policy: { backoff: BACKOFF, authBackoff: BACKOFF, stableAfterMs: 1000 },
      placement: { owns: (id) => (owner.get(id) ?? 'a') === name, registry: registry.view(), handoverOverlapMs: OVERLAP_MS },
    });
    connectors.push(c);
    return c;
  };
  const messages = (name: 'a' | 'b', visitor: string): string[] => frames[name]
    .filter((f) => f.event === 'chat.message_received' && (f.payload as { visitorId: string }).visitorId === visitor)
    .map((f) => ((f.payload as { data: { message: { id: string } } }).data.message.id));

  beforeEach(async () => {
    sim = new SmartsuppSimulator();
    await sim.start();
    registry = new MemoryRegistry();
    owner = new Map();
    frames.a = [];
    frames.b = [];
  });

  afterEach(async () => {
    await Promise.all(connectors.splice(0).map((c) => c.close()));
    await sim.stop();
  });

  it('hands a visitor created at one replica to its owner, and moves visitors on a rebalance make-before-break', async () => {
    const a = replica('a');
    const b = replica('b');
    await Promise.all([a.connect(), b.connect()]);

    // conversation.start runs at the channel's holder (a); the new visitor belongs to b (its id decides: here, the test).
    const started = await a.execute({ commandId: 'c-1', type: 'conversation.start', name: 'Jana' });
    const v = started.conversationId as string;
    owner.set(v, 'b');
    a.placementChanged();
    await waitFor('b holds the visitor', () => b.heldConversations() === 1 && sim.liveSockets(v) === 2, 5000);
    expect(a.heldConversations()).toBe(1); // the overlap: both hold it for a moment
    await waitFor('a lets go after the overlap', () => a.heldConversations() === 0 && sim.liveSockets(v) === 1, 5000);
    expect(registry.values.has(v)).toBe(true);

    // A reply while b holds it: published by b; then a rebalance gives it back to a.
    const first = sim.agentSays(v, 'first');
    await waitFor('b got the reply', () => messages('b', v).includes(first.id), 5000);
    // b writes its read mark (after its short persist delay); the next holder starts from it.
    await waitFor('b\'s read mark in the registry', () => (registry.values.get(v) as { since?: string } | undefined)?.since === first.createdAt, 5000);
    owner.set(v, 'a');
    a.placementChanged();
    b.placementChanged();
    await waitFor('a connects while b still holds it', () => a.heldConversations() === 1 && sim.liveSockets(v) === 2, 5000);
    await waitFor('b closes after the overlap', () => b.heldConversations() === 0 && sim.liveSockets(v) === 1, 5000);
    const second = sim.agentSays(v, 'second');
    await waitFor('a got the next reply', () => messages('a', v).includes(second.id), 5000);
    // The read mark went with the visitor: a's snapshot frame carries it, so the mapper does not republish what b did.
    const snapshot = frames.a.filter((f) => f.event === 'initialized' && (f.payload as { visitorId: string }).visitorId === v).at(-1);
    expect(snapshot?.payload).toMatchObject({ since: first.createdAt, seen: [first.id] });
  }, 30_000);

  it('a visitor owned again before the overlap ends keeps its socket; one that stays away closes after the overlap', async () => {
    const a = replica('a');
    await a.connect();
    const v = (await a.execute({ commandId: 'c-2', type: 'conversation.start', name: 'Petr' })).conversationId as string;
    await waitFor('live', () => sim.liveSockets(v) === 1, 5000);
    const connectsBefore = sim.connects.length;

    owner.set(v, 'b');
    a.placementChanged();
    await new Promise((r) => setTimeout(r, OVERLAP_MS / 3));
    owner.set(v, 'a');
    a.placementChanged();
    await new Promise((r) => setTimeout(r, OVERLAP_MS * 2));
    expect(a.heldConversations()).toBe(1);
    expect(sim.liveSockets(v)).toBe(1);
    expect(sim.connects.length).toBe(connectsBefore); // never reconnected

    owner.set(v, 'b');
    a.placementChanged();
    await new Promise((r) => setTimeout(r, OVERLAP_MS / 2));
    expect(sim.liveSockets(v)).toBe(1); // make before break: still held within the overlap
    await waitFor('closed after the overlap', () => sim.liveSockets(v) === 0, OVERLAP_MS * 2);
    expect(a.heldConversations()).toBe(0);
  }, 30_000);
});
