import { createHash } from 'node:crypto';
import { OldestKey } from './oldest-key';

/** What a rate-limited caller learns: go ahead, or wait this long. */
export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * Token buckets per API token (docs/api.md "per-token rate limit"): `perSecond` refill, `burst` capacity, shared by
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

  /** Drops buckets that have refilled completely (at most once a second). */
  private sweep(t: number): void {
    if (t - this.sweptAt < 1000) return;
    this.sweptAt = t;
    const fullAfterMs = (this.burst / this.perSecond) * 1000;
    for (const [key, b] of this.buckets) if (t - b.at >= fullAfterMs) this.buckets.delete(key);
  }
}

/**
 * Failed authentications per caller address (HTTP `/v1/*` 401s, socket.io handshakes, inbound posts): after
 * `maxFailures` within `windowMs` the address is refused with 429 for `windowMs`, every request alike, the right
 * token included (otherwise a guess would still learn whether it was right). The block then lifts by itself, so a
 * valid caller behind the same address is held up for one window at most per burst of failures. The table keeps
 * the `maxAddresses` most recently seen addresses (the least recently failing forgotten first), so memory stays bounded
 * whatever the number of callers. `maxFailures` 0 turns it off.
 */
export class AuthFailureLimiter {
  private readonly addresses = new Map<string, { failures: number; since: number; blockedUntil: number }>();
  private readonly leastRecent = new OldestKey(this.addresses);

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `address` may try to authenticate now, or how long it must wait. */
  check(address: string): RateDecision {
    const entry = this.addresses.get(address);
    const wait = entry ? entry.blockedUntil - this.now() : 0;
    return wait > 0 ? { ok: false, retryAfterMs: wait } : { ok: true };
  }

  /** Counts one failed authentication from `address`. */
  fail(address: string): void {
    if (this.maxFailures <= 0) return;
    const t = this.now();
    let entry = this.addresses.get(address);
    if (!entry || t - entry.since >= this.windowMs) entry = { failures: 0, since: t, blockedUntil: entry?.blockedUntil ?? 0 };
    entry.failures += 1;
    if (entry.failures >= this.maxFailures) {
      entry.blockedUntil = t + this.windowMs;
      // A new window starts when the block ends: the next burst is counted afresh.
      entry.failures = 0;
      entry.since = entry.blockedUntil;
    }
    // Re-inserted: the Map's order is then least recently failed first, which is what gets evicted.
    this.addresses.delete(address);
    this.addresses.set(address, entry);
    if (this.addresses.size > this.maxAddresses) this.leastRecent.take();
    else this.leastRecent.release();
  }
}
