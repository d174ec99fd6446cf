import { DedupeWindow } from './dedupe-window';

describe('DedupeWindow', () => {
  it('holds at most maxEntries ids, forgetting the oldest first', () => {
    const w = new DedupeWindow(3, 60_000);
    expect(['a', 'b', 'c', 'd'].map((id) => w.seenBefore(id))).toEqual([false, false, false, false]);
    expect(w.size).toBe(3);
    expect(['b', 'c', 'd', 'a'].map((id) => w.seenBefore(id))).toEqual([true, true, true, false]);
  });

  it('a duplicate does not make an id younger: it is still the first forgotten', () => {
    const w = new DedupeWindow(2, 60_000);
    w.seenBefore('a');
    w.seenBefore('b');
    expect(w.seenBefore('a')).toBe(true);
    w.seenBefore('c'); // forgets a, the oldest
    expect(['b', 'c', 'a'].map((id) => w.seenBefore(id))).toEqual([true, true, false]);
  });

  it('forgets ids after ttlMs, and a deleted id at once', async () => {
    const w = new DedupeWindow(10, 50);
    w.seenBefore('a');
    w.seenBefore('b');
    w.delete('b');
    expect([w.seenBefore('a'), w.seenBefore('b')]).toEqual([true, false]);
    await new Promise((r) => setTimeout(r, 100));
    expect([w.seenBefore('a'), w.seenBefore('b')]).toEqual([false, false]);
    expect(w.size).toBe(2);
  });

  it('stays exact over many evictions: 50,000 ids with duplicates and deletes answer as a reference list does', () => {
    const w = new DedupeWindow(1000, 3600_000);
    const order: string[] = []; // the reference: remembered ids, oldest first
    const answers: boolean[] = [];
    const expected: boolean[] = [];
    for (let i = 0; i < 50_000; i++) {
      const id = i % 7 === 3 ? `id-${Math.max(0, i - (i % 3000))}` : `id-${i}`; // duplicates, recent and long gone
      answers.push(w.seenBefore(id));
      const known = order.includes(id);
      expected.push(known);
      if (!known) order.push(id);
      if (order.length > 1000) order.shift();
      if (i % 11 === 0) {
        w.delete(id);
        order.splice(order.indexOf(id), 1);
      }
    }
    expect(answers).toEqual(expected);
    expect(answers.filter(Boolean).length).toBeGreaterThan(100);
    expect(answers.filter((a) => !a).length).toBeGreaterThan(40_000);
    expect(w.size).toBe(order.length);
  });
});
