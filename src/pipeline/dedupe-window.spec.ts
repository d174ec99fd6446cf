import { DedupeWindow } from './dedupe-window';

describe('DedupeWindow', () => {
  it('holds at most maxEntries ids, forgetting the oldest first', () => {
    const w = new DedupeWindow(3, 60_000);
    for (const id of ['a', 'b', 'c', 'd']) w.add(id);
    expect(w.size).toBe(3);
    expect(['a', 'b', 'c', 'd'].map((id) => w.has(id))).toEqual([false, true, true, true]);
  });

  it('an id added again counts from then: it is no longer the oldest', () => {
    const w = new DedupeWindow(2, 60_000);
    w.add('a');
    w.add('b');
    w.add('a');
    w.add('c');
    expect(['a', 'b', 'c'].map((id) => w.has(id))).toEqual([true, false, true]);
  });

  it('forgets ids after ttlMs, and a deleted id at once', async () => {
    const w = new DedupeWindow(10, 50);
    w.add('a');
    w.add('b');
    w.delete('b');
    expect([w.has('a'), w.has('b')]).toEqual([true, false]);
    await new Promise((r) => setTimeout(r, 100));
    expect(w.has('a')).toBe(false);
    expect(w.size).toBe(0);
  });
});
