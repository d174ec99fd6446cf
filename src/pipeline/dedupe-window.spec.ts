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

  it('stays exact over many evictions: after 50,000 ids, some deleted and some added again, it holds the newest 1,000', () => {
    const w = new DedupeWindow(1000, 3600_000);
    const order: string[] = []; // the reference: ids by when last added, deleted ones removed
    for (let i = 0; i < 50_000; i++) {
      const id = i % 7 === 3 && i > 10 ? `id-${i - 5}` : `id-${i}`; // some added again while remembered
      w.add(id);
      const at = order.indexOf(id, Math.max(0, order.length - 20));
      if (at >= 0) order.splice(at, 1);
      order.push(id);
      if (i % 11 === 0) {
        w.delete(id);
        order.pop();
      }
      if (order.length > 1000) order.shift();
    }
    // As many as the reference and each of its ids: the same ids.
    expect(w.size).toBe(1000);
    expect(order.filter((id) => !w.has(id))).toEqual([]);
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
