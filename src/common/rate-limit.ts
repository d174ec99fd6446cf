import { createHash } from 'node:crypto';

/** What a rate-limited caller learns: go ahead, or wait this long. */
export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * Token buckets per API token (SPEC §8 "per-token rate limit"): `perSecond` refill, `burst` capacity, shared by
 * HTTP and socket.io. Buckets are keyed by a digest of the token (the token itself is never kept as a map key)
 * and a bucket that is full again is forgotten, so memory follows the callers active in the last few seconds.
 */
export class TokenRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private sweptAt = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one unit for `token`; refused with the wait until one unit is back. */
  take(token: string): RateDecision {
    const t = this.now();
    this.sweep(t);
    const key = createHash('sha256').update(token).digest('base64');
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((t - bucket.at) / 1000) * this.perSecond);
    bucket.at = t;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) / this.perSecond) * 1000) };
  }

  /** Buckets currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops buckets that have refilled completely (at most once a second). */
  private sweep(t: number): void {
    if (t - this.sweptAt < 1000) return;
    this.sweptAt = t;
    const fullAfterMs = (this.burst / this.perSecond) * 1000;
    for (const [key, b] of this.buckets) if (t - b.at >= fullAfterMs) this.buckets.delete(key);
  }
}
