import { OldestKey } from './oldest-key';

/** A tiny deterministic generator, so a failing sequence can be replayed. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

describe('OldestKey', () => {
  it('takes keys oldest first, a key moved to the end (delete + add) last, and skips keys deleted meanwhile', () => {
    const set = new Set(['a', 'b', 'c', 'd']);
    const oldest = new OldestKey(set);
    expect(oldest.take()).toBe('a');
    set.delete('b');
    set.add('e');
    set.delete('c');
    set.add('c');
    expect([oldest.take(), oldest.take(), oldest.take(), oldest.take(), oldest.take()]).toEqual(['d', 'e', 'c', undefined, undefined]);
    expect(set.size).toBe(0);
  });

  it('sees keys added after it took the last one, and after the collection was cleared', () => {
    const map = new Map([['a', 1]]);
    const oldest = new OldestKey(map);
    expect(oldest.take()).toBe('a');
    map.set('b', 2);
    expect(oldest.take()).toBe('b');
    map.set('c', 3);
    map.set('d', 4);
    map.clear();
    map.set('e', 5);
    expect(oldest.take()).toBe('e');
    oldest.release();
    map.set('f', 6);
    expect(oldest.take()).toBe('f');
  });

  it('agrees with a fresh iterator over thousands of random adds, moves, deletes and takes, through rehashes', () => {
    const next = random(7);
    const map = new Map<number, number>();
    const oldest = new OldestKey(map);
    let key = 0;
    for (let step = 0; step < 50_000; step++) {
      const r = next();
      if (r < 0.45) map.set(key++, step);
      else if (r < 0.6 && map.size) {
        const k = Math.floor(next() * key);
        if (map.delete(k)) map.set(k, step);
      } else if (r < 0.7) map.delete(Math.floor(next() * key));
      else if (r < 0.72) oldest.release();
      else {
        const expected = map.size ? (map.keys().next().value as number) : undefined;
        expect(oldest.take()).toBe(expected);
      }
    }
    expect(key).toBeGreaterThan(10_000);
  });
});
