import type { ChannelStore, ConversationRegistry } from '../connector.interface';
import { RecentConversations } from './captivate.recent';

/** A state file in memory. */
function memory(): ChannelStore & { data: Record<string, unknown> } {
  const data: Record<string, unknown> = {};
  return { data, get: <T>(k: string) => data[k] as T | undefined, set: (k: string, v: unknown) => void (data[k] = v), setJson: (k: string, json: string) => void (data[k] = JSON.parse(json)) };
}

/** The state topic as every replica reads it: saves are recorded, kept latest-per-key, and come back to every watcher. */
function sharedTopic(readInTime = true) {
  const records = new Map<string, unknown>();
  const writes: Array<[string, unknown]> = [];
  const listeners = new Set<(id: string, v: unknown) => void>();
  const registry: ConversationRegistry = {
    ready: async () => readInTime,
    all: () => new Map(records),
    save: (id, v) => {
      writes.push([id, v]);
      if (v === null) records.delete(id);
      else records.set(id, JSON.parse(JSON.stringify(v)));
      for (const l of listeners) l(id, v === null ? null : JSON.parse(JSON.stringify(v)));
    },
    watch: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return { registry, records, writes };
}

describe('RecentConversations', () => {
  it('without a cluster: keeps the most recent conversations with their last message in the state file, across a restart', () => {
    const state = memory();
    const recent = new RecentConversations(state, 2, 60_000);
    recent.touch('a', 'msg:1');
    recent.touch('b');
    recent.touch('a');
    recent.touch('c', 'msg:9');
    expect(recent.ids()).toEqual(['c', 'a']);
    expect(recent.lastKey('a')).toBe('msg:1');
    expect(state.data).toEqual({});
    recent.flush();
    const again = new RecentConversations(state, 2, 60_000);
    expect(again.ids()).toEqual(['c', 'a']);
    expect(again.lastKey('c')).toBe('msg:9');
    expect(again.mostRecent()).toBe('c');
  });

  it('cluster, registry not read in time: sync says so and keeps what is known so far', async () => {
    const { registry } = sharedTopic(false);
    const recent = new RecentConversations(memory(), 10, 60_000, registry);
    expect(await recent.sync(10)).toBe(false);
    expect(recent.size).toBe(0);
  });

  it('cluster: the next holder knows the conversations and their watermarks; one write per conversation per flush', async () => {
    const topic = sharedTopic();
    const holder = new RecentConversations(memory(), 10, 60_000, topic.registry);
    const next = new RecentConversations(memory(), 10, 60_000, topic.registry);
    for (let i = 1; i <= 50; i++) holder.touch('a', `evt:a${i}`);
    holder.touch('b', 'msg:b1');
    expect(topic.writes).toEqual([]);
    holder.flush();
    expect(topic.writes.map(([id, v]) => [id, (v as { key: string }).key])).toEqual([['a', 'evt:a50'], ['b', 'msg:b1']]);
    expect(await next.sync(10)).toBe(true);
    expect(next.ids()).toEqual(['b', 'a']);
    expect(next.lastKey('a')).toBe('evt:a50');
    // The replica's own records come back older than what it knows: its watermark does not move back.
    holder.touch('a', 'evt:a51');
    topic.registry.save('a', { key: 'evt:a50', at: 1 });
    expect(holder.lastKey('a')).toBe('evt:a51');
  });

  it('cluster: an eviction removes the conversation from the registry; records arriving out of order stay in time order', async () => {
    const topic = sharedTopic();
    const recent = new RecentConversations(memory(), 2, 60_000, topic.registry);
    recent.touch('a');
    recent.touch('b');
    recent.touch('c');
    recent.flush();
    expect(topic.records.has('a')).toBe(false);
    expect([...topic.records.keys()].sort()).toEqual(['b', 'c']);
    const other = new RecentConversations(memory(), 5, 60_000, topic.registry);
    await other.sync(10);
    topic.registry.save('old', { key: null, at: 1 });
    topic.registry.save('new', { key: 'msg:n', at: Date.now() + 1000 });
    expect(other.ids()).toEqual(['new', 'c', 'b', 'old']);
    topic.registry.save('new', null);
    expect(other.ids()).toEqual(['c', 'b', 'old']);
  });

  it('the most recent conversation follows touches, merges in and out of time order, removals and evictions', async () => {
    const topic = sharedTopic();
    const recent = new RecentConversations(memory(), 4, 60_000, topic.registry);
    expect(recent.mostRecent()).toBeUndefined();
    recent.touch('a');
    recent.touch('b');
    expect(recent.mostRecent()).toBe('b');
    recent.touch('a');
    expect(recent.mostRecent()).toBe('a');
    // Another replica's newer record comes last; an older one is sorted in before.
    topic.registry.save('x', { key: null, at: Date.now() + 1000 });
    expect(recent.mostRecent()).toBe('x');
    topic.registry.save('y', { key: null, at: 1 });
    expect([recent.ids(), recent.mostRecent()]).toEqual([['x', 'a', 'b', 'y'], 'x']);
    // The newest removed: the one before it is the newest again.
    topic.registry.save('x', null);
    expect([recent.ids(), recent.mostRecent()]).toEqual([['a', 'b', 'y'], 'a']);
    // The newest updated by another replica stays the newest.
    topic.registry.save('a', { key: 'msg:a', at: Date.now() + 2000 });
    expect([recent.ids(), recent.mostRecent(), recent.lastKey('a')]).toEqual([['a', 'b', 'y'], 'a', 'msg:a']);
    // Evictions take the least recent, never the newest.
    recent.touch('c');
    recent.touch('d');
    expect([recent.ids(), recent.mostRecent()]).toEqual([['d', 'c', 'a', 'b'], 'd']);
  });

  it('cluster: a takeover takes the registry in time order whatever order its records were read in', async () => {
    const topic = sharedTopic();
    const now = Date.now();
    for (const [id, at] of [['c', now - 1000], ['a', now - 3000], ['d', now], ['b', now - 2000]] as const) topic.records.set(id, { key: `msg:${id}`, at });
    const next = new RecentConversations(memory(), 10, 60_000, topic.registry);
    expect(await next.sync(10)).toBe(true);
    expect([next.ids(), next.mostRecent()]).toEqual([['d', 'c', 'b', 'a'], 'd']);
  });

  it('cluster: conversations of a single-replica state file are copied to the registry once, and the file is cleared', async () => {
    const state = memory();
    state.data.recentConversations = [['x', 'msg:x'], ['y', null]];
    const topic = sharedTopic();
    topic.records.set('y', { key: 'msg:y2', at: Date.now() });
    const recent = new RecentConversations(state, 10, 60_000, topic.registry);
    await recent.sync(10);
    recent.flush();
    expect(topic.writes.map(([id]) => id)).toEqual(['x']);
    expect(recent.lastKey('y')).toBe('msg:y2');
    expect(state.data.recentConversations).toEqual([]);
  });
});
