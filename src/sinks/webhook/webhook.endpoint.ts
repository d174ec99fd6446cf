import { setMaxListeners } from 'node:events';
import { BrokenCircuitError } from 'cockatiel';
import type { Logger } from 'pino';
import { BridgeError, describeError } from '../../common/errors';
import { sleep } from '../../common/wait';
import { toStructured, type AnyCanonicalEvent, type PipelineEvent } from '../../envelope/envelope';
import type { HotCount, Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import { EndpointBreaker, type BreakerState } from './webhook.breaker';
import type { WebhookConfig } from './webhook.config';
import { KeyedLanes } from './webhook.lanes';
import { classifyError, classifyResponse, nextDelay, WebhookAttemptError } from './webhook.policy';
import { RateLimiter } from './webhook.rate';
import { WebhookSigner } from './webhook.signer';
import type { WebhookTransport } from './webhook.transport';

/** What `GET /v1/webhooks` shows of an endpoint's state. */
export type EndpointState = 'active' | 'retrying' | 'circuit_open' | 'disabled';

/** One endpoint as the API shows it. */
export interface EndpointSnapshot {
  id: string;
  /** Origin and path only (no credentials, no query). */
  url: string;
  state: EndpointState;
  /** Events held: queued, in flight or waiting to retry. */
  pending: number;
  inFlight: number;
  lastStatus?: number;
  lastError?: string;
  lastAttemptAt?: string;
  lastDeliveredAt?: string;
  disabledAt?: string;
}

/**
 * How one submitted event ended for this endpoint: delivered (2xx), dead-lettered (written to the dead letters),
 * or released at shutdown undelivered (only for a durable source, which will offer it again after a restart).
 */
export type SettleOutcome = 'delivered' | 'dead_lettered' | 'released';

/** Told once when a submitted event is finished with. */
export type OnSettled = (outcome: SettleOutcome) => void;

/** One event on its way to this endpoint. `detached`: no longer in a lane (disable or shutdown took the lanes). */
interface Delivery {
  item: PipelineEvent;
  onSettled?: OnSettled;
  /** The structured JSON, made at the first attempt and signed again on every attempt. */
  body: StructuredBody;
  attempts: number;
  retryAt?: number;
  timer?: NodeJS.Timeout;
  detached?: 'endpoint_disabled' | 'shutdown';
}

const USER_AGENT = 'chatbridge-webhooks/1';

/**
 * An event's structured JSON (`toStructured`), made when an attempt first needs it and then kept, so an event waiting
 * in a lane holds no serialized copy (nor the collector's work of keeping one alive), and a sink that feeds several
 * endpoints serializes each event once for all of them.
 */
export class StructuredBody {
  private made?: string;

  constructor(private readonly event: AnyCanonicalEvent) {}

  /** The JSON text; throws what JSON.stringify throws (an event it cannot write is a bug). */
  text(): string {
    return (this.made ??= toStructured(this.event));
  }
}

/** How the endpoint is fed. */
export interface EndpointOptions {
  /**
   * The source offers undelivered events again after a restart (the Kafka consumer): at shutdown they are
   * released, not written to the dead-letter file.
   */
  durable?: boolean;
  /** Jitter source (tests pin it). */
  random?: () => number;
  /** Told when the endpoint is disabled (410) or re-enabled, for the `chatbridge.webhook.status` event. */
  onStateChange?: (change: EndpointStateChange) => void;
}

/** A change between `active` and `disabled`. */
export interface EndpointStateChange {
  state: 'active' | 'disabled';
  previous: 'active' | 'disabled';
  reason: 'gone' | 'enabled';
  httpStatus?: number;
}

/**
 * The delivery worker of one endpoint: a per-partitionkey FIFO (a retrying event holds back only its own key),
 * up to `concurrency` keys in flight, an optional rate limit, a circuit breaker, retries per the policy table,
 * and dead letters for whatever cannot be delivered. `submit` never blocks. The source of events is not its
 * concern: the webhook sink feeds it from the pipeline, a Kafka consumer can feed it the same way.
 */
export class WebhookEndpoint {
  private readonly lanes = new KeyedLanes<Delivery>();
  private readonly inFlight = new Set<Delivery>();
  /** In-flight attempts whose event left the lanes (disable, shutdown): still held until they settle. */
  private detachedInFlight = 0;
  private readonly waiting = new Set<Delivery>();
  private readonly signer: WebhookSigner;
  private readonly breaker: EndpointBreaker;
  private readonly rate?: RateLimiter;
  private readonly aborter = new AbortController();
  private readonly labels: { endpoint: string };
  /** `chatbridge_events_out_total{sink="webhooks"}` series by channel and type (per endpoint: its own series are the `webhook_*` ones). */
  private readonly eventsOut: ReturnType<Metrics['eventsOutOf']>;
  /** This endpoint's `chatbridge_webhook_attempts_total` and `chatbridge_webhook_delivered_total`, counted once per event. */
  private readonly attemptCount: HotCount;
  private readonly deliveredCount: HotCount;
  private accepting = true;
  private stopped = false;
  private disabledAt?: Date;
  private pumpTimer?: NodeJS.Timeout;
  private pumpAt = 0;
  private last: Pick<EndpointSnapshot, 'lastStatus' | 'lastError'> = {};
  /** Epoch ms, turned into ISO strings only when the API asks (`snapshot`), not on every attempt. */
  private lastAttemptMs?: number;
  private lastDeliveredMs?: number;
  private capacityWaiters: Array<() => void> = [];

  constructor(
    readonly cfg: WebhookConfig,
    private readonly transport: WebhookTransport,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: EndpointOptions = {},
  ) {
    this.labels = { endpoint: cfg.id };
    this.eventsOut = metrics.eventsOutOf('webhooks');
    this.attemptCount = metrics.hotCount(metrics.webhookAttempts, this.labels);
    this.deliveredCount = metrics.hotCount(metrics.webhookDelivered, this.labels);
    metrics.readAtScrape(metrics.webhookPending, this.labels, () => this.pending);
    // Every attempt in flight listens for shutdown: up to `concurrency` listeners, legitimately.
    setMaxListeners(0, this.aborter.signal);
    this.signer = new WebhookSigner(cfg.secret, cfg.previousSecret);
    this.breaker = new EndpointBreaker(cfg.circuitBreaker.failures, cfg.circuitBreaker.halfOpenAfterMs, (s) => this.onBreaker(s));
    if (cfg.ratePerSecond) this.rate = new RateLimiter(cfg.ratePerSecond);
    metrics.webhookDisabled.set(this.labels, 0);
    metrics.webhookCircuitOpen.set(this.labels, 0);
  }

  /** Events held (queued, in flight, waiting to retry). */
  get pending(): number {
    return this.lanes.size + this.detachedInFlight;
  }

  /**
   * Takes one event; never blocks. `onSettled` is told once how it ended. Disabled: dead-lettered at once.
   * Full (`maxPending`) or stopping: dead-lettered at once for a memory source; a durable source waits for
   * `whenCapacity` before submitting, and what it submits while stopping is released (it will offer it again).
   * `body`: the event's structured JSON, when the caller shares one between endpoints.
   */
  submit(item: PipelineEvent, onSettled?: OnSettled, body = new StructuredBody(item.event)): void {
    const d: Delivery = { item, onSettled, body, attempts: 0 };
    if (!this.accepting) return this.opts.durable ? this.release(d) : this.deadLetter(d, 'shutdown', 'endpoint stopping', true);
    if (this.disabledAt) return this.deadLetter(d, 'endpoint_disabled', 'endpoint disabled (it answered 410)');
    if (!this.hasCapacity()) return this.deadLetter(d, 'webhook_queue_full', `webhook queue full (${this.cfg.maxPending} events)`);
    this.lanes.push(item.event.partitionkey, d);
    this.heldChanged();
    this.pump();
  }

  /** True while fewer than `maxPending` events are held (or the endpoint is stopping: submits no longer wait). */
  hasCapacity(): boolean {
    return this.lanes.size < this.cfg.maxPending || !this.accepting;
  }

  /** Resolves when `hasCapacity` is true again. */
  whenCapacity(): Promise<void> {
    if (this.hasCapacity()) return Promise.resolve();
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  /** Re-enables an endpoint disabled by 410 and closes an open circuit breaker. */
  enable(): void {
    if (this.disabledAt) {
      this.disabledAt = undefined;
      this.metrics.webhookDisabled.set(this.labels, 0);
      this.log.info('webhook endpoint re-enabled');
      this.opts.onStateChange?.({ state: 'active', previous: 'disabled', reason: 'enabled' });
    }
    if (this.breaker.state !== 'closed') this.breaker.reset();
    this.pump();
  }

  /** The API's view. */
  snapshot(): EndpointSnapshot {
    const u = new URL(this.cfg.url);
    const state: EndpointState = this.disabledAt ? 'disabled' : this.breaker.state !== 'closed' ? 'circuit_open' : this.waiting.size ? 'retrying' : 'active';
    return {
      id: this.cfg.id, url: `${u.origin}${u.pathname}`, state, pending: this.pending, inFlight: this.inFlight.size, ...this.last,
      lastAttemptAt: isoOf(this.lastAttemptMs), lastDeliveredAt: isoOf(this.lastDeliveredMs), disabledAt: this.disabledAt?.toISOString(),
    };
  }

  /**
   * Keeps delivering until nothing is held or nothing more can happen before the deadline; then aborts what is
   * in flight and writes every event still held to the dead-letter file (reason `shutdown`).
   */
  async stop(deadlineMs: number): Promise<void> {
    this.accepting = false;
    this.wakeCapacityWaiters();
    const deadline = Date.now() + deadlineMs;
    while (this.lanes.size && this.nextProgressAt() <= deadline) await sleep(Math.max(1, Math.min(25, deadline - Date.now())));
    this.stopped = true;
    clearTimeout(this.pumpTimer);
    this.detachAll('shutdown');
    this.aborter.abort();
    const settleBy = Date.now() + 2000;
    while (this.inFlight.size && Date.now() < settleBy) await sleep(5);
    this.heldChanged();
    await this.transport.close();
  }

  private pump(): void {
    if (this.stopped || this.disabledAt) return;
    while (this.inFlight.size < this.cfg.concurrency && this.lanes.hasReady()) {
      const wait = this.breaker.waitMs();
      if (wait === Infinity) return; // a probe is out: its end pumps again
      if (wait > 0) return this.pumpIn(wait);
      const rateWait = this.rate?.take() ?? 0;
      if (rateWait > 0) return this.pumpIn(rateWait);
      const next = this.lanes.take();
      if (next) void this.attempt(next.key, next.item);
    }
  }

  private pumpIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.pumpTimer && this.pumpAt <= at) return;
    clearTimeout(this.pumpTimer);
    this.pumpAt = at;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, ms);
  }

  private async attempt(key: string, d: Delivery): Promise<void> {
    let body: string;
    try {
      body = d.body.text();
    } catch (err) {
      // Not a network failure to retry: the event itself cannot be written (a bug). The pump that called this goes on
      // with the next ready lane.
      this.lanes.done(key);
      this.unserializable(d, err);
      this.heldChanged();
      return;
    }
    this.inFlight.add(d);
    let failure: WebhookAttemptError | undefined;
    let status: number | undefined;
    let sent = true;
    try {
      status = await this.breaker.execute(() => this.send(d, body));
    } catch (err) {
      if (err instanceof WebhookAttemptError) failure = err;
      else if (err instanceof BrokenCircuitError) sent = false;
      else failure = classifyError(err); // shutdown abort (or a bug): settled below by `detached`
    } finally {
      this.inFlight.delete(d);
      if (d.detached) this.detachedInFlight--;
    }
    if (!sent) this.lanes.requeue(key);
    else this.settle(key, d, status, failure);
    this.heldChanged();
    this.pump();
  }

  /** One HTTP attempt; resolves with the 2xx status, rejects with the policy's verdict. */
  private async send(d: Delivery, body: string): Promise<number> {
    d.attempts++;
    this.attemptCount.inc();
    const now = new Date();
    this.lastAttemptMs = now.getTime();
    const headers = { 'content-type': 'application/cloudevents+json', 'user-agent': USER_AGENT, ...this.signer.sign(d.item.event.id, body, now) };
    let res;
    try {
      res = await this.transport.post({ body, headers, timeoutMs: this.cfg.timeoutMs, signal: this.aborter.signal });
    } catch (err) {
      if (this.aborter.signal.aborted) throw new BridgeError('shutdown', 'attempt aborted at shutdown', { retriable: false, cause: err });
      throw classifyError(err);
    }
    const failure = classifyResponse(res);
    if (failure) throw failure;
    return res.status;
  }

  private settle(key: string, d: Delivery, status: number | undefined, failure: WebhookAttemptError | undefined): void {
    if (!failure) {
      this.last.lastStatus = status;
      this.lastDeliveredMs = Date.now();
      this.deliveredCount.inc();
      this.eventsOut(d.item.event.channelid ?? '', d.item.event.type).inc();
      this.metrics.webhookLatency.observe(this.labels, (performance.now() - d.item.receivedAt) / 1000);
      if (!d.detached) this.lanes.done(key);
      d.onSettled?.('delivered');
      return;
    }
    if (!(failure.code === 'shutdown' && this.stopped)) {
      this.last.lastStatus = failure.status;
      this.last.lastError = failure.message;
      this.metrics.webhookFailures.inc({ ...this.labels, class: failure.outcome });
    }
    if (d.detached === 'shutdown' && this.opts.durable) return this.release(d);
    if (d.detached) return this.deadLetter(d, d.detached, failure.message, d.detached === 'shutdown', failure.status);
    if (failure.action === 'disable') return this.disable(key, d, failure);
    if (!failure.retriable) {
      this.lanes.done(key);
      return this.deadLetter(d, 'webhook_rejected', failure.message, false, failure.status);
    }
    if (this.stopped) return; // left in its lane: the shutdown dead letter takes it
    const delay = nextDelay(this.cfg.retrySchedule, d.attempts, failure.retryAfterMs, this.opts.random ?? Math.random);
    if (delay === undefined) {
      this.lanes.done(key);
      return this.deadLetter(d, 'webhook_retries_exhausted', failure.message, false, failure.status);
    }
    this.log.debug({ id: d.item.event.id, attempts: d.attempts, retryInMs: delay, code: failure.code }, 'webhook attempt failed; retrying');
    d.retryAt = Date.now() + delay;
    this.waiting.add(d);
    d.timer = setTimeout(() => {
      d.timer = undefined;
      this.waiting.delete(d);
      this.lanes.requeue(key);
      this.pump();
    }, delay);
  }

  /** 410: no further attempts; everything held is dead-lettered (`endpoint_disabled`) until `enable`. */
  private disable(key: string, d: Delivery, failure: WebhookAttemptError): void {
    this.disabledAt = new Date();
    this.metrics.webhookDisabled.set(this.labels, 1);
    this.lanes.done(key);
    this.deadLetter(d, 'endpoint_disabled', failure.message, false, failure.status);
    const count = this.detachAll('endpoint_disabled');
    this.opts.onStateChange?.({ state: 'disabled', previous: 'active', reason: 'gone', httpStatus: failure.status });
    this.log.error({ url: this.snapshot().url, deadLettered: count + 1 }, 'webhook endpoint answered 410 Gone: disabled; pending events dead-lettered; POST /v1/webhooks/:id/enable to resume');
  }

  /**
   * Empties the lanes: waiting and queued events are dead-lettered now (or, at shutdown with a durable source,
   * released to be offered again after a restart), in-flight ones when they settle.
   */
  private detachAll(reason: 'endpoint_disabled' | 'shutdown'): number {
    let count = 0;
    const release = reason === 'shutdown' && this.opts.durable;
    for (const d of this.lanes.drain()) {
      clearTimeout(d.timer);
      this.waiting.delete(d);
      d.detached = reason;
      if (this.inFlight.has(d)) {
        this.detachedInFlight++;
        continue;
      }
      count++;
      if (release) this.release(d);
      else this.deadLetter(d, reason, reason === 'shutdown' ? 'not delivered before shutdown' : 'endpoint disabled (it answered 410)', reason === 'shutdown');
    }
    if (reason === 'shutdown' && count) {
      if (release) this.log.info({ count }, 'webhook events not delivered before shutdown stay uncommitted in Kafka; they are delivered after the restart');
      else this.log.error({ count }, 'webhook events not delivered before shutdown were written to the dead-letter file');
    }
    this.heldChanged();
    return count;
  }

  /** Gives an undelivered event back to its durable source (shutdown): no dead letter, no commit. */
  private release(d: Delivery): void {
    d.onSettled?.('released');
  }

  /** The earliest time something could move: now while attempts are out or can start, else the first retry due. */
  private nextProgressAt(): number {
    const now = Date.now();
    if (this.inFlight.size) return now;
    if (this.lanes.hasReady() && !this.disabledAt) return now + Math.min(this.breaker.waitMs(now), 1e12);
    let first = Infinity;
    for (const d of this.waiting) first = Math.min(first, d.retryAt ?? now);
    return first;
  }

  /**
   * An event JSON cannot write, found at its first attempt: dead-lettered, counted and logged as the pipeline does a
   * sink that throws (reason `sink_threw`, origin the sink, so an endpoint's replay does not offer it again).
   */
  private unserializable(d: Delivery, err: unknown): void {
    const error = `not serializable for endpoint ${this.cfg.id}: ${describeError(err)}`;
    void this.deadLetters.sinkThrew('webhooks', d.item.event, error).then(() => d.onSettled?.('dead_lettered'));
  }

  /** Writes the dead letter, then tells the submitter (so an offset is committed only once the letter is written). */
  private deadLetter(d: Delivery, reason: string, error: string, fileOnly = false, status?: number): void {
    const { item, attempts } = d;
    const letter = { reason, origin: this.cfg.id, channelId: item.event.channelid, event: item.event, error, attempts, status };
    if (reason !== 'endpoint_disabled' && reason !== 'shutdown') this.log.warn({ id: item.event.id, reason, attempts, status }, 'webhook event dead-lettered');
    if (fileOnly) {
      this.deadLetters.writeFile(letter);
      d.onSettled?.('dead_lettered');
      return;
    }
    void this.deadLetters.write(letter).then(() => d.onSettled?.('dead_lettered'));
  }

  private wakeCapacityWaiters(): void {
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const w of waiters) w();
  }

  private onBreaker(state: BreakerState): void {
    this.metrics.webhookCircuitOpen.set(this.labels, state === 'closed' ? 0 : 1);
    if (state === 'open') this.log.warn({ failures: this.cfg.circuitBreaker.failures, probeInMs: this.cfg.circuitBreaker.halfOpenAfterMs }, 'webhook circuit breaker open: deliveries wait for a probe');
    else if (state === 'closed') this.log.info('webhook circuit breaker closed: deliveries resume');
    if (state !== 'half_open') this.pump();
  }

  /** After the events held changed: a source waiting for capacity goes on once there is some. */
  private heldChanged(): void {
    if (this.capacityWaiters.length && this.hasCapacity()) this.wakeCapacityWaiters();
  }
}

function isoOf(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

