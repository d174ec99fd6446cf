import type { Logger } from 'pino';
import { backoffDelay, type BackoffPolicy } from '../../common/backoff';
import { CommandError, ConnectorError } from '../../common/errors';
import { subscribeFrame, unsubscribeFrame, type ClientFrame, type ErrorFrame } from './jwt-websocket.commands';

/** Sends one frame on the live socket; rejects with CommandError `not_connected` (sent:false) when there is none. */
export type FrameSender = (frame: ClientFrame) => Promise<void>;

/** How failed subscriptions are retried and reported. */
export interface SubscriptionRetry {
  /** After `subscription_failed` (the service could not subscribe now). */
  backoff: BackoffPolicy;
  /** After `unauthorized` naming the channel (the token may not read it): slower. */
  refusedBackoff: BackoffPolicy;
  /** Retries per channel and connection; undefined: no limit. */
  maxAttempts: number | undefined;
  /** Reports each failure of a wanted channel (`retryInMs` undefined: not retried before the next connect). */
  failed(channel: string, error: ConnectorError, retryInMs: number | undefined): void;
}

interface Waiter {
  reject(err: CommandError): void;
  timer: NodeJS.Timeout;
  /** The `room.listen` that added the channel: its failure removes the channel again. */
  addedChannel: boolean;
}

/**
 * The set of channels to keep subscribed on the current connection. The service has no subscribe ack, only error
 * frames naming the channel (`subscription_failed`, or `unauthorized` when the token may not read it), so: a wanted
 * channel that fails is retried alone with backoff and reported, without dropping the connection; a command waits a
 * quiet window and fails if an error frame names its channel.
 */
export class Subscriptions {
  private readonly desired: Set<string>;
  private readonly attempts = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly waiters = new Map<string, Waiter[]>();

  constructor(
    initial: readonly string[],
    private readonly send: FrameSender,
    private readonly retry: SubscriptionRetry,
    private readonly log: Logger,
  ) {
    this.desired = new Set(initial);
  }

  /** Channels subscribed after every (re)connect, in the order they were added. */
  get channels(): string[] {
    return [...this.desired];
  }

  /** Sends a subscribe for every desired channel on a fresh connection. */
  async resubscribeAll(): Promise<void> {
    this.attempts.clear();
    for (const channel of this.desired) await this.send(subscribeFrame(channel));
  }

  /** `room.listen`: subscribes now and after every reconnect; resolves when no error names the channel within `confirmMs`. */
  async listen(channel: string, confirmMs: number): Promise<void> {
    const added = !this.desired.has(channel);
    this.desired.add(channel);
    await this.sendAndConfirm(subscribeFrame(channel), confirmMs, added, () => {
      if (added) this.desired.delete(channel);
    });
  }

  /** `room.unlisten`: stops resubscribing and unsubscribes; resolves when no error names the channel within `confirmMs`. */
  async unlisten(channel: string, confirmMs: number): Promise<void> {
    const had = this.desired.delete(channel);
    this.cancelRetry(channel);
    await this.sendAndConfirm(unsubscribeFrame(channel), confirmMs, false, () => {
      if (had) this.desired.add(channel);
    });
  }

  /** An error frame arrived: fails the commands waiting on its channel, or retries a failed subscription. */
  onError(err: ErrorFrame): void {
    const channel = err.channel;
    if (!channel) return;
    const waiting = this.waiters.get(channel);
    if (waiting) {
      this.waiters.delete(channel);
      const retriable = err.code === 'subscription_failed' || err.code === 'internal_error';
      for (const w of waiting) {
        clearTimeout(w.timer);
        w.reject(new CommandError(err.code, `upstream refused channel "${channel}": ${err.message ?? err.code}`, { retriable, sent: false }));
      }
      // A listen that failed is not kept; a channel that was already wanted keeps its retries below.
      if (waiting.some((w) => w.addedChannel)) {
        this.desired.delete(channel);
        return;
      }
    }
    if ((err.code === 'subscription_failed' || err.code === 'unauthorized') && this.desired.has(channel)) this.scheduleRetry(channel, err);
  }

  /** The connection ended: pending retries are cancelled and waiting commands fail (the upstream may have acted). */
  reset(): void {
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    for (const [channel, list] of this.waiters) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.reject(new CommandError('connection_lost', `connection ended before "${channel}" was confirmed; it is resubscribed after the reconnect if still listened`, { retriable: true, sent: true }));
      }
    }
    this.waiters.clear();
  }

  /** Waits for errors from before the frame leaves, so a fast error frame cannot slip past; `undo` runs when it was not sent. */
  private async sendAndConfirm(frame: ClientFrame, ms: number, addedChannel: boolean, undo: () => void): Promise<void> {
    const channel = frame.data.channel;
    let waiter: Waiter | undefined;
    const confirmed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.removeWaiter(channel, waiter);
        resolve();
      }, ms);
      waiter = { reject, addedChannel, timer };
      this.waiters.set(channel, [...(this.waiters.get(channel) ?? []), waiter]);
    });
    // Observed here so a rejection while the send is still in flight is never "unhandled"; awaited below.
    confirmed.catch(() => undefined);
    try {
      await this.send(frame);
    } catch (err) {
      if (waiter) clearTimeout(waiter.timer);
      this.removeWaiter(channel, waiter);
      undo();
      throw err;
    }
    await confirmed;
  }

  private removeWaiter(channel: string, waiter: Waiter | undefined): void {
    const list = (this.waiters.get(channel) ?? []).filter((w) => w !== waiter);
    if (list.length) this.waiters.set(channel, list);
    else this.waiters.delete(channel);
  }

  private scheduleRetry(channel: string, frame: ErrorFrame): void {
    if (this.retryTimers.has(channel)) return;
    const attempt = this.attempts.get(channel) ?? 0;
    const refused = frame.code === 'unauthorized';
    const error = new ConnectorError(refused ? 'subscription_refused' : frame.code, `upstream refused channel "${channel}": ${frame.message ?? frame.code}`, { retriable: true });
    if (this.retry.maxAttempts !== undefined && attempt >= this.retry.maxAttempts) {
      this.log.error({ subscription: channel, attempts: attempt }, 'subscription keeps failing; giving up until the next reconnect');
      this.retry.failed(channel, error, undefined);
      return;
    }
    this.attempts.set(channel, attempt + 1);
    const delay = backoffDelay(refused ? this.retry.refusedBackoff : this.retry.backoff, attempt);
    this.log.debug({ subscription: channel, attempt: attempt + 1, retryInMs: delay }, 'subscription failed; retrying');
    this.retry.failed(channel, error, delay);
    const timer = setTimeout(() => {
      this.retryTimers.delete(channel);
      if (!this.desired.has(channel)) return;
      this.send(subscribeFrame(channel)).catch(() => undefined); // not connected: the next connect resubscribes
    }, delay);
    timer.unref?.();
    this.retryTimers.set(channel, timer);
  }

  private cancelRetry(channel: string): void {
    const t = this.retryTimers.get(channel);
    if (t) clearTimeout(t);
    this.retryTimers.delete(channel);
  }
}
