import pino from 'pino';
import { ClusterOwnership, conversationKey, type OwnershipChange } from './ownership';
import { partitionOf } from '../kafka/partitioner';

describe('ClusterOwnership', () => {
  const ids = ['wa-sales', 'support', 'hub', 'site-chat', 'bot-eu', 'bot-us'];
  const COUNT = 3;
  const byPartition = (p: number): string[] => ids.filter((id) => partitionOf(id, COUNT) === p);
  /** The channels this replica holds now, as `owns` answers for each. */
  const owned = (): string[] => ids.filter((id) => own.owns(id));
  let changes: OwnershipChange[];
  let own: ClusterOwnership;
  let reachable = true;

  beforeEach(() => {
    jest.useFakeTimers();
    changes = [];
    reachable = true;
    own = new ClusterOwnership(ids, { quietAfterMs: 9000, rebalanceMs: 30_000, unassignedAfterMs: 10_000 }, (c) => changes.push(c), pino({ level: 'silent' }), () => reachable);
  });
  afterEach(() => {
    own.stop();
    jest.useRealTimers();
  });

  it('holds nothing before the first assignment, then exactly the channels of the assigned partitions', () => {
    expect(ids.some((id) => own.owns(id))).toBe(false);
    own.assign([0, 2], COUNT);
    const mine = [...byPartition(0), ...byPartition(2)];
    expect(owned().sort()).toEqual([...mine].sort());
    expect(changes).toHaveLength(1);
    expect({ ...changes[0], gained: [...changes[0].gained].sort() }).toEqual({ gained: [...mine].sort(), lost: [], reason: 'assigned' });
    for (const id of byPartition(1)) expect(own.owns(id)).toBe(false);
    expect(own.partitionFor('hub')).toBe(partitionOf('hub', COUNT));
  });

  it('reports only the difference after a rebalance', () => {
    own.assign([0, 1], COUNT);
    own.assign([1, 2], COUNT);
    expect(changes[1]).toEqual({ gained: byPartition(2), lost: byPartition(0), reason: 'assigned' });
    own.assign([1, 2], COUNT);
    expect(changes).toHaveLength(2); // same assignment: nothing moves
  });

  it('keeps every channel when the group is silent (Kafka unreachable): they move only when the group assigns them elsewhere', () => {
    own.assign([0, 1, 2], COUNT);
    jest.advanceTimersByTime(8000);
    own.alive();
    // No heartbeat for far longer than the session timeout: nothing is released.
    jest.advanceTimersByTime(120_000);
    expect(owned().sort()).toEqual([...ids].sort());
    expect(changes).toHaveLength(1);
    // Reachable again, the group rebalanced meanwhile and gave partitions 1 and 2 to another replica.
    own.assign([0], COUNT);
    expect(changes.at(-1)).toEqual({ gained: [], lost: [...byPartition(1), ...byPartition(2)].sort((a, b) => ids.indexOf(a) - ids.indexOf(b)), reason: 'assigned' });
    expect(owned()).toEqual(byPartition(0));
  });

  it('a rebalance that never ends in a rejoin releases nothing either; after stop nothing is reported', () => {
    own.assign([0, 1, 2], COUNT);
    own.rebalancing();
    jest.advanceTimersByTime(300_000);
    expect(owned()).toHaveLength(ids.length);
    const n = changes.length;
    own.stop();
    own.assign([0], COUNT);
    own.alive();
    expect(changes).toHaveLength(n);
  });

  it('with no assignment and Kafka unreachable at start, holds every channel until the first assignment, which then applies', () => {
    reachable = false;
    own.start();
    jest.advanceTimersByTime(9_999);
    expect(ids.some((id) => own.owns(id))).toBe(false);
    jest.advanceTimersByTime(1);
    expect(owned().sort()).toEqual([...ids].sort());
    expect(own.owns(conversationKey('site', 'v-1'))).toBe(true);
    expect(changes).toEqual([{ gained: ids, lost: [], reason: 'unassigned' }]);
    own.assign([1], COUNT);
    expect(owned()).toEqual(byPartition(1));
    expect(changes.at(-1)).toEqual({ gained: [], lost: ids.filter((id) => partitionOf(id, COUNT) !== 1), reason: 'assigned' });
  });

  it('with no assignment and the group consumer failing (the producer connected earlier), holds every channel too', () => {
    own.start();
    own.unreachable();
    jest.advanceTimersByTime(10_000);
    expect(changes.map((c) => c.reason)).toEqual(['unassigned']);
  });

  it('with no assignment yet but Kafka reachable (a slow join), holds nothing: another replica may hold the channels', () => {
    own.start();
    jest.advanceTimersByTime(60_000);
    expect(changes).toEqual([]);
    reachable = false;
    jest.advanceTimersByTime(10_000);
    expect(changes.map((c) => c.reason)).toEqual(['unassigned']);
  });

  it('spread conversations follow their own key\'s partition; a rebalance that moves only them is still reported', () => {
    const keys = Array.from({ length: 60 }, (_, i) => conversationKey('site', `v-${i}`));
    const partitionsOf = new Set(keys.map((k) => partitionOf(k, COUNT)));
    expect(partitionsOf.size).toBe(COUNT); // spread over every partition, not with the channel's
    own.assign([0], COUNT);
    for (const k of keys) expect(own.owns(k)).toBe(partitionOf(k, COUNT) === 0);
    // Reported whether or not a channel moved with partition 1: its conversations did.
    const before = changes.length;
    own.assign([0, 1], COUNT);
    expect(changes.length).toBe(before + 1);
    for (const k of keys) expect(own.owns(k)).toBe(partitionOf(k, COUNT) <= 1);
    // Silence from the group keeps the conversations too.
    jest.advanceTimersByTime(60_000);
    for (const k of keys) expect(own.owns(k)).toBe(partitionOf(k, COUNT) <= 1);
  });

  it('a member assigned no partition holds nothing and reports nothing', () => {
    own.assign([], COUNT);
    jest.advanceTimersByTime(60_000);
    expect(changes).toEqual([]);
  });
});
