import { TokenRateLimiter } from './rate-limit';

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
    expect(limiter.size).toBe(50);
    now = 5000;
    limiter.take('later');
    expect(limiter.size).toBe(1);
  });
});
