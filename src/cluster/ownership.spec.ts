import pino from 'pino';
import { ClusterOwnership, conversationKey, type OwnershipChange } from './ownership';
import { partitionOf } from './partition';

describe('ClusterOwnership', () => {
  const ids = ['wa-sales', 'support', 'hub', 'site-chat', 'bot-eu', 'bot-us'];
  const COUNT = 3;
  const byPartition = (p: number): string[] => ids.filter((id) => partitionOf(id, COUNT) === p);
  let changes: OwnershipChange[];
  let own: ClusterOwnership;

  beforeEach(() => {
    jest.useFakeTimers();
    changes = [];
    own = new ClusterOwnership(ids, { afterMs: 9000, rebalanceMs: 30_000 }, (c) => changes.push(c), pino({ level: 'silent' }));
  });
  afterEach(() => {
    own.stop();
    jest.useRealTimers();
  });

  it('holds nothing before the first assignment, then exactly the channels of the assigned partitions', () => {
    expect(ids.some((id) => own.owns(id))).toBe(false);
    own.assign([0, 2], COUNT);
    const mine = [...byPartition(0), ...byPartition(2)];
    expect(own.owned().sort()).toEqual([...mine].sort());
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

  it('releases every channel when no heartbeat succeeded in time, and takes them back at the next successful heartbeat', () => {
    own.assign([0, 1, 2], COUNT);
    jest.advanceTimersByTime(8000);
    own.alive(); // a heartbeat re-arms the fence
    jest.advanceTimersByTime(8999);
    expect(own.owned()).toHaveLength(ids.length);
    jest.advanceTimersByTime(1);
    expect(own.owned()).toEqual([]);
    expect(changes.at(-1)).toEqual({ gained: [], lost: ids, reason: 'fenced' });
    own.alive();
    expect(own.owned().sort()).toEqual([...ids].sort());
    expect(changes.at(-1)?.reason).toBe('heartbeat');
  });

  it('waits up to the rebalance timeout while the group rebalances (no heartbeats then)', () => {
    own.assign([0, 1, 2], COUNT);
    own.rebalancing();
    jest.advanceTimersByTime(29_999);
    expect(own.owned()).toHaveLength(ids.length);
    own.assign([0], COUNT);
    expect(changes.at(-1)).toEqual({ gained: [], lost: [...byPartition(1), ...byPartition(2)].sort((a, b) => ids.indexOf(a) - ids.indexOf(b)), reason: 'assigned' });
    jest.advanceTimersByTime(8999);
    expect(own.owned()).toEqual(byPartition(0));
  });

  it('a rebalance that never ends in a rejoin fences too; after stop nothing is reported', () => {
    own.assign([0, 1, 2], COUNT);
    own.rebalancing();
    jest.advanceTimersByTime(30_000);
    expect(own.owned()).toEqual([]);
    const n = changes.length;
    own.stop();
    own.assign([0, 1, 2], COUNT);
    own.alive();
    expect(changes).toHaveLength(n);
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
    // A fence lets go of the conversations too.
    jest.advanceTimersByTime(9000);
    expect(keys.some((k) => own.owns(k))).toBe(false);
  });

  it('a member assigned no partition holds nothing and arms no fence', () => {
    own.assign([], COUNT);
    jest.advanceTimersByTime(60_000);
    expect(changes).toEqual([]);
  });
});
