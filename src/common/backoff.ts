/** Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
export interface BackoffPolicy {
  /** Delay cap of the first attempt, in ms. */
  initialDelayMs: number;
  /** Upper bound of any delay, in ms. */
  maxDelayMs: number;
  /** Growth factor per attempt. */
  multiplier: number;
}

/** Production defaults: 1 s, doubling, capped at 30 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000, multiplier: 2 };

/** Between restarts of a Kafka consumer that could not start (and before a refused command record is offered again). */
export const CONSUMER_RESTART_BACKOFF: BackoffPolicy = { initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2 };

/** The cap for attempt `n` (0-based): min(max, initial * multiplier^n). */
export function backoffCeiling(policy: BackoffPolicy, attempt: number): number {
  const exp = policy.initialDelayMs * Math.pow(policy.multiplier, Math.max(0, attempt));
  return Math.min(policy.maxDelayMs, Number.isFinite(exp) ? exp : policy.maxDelayMs);
}

/** A full-jitter delay for attempt `n`: uniform in [0, ceiling]. `random` is injectable for tests. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(policy, attempt));
}
