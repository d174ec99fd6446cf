import { AuthFailureLimiter, TokenRateLimiter } from './rate-limit';

/** The limiters' memory, which no caller sees (a forgotten full bucket or address acts as a new one): read from inside. */
const bucketsOf = (limiter: TokenRateLimiter): number => (limiter as unknown as { buckets: Map<string, unknown> }).buckets.size;
const addressesOf = (limiter: AuthFailureLimiter): number => (limiter as unknown as { addresses: Map<string, unknown> }).addresses.size;

describe('TokenRateLimiter', () => {
  it('allows a burst, then refills at perSecond, per token', () => {
    let now = 0;
    const limiter = new TokenRateLimiter(2, 3, () => now);
    expect([1, 2, 3].map(() => limiter.take('a').ok)).toEqual([true, true, true]);
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterMs: 500 });
    expect(limiter.take('b').ok).toBe(true);
    now = 499;
    expect(limiter.take('a').ok).toBe(false);
    now = 1000;
    expect(limiter.take('a').ok).toBe(true);
  });

  it('forgets buckets that are full again, so memory follows the active callers', () => {
    let now = 0;
    const limiter = new TokenRateLimiter(10, 10, () => now);
    for (let i = 0; i < 50; i++) limiter.take(`t${i}`);
    expect(bucketsOf(limiter)).toBe(50);
    now = 5000;
    limiter.take('later');
    expect(bucketsOf(limiter)).toBe(1);
  });
});

describe('AuthFailureLimiter', () => {
  it('blocks an address at maxFailures within the window, for one window, then counts afresh', () => {
    let now = 0;
    const limiter = new AuthFailureLimiter(3, 60_000, 100, () => now);
    limiter.fail('10.0.0.1');
    limiter.fail('10.0.0.1');
    expect(limiter.check('10.0.0.1')).toEqual({ ok: true });
    now = 1000;
    limiter.fail('10.0.0.1');
    expect(limiter.check('10.0.0.1')).toEqual({ ok: false, retryAfterMs: 60_000 });
    expect(limiter.check('10.0.0.2')).toEqual({ ok: true });
    now = 60_999;
    expect(limiter.check('10.0.0.1')).toEqual({ ok: false, retryAfterMs: 1 });
    // Not locked out for good: the block lifts after one window, and one more failure does not block again.
    now = 61_000;
    expect(limiter.check('10.0.0.1')).toEqual({ ok: true });
    limiter.fail('10.0.0.1');
    expect(limiter.check('10.0.0.1')).toEqual({ ok: true });
  });

  it('forgets failures older than the window', () => {
    let now = 0;
    const limiter = new AuthFailureLimiter(3, 60_000, 100, () => now);
    limiter.fail('a');
    limiter.fail('a');
    now = 60_000;
    limiter.fail('a');
    limiter.fail('a');
    expect(limiter.check('a').ok).toBe(true);
    limiter.fail('a');
    expect(limiter.check('a').ok).toBe(false);
  });

  it('keeps at most maxAddresses, forgetting the least recently failing first', () => {
    const limiter = new AuthFailureLimiter(2, 60_000, 100, () => 0);
    limiter.fail('first');
    limiter.fail('first');
    expect(limiter.check('first').ok).toBe(false);
    for (let i = 0; i < 100; i++) limiter.fail(`spray-${i}`);
    expect(addressesOf(limiter)).toBe(100);
    expect(limiter.check('first').ok).toBe(true);
    expect(limiter.check('spray-99')).toEqual({ ok: true });
  });

  it('counts nothing with maxFailures 0 (off)', () => {
    const limiter = new AuthFailureLimiter(0, 60_000);
    for (let i = 0; i < 50; i++) limiter.fail('a');
    expect(limiter.check('a').ok).toBe(true);
    expect(addressesOf(limiter)).toBe(0);
  });
});
