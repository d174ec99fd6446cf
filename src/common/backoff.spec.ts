import { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff';

const policy: BackoffPolicy = { initialDelayMs: 100, maxDelayMs: 5000, multiplier: 2 };

/** A deterministic pseudo-random source (mulberry32), so a failure can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('backoffCeiling', () => {
  it('starts at initialDelayMs and grows by the multiplier per attempt', () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffCeiling(policy, n))).toEqual([100, 200, 400, 800, 1600, 3200]);
    expect([0, 1, 2].map((n) => backoffCeiling({ ...policy, multiplier: 3 }, n))).toEqual([100, 300, 900]);
  });

  it('is capped at maxDelayMs', () => {
    expect(backoffCeiling(policy, 6)).toBe(5000); // 6400 uncapped
    expect(backoffCeiling(policy, 20)).toBe(5000);
  });

  it('never overflows to Infinity or NaN, however large the attempt', () => {
    for (const attempt of [1023, 1024, 1075, 10_000, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY]) {
      expect(backoffCeiling(policy, attempt)).toBe(5000);
      const d = backoffDelay(policy, attempt, () => 0.999999);
      expect(Number.isFinite(d)).toBe(true);
      expect(d).toBeLessThanOrEqual(5000);
    }
  });

  it('never yields NaN, even where the arithmetic does (NaN attempt, 1 ** Infinity)', () => {
    for (const [p, attempt] of [[policy, Number.NaN], [{ ...policy, multiplier: 1 }, Number.POSITIVE_INFINITY]] as const) {
      const ceiling = backoffCeiling(p, attempt);
      expect(Number.isFinite(ceiling)).toBe(true);
      expect(ceiling).toBeLessThanOrEqual(p.maxDelayMs);
      expect(Number.isFinite(backoffDelay(p, attempt, () => 0.5))).toBe(true);
    }
  });

  it('treats a negative attempt as the first', () => {
    expect(backoffCeiling(policy, -3)).toBe(100);
  });

  it('keeps the documented production defaults: 1 s doubling to 30 s', () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialDelayMs: 1000, maxDelayMs: 30_000, multiplier: 2 });
    expect(backoffCeiling(DEFAULT_BACKOFF, 4)).toBe(16_000);
    expect(backoffCeiling(DEFAULT_BACKOFF, 5)).toBe(30_000);
  });
});

describe('backoffDelay (full jitter)', () => {
  it('is always an integer within [0, ceiling]', () => {
    const random = seeded(42);
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = backoffCeiling(policy, attempt);
      for (let i = 0; i < 250; i++) {
        const d = backoffDelay(policy, attempt, random);
        expect(Number.isInteger(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('is 0 when random() is 0 and just under the ceiling when random() is almost 1', () => {
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
    const nearlyOne = 1 - Number.EPSILON;
    expect(backoffDelay(policy, 3, () => nearlyOne)).toBe(799);
    expect(backoffDelay(policy, 50, () => nearlyOne)).toBe(4999);
  });

  it('scales linearly with random() inside the ceiling', () => {
    expect(backoffDelay(policy, 2, () => 0.5)).toBe(200);
    expect(backoffDelay(policy, 2, () => 0.25)).toBe(100);
  });

  it('really jitters: delays for one attempt spread over the range', () => {
    const random = seeded(7);
    const delays = Array.from({ length: 500 }, () => backoffDelay(policy, 10, random));
    expect(Math.min(...delays)).toBeLessThan(500);
    expect(Math.max(...delays)).toBeGreaterThan(4500);
    expect(new Set(delays).size).toBeGreaterThan(300);
  });

  it('uses Math.random by default and stays in range', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(policy, 4);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(1600);
    }
  });
});
