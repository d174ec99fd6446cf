import type { Logger } from 'pino';
import { backoffDelay, type BackoffPolicy } from '../common/backoff';
import { ConnectorError, describeError } from '../common/errors';
import type { ChannelState } from '../envelope/event-types';
import type { Connector, ConnectorHooks, UpstreamFrame } from './connector.interface';

/** One status transition of a channel, as published in `chatbridge.channel.status`. */
export interface StatusChange {
  state: ChannelState;
  previous: ChannelState;
  reason?: string;
  /** Consecutive failed attempts so far. */
  attempt: number;
  /** When a retry is scheduled: its delay. */
  nextRetryInMs?: number;
}

/** Reconnect settings (a subset of the config's `reconnect:` block). */
export interface SupervisorPolicy {
  backoff: BackoffPolicy;
  /** Used once the upstream's refusal of the credentials counts as `auth_failed`: slower, so a bad key does not hammer it. */
  authBackoff: BackoffPolicy;
  /** A connection that lived at least this long resets the attempt count. */
  stableAfterMs: number;
  /** Refusals of a credential that connected recently, retried on `backoff` first; absent: every refusal is `auth_failed`. */
  authGrace?: AuthGrace;
}

/**
 * An upstream that restarts can refuse a good credential for a moment (its key store not loaded yet). A credential
 * that connected within `withinMs` keeps the normal schedule for its first `attempts` refusals in a row, or for
 * `windowMs` after the first of them, whichever ends first; only then is it `auth_failed`.
 */
export interface AuthGrace {
  withinMs: number;
  attempts: number;
  windowMs: number;
}

/** What the supervisor tells its owner. */
export interface SupervisorListener {
  status(change: StatusChange): void;
  frame(frame: UpstreamFrame, receivedAt: Date): void;
  /** Handling upstream input threw (`where`: the upstream event or listener; `input`: what the listener got). */
  fault(where: string, err: unknown, input: unknown[]): void;
  /** One subscription was refused or not confirmed; the connection stays up and it is retried alone. */
  subscriptionFailed?(subscription: string, error: ConnectorError, retryInMs: number | undefined): void;
  /**
   * A reconnect attempt was scheduled: every one, also those the status stream does not report again (the same state
   * for the same reason). `reason`: the code of the failure that ended the last attempt or connection, or
   * `reconnect_requested`.
   */
  reconnecting?(reason: string): void;
}

/**
 * Owns one upstream connection (a channel's, or one Smartsupp visitor's): connect, reconnect with
 * exponential backoff and full jitter (unbounded attempts, capped delay), resubscribe after every connect,
 * and the status stream. Connectors only open, subscribe and close.
 */
export class ConnectionSupervisor {
  private state: ChannelState = 'disconnected';
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private running = false;
  /** Increments on every attempt; late callbacks of an older attempt are ignored. */
  private generation = 0;
  private connectedAt = 0;
  /** When a connection was last known to be up (connected, or lost after having been up); undefined: never. */
  private lastUpAt?: number;
  /** Refusals of the credentials since the last successful connect, and when the first of them came. */
  private refusals = 0;
  private firstRefusalAt = 0;
  /** Retries scheduled on the slow (auth) schedule since the last successful connect. */
  private slowAttempt = 0;
  private lastReason?: string;
  private readonly connector: Connector;
  /** Reconnects since start (after a connection was lost or an attempt failed). */
  reconnects = 0;
  lastError?: string;

  constructor(
    createConnector: (hooks: ConnectorHooks) => Connector,
    private readonly policy: SupervisorPolicy,
    private readonly listener: SupervisorListener,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.connector = createConnector({
      frame: (frame) => {
        try {
          this.listener.frame(frame, new Date());
        } catch (err) {
          this.listener.fault(frame.event, err, [frame.payload]);
        }
      },
      lost: (err) => this.onLost(err),
      fault: (where, err, input) => this.listener.fault(where, err, input),
      subscriptionFailed: (subscription, err, retryInMs) => {
        try {
          this.listener.subscriptionFailed?.(subscription, err, retryInMs);
        } catch (e) {
          this.log.warn({ err: describeError(e), subscription }, 'subscription failure report threw');
        }
      },
      guard: (where, fn) => (...args) => {
        try {
          fn(...args);
        } catch (err) {
          this.listener.fault(where, err, args);
        }
      },
    });
  }

  /** The supervised connector (for commands). */
  get connection(): Connector {
    return this.connector;
  }

  /** Current state. */
  get current(): ChannelState {
    return this.state;
  }

  /** Starts connecting; returns at once. Failures are retried forever until `stop()`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.transition('connecting');
    void this.tryConnect();
  }

  /** Stops for good: cancels retries and closes the connection. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      await this.connector.close();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'error while closing connector');
    }
    this.transition('disconnected', 'stopped');
  }

  /**
   * Drops the connection (or the wait before the next retry) and connects again at once, with the backoff reset
   * (`POST /v1/channels/:id/reconnect`). Counts as a reconnect, reason `reconnect_requested`. False when stopped.
   */
  async reconnectNow(): Promise<boolean> {
    if (!this.running) return false;
    // Late callbacks of the dropped connection or attempt are ignored, and a `lost` from the close below finds the
    // state no longer `connected`, so it schedules no retry of its own.
    const gen = ++this.generation;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.attempt = this.slowAttempt = 0;
    this.countReconnect('reconnect_requested');
    this.log.info('reconnect requested through the API');
    this.transition('reconnecting', 'reconnect_requested', 0);
    try {
      await this.connector.close();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'error while closing connector');
    }
    // Stopped meanwhile, or another request already reconnects.
    if (!this.running || gen !== this.generation) return this.running;
    void this.tryConnect();
    return true;
  }

  private async tryConnect(): Promise<void> {
    const gen = ++this.generation;
    try {
      await this.connector.connect();
    } catch (err) {
      if (gen !== this.generation || !this.running) return;
      this.scheduleRetry(asConnectorError(err));
      return;
    }
    if (gen !== this.generation || !this.running) return;
    this.connectedAt = this.lastUpAt = Date.now();
    this.refusals = this.slowAttempt = 0;
    this.lastError = undefined;
    this.transition('connected');
    try {
      await this.connector.subscribe();
    } catch (err) {
      if (gen !== this.generation || !this.running) return;
      // Subscriptions are part of being connected: without them no events flow, so start over.
      this.log.warn({ err: describeError(err) }, 'subscribe failed; reconnecting');
      await this.connector.close().catch(() => undefined);
      this.onLost(asConnectorError(err), gen);
    }
  }

  private onLost(err: ConnectorError, gen = this.generation): void {
    if (!this.running || gen !== this.generation || this.state !== 'connected') return;
    this.lastUpAt = Date.now();
    // A connection that did not live long counts as a failed attempt, so a flapping upstream backs off.
    if (Date.now() - this.connectedAt >= this.policy.stableAfterMs) this.attempt = 0;
    this.scheduleRetry(err);
  }

  private scheduleRetry(err: ConnectorError): void {
    this.generation++;
    this.countReconnect(err.code);
    this.lastError = err.message;
    const slow = err.authFailure && !err.planned && !this.graceFor(Date.now());
    const policy = slow ? this.policy.authBackoff : this.policy.backoff;
    // A planned reconnect (token refresh, connection age limit) is not a failure: reconnect at once.
    if (err.planned) this.attempt = 0;
    const index = slow ? this.slowAttempt++ : this.attempt;
    const delay = err.planned ? 0 : err.retriable ? backoffDelay(policy, index, this.random) : policy.maxDelayMs;
    if (!err.planned) this.attempt++;
    const next: ChannelState = slow ? 'auth_failed' : 'reconnecting';
    const quiet = err.planned || (this.attempt > 3 && next === this.state);
    const log = quiet ? this.log.info.bind(this.log) : this.log.warn.bind(this.log);
    log({ code: err.code, attempt: this.attempt, retryInMs: delay }, `${err.message}; retrying`);
    this.transition(next, err.code, delay);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.running) void this.tryConnect();
    }, delay);
    this.timer.unref?.();
  }

  private countReconnect(reason: string): void {
    this.reconnects++;
    this.listener.reconnecting?.(reason);
  }

  /** Counts one refusal of the credentials; true while it is still within the grace of a recently accepted credential. */
  private graceFor(now: number): boolean {
    if (this.refusals++ === 0) this.firstRefusalAt = now;
    const grace = this.policy.authGrace;
    if (!grace || this.lastUpAt === undefined || now - this.lastUpAt > grace.withinMs) return false;
    return this.refusals <= grace.attempts && now - this.firstRefusalAt < grace.windowMs;
  }

  /**
   * Reports a change of state (or of the reason for it). Repeated failures in the same state with the
   * same reason are not reported again: they are in the logs and `chatbridge_reconnects_total`.
   */
  private transition(state: ChannelState, reason?: string, nextRetryInMs?: number): void {
    const previous = this.state;
    const same = state === previous && reason === this.lastReason;
    this.state = state;
    this.lastReason = reason;
    if (same) return;
    const change: StatusChange = { state, previous, attempt: this.attempt };
    if (reason) change.reason = reason;
    if (nextRetryInMs !== undefined) change.nextRetryInMs = nextRetryInMs;
    this.listener.status(change);
  }
}

function asConnectorError(err: unknown): ConnectorError {
  if (err instanceof ConnectorError) return err;
  return new ConnectorError('unexpected', describeError(err), { retriable: true, cause: err });
}
