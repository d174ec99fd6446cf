/**
 * Token bucket for attempt starts: `ratePerSecond` tokens per second, holding at most one second's worth
 * (at least one), so a receiver never sees more than about `ratePerSecond` requests in any second.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly burst: number;

  constructor(
    private readonly ratePerSecond: number,
    now: number = Date.now(),
  ) {
    this.burst = Math.max(1, ratePerSecond);
    this.tokens = this.burst;
    this.last = now;
  }

  /** Takes a token and returns 0, or returns the ms until one is available (taking nothing). */
  take(now: number = Date.now()): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }
}
