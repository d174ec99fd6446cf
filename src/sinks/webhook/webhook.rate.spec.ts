import { RateLimiter } from './webhook.rate';

describe('RateLimiter', () => {
  it('allows a burst of one second, then one start per 1/rate seconds', () => {
    const t0 = 1_000_000;
    const r = new RateLimiter(4, t0);
    expect([r.take(t0), r.take(t0), r.take(t0), r.take(t0)]).toEqual([0, 0, 0, 0]);
    expect(r.take(t0)).toBe(250);
    expect(r.take(t0 + 100)).toBe(150);
    expect(r.take(t0 + 250)).toBe(0);
  });

  it('holds at least one token for rates below 1/s', () => {
    const t0 = 0;
    const r = new RateLimiter(0.5, t0);
    expect(r.take(t0)).toBe(0);
    expect(r.take(t0)).toBe(2000);
    expect(r.take(t0 + 2000)).toBe(0);
  });
});
