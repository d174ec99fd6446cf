import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import { WebhookAttemptError } from './webhook.policy';

/** State of the breaker as the API shows it. */
export type BreakerState = 'closed' | 'open' | 'half_open';

/**
 * The circuit breaker of one endpoint (cockatiel): `failures` consecutive attempts that fail in a way that says
 * the endpoint is unhealthy (`opensBreaker` in the policy table) open it; after `halfOpenAfterMs` one probe is
 * let through; its success closes it, its failure opens it again. Other failures (4xx, 3xx) neither count
 * nor reset. The worker asks `waitMs()` before starting an attempt, so while open nothing is sent at all.
 */
export class EndpointBreaker {
  private policy!: CircuitBreakerPolicy;
  private openedAt = 0;

  constructor(
    private readonly failures: number,
    private readonly halfOpenAfterMs: number,
    private readonly onChange: (state: BreakerState) => void,
  ) {
    this.reset(false);
  }

  /** Current state. */
  get state(): BreakerState {
    switch (this.policy.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half_open';
      default:
        return 'open';
    }
  }

  /** 0: an attempt may start now (closed, or open long enough that this one is the probe); Infinity: a probe is out; else ms to wait. */
  waitMs(now: number = Date.now()): number {
    const state = this.policy.state;
    if (state === CircuitState.Closed) return 0;
    if (state === CircuitState.HalfOpen) return Infinity;
    return Math.max(0, this.openedAt + this.halfOpenAfterMs - now);
  }

  /** Runs one attempt through the breaker (it rejects with BrokenCircuitError when open and not yet due). */
  execute<T>(fn: () => Promise<T>): Promise<T> {
    return this.policy.execute(fn);
  }

  /** Closes the breaker at once (operator's `enable`), forgetting the failure count. */
  reset(notify = true): void {
    this.policy = circuitBreaker(handleWhen((err) => err instanceof WebhookAttemptError && err.opensBreaker), {
      halfOpenAfter: this.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(this.failures),
    });
    this.policy.onBreak(() => {
      this.openedAt = Date.now();
    });
    this.policy.onStateChange(() => this.onChange(this.state));
    if (notify) this.onChange('closed');
  }
}
