import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay, CONSUMER_RESTART_BACKOFF } from '../../common/backoff';
import { describeError } from '../../common/errors';
import { ensureTopicReady } from '../../common/topic-ready';
import { Pause, withinMs } from '../../common/wait';
import type { KafkaConsumerConfig } from '../../config/config.schema';
import type { PipelineEvent } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import { fromKafkaMessage } from '../kafka/kafka.record';
import { OffsetTracker } from './offset-tracker';
import type { WebhookEndpoint } from './webhook.endpoint';
import type { EventFilter } from './webhook.filter';

/** What one source needs besides the endpoint. */
export interface KafkaSourceOptions {
  topic: string;
  groupId: string;
  consumer: KafkaConsumerConfig;
  startFrom: 'latest' | 'earliest';
  /** Longest wait at start for the topic's positions (Kafka may be down; start must not hang on it). */
  startTimeoutMs: number;
}

const HEARTBEAT_EVERY_MS = 1000;

/**
 * Feeds one webhook endpoint from `topics.events` through its own consumer group, so what the endpoint has not
 * finished survives a crash: an offset is committed only when every event before it in its partition is
 * delivered or dead-lettered (OffsetTracker). After a restart the group resumes at the committed offset and
 * re-sends what was in flight, with the same `webhook-id` (at least once).
 *
 * Backpressure: when the endpoint holds `maxPending` events (its receiver is slow, down or retrying), the batch
 * loop waits for capacity and fetches nothing more; events stay in Kafka rather than being dead-lettered.
 */
export class KafkaWebhookSource {
  private readonly consumer: Consumer;
  private readonly trackers = new Map<number, OffsetTracker>();
  /** Partitions with no committed progress when the bridge started, and where they start (`latest`). */
  private startAt = new Map<number, string>();
  private readonly highWatermarks = new Map<number, bigint>();
  private readonly labels: { endpoint: string };
  private stopping = false;
  private running = false;
  private readonly pause = new Pause();
  private commitTimer?: NodeJS.Timeout;
  private committing = Promise.resolve();

  constructor(
    private readonly kafka: Kafka,
    private readonly endpoint: WebhookEndpoint,
    private readonly filter: EventFilter,
    private readonly opts: KafkaSourceOptions,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.labels = { endpoint: endpoint.cfg.id };
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      maxWaitTimeInMs: opts.consumer.maxWaitTimeMs,
      sessionTimeout: opts.consumer.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(opts.consumer.sessionTimeoutMs / 3)),
      allowAutoTopicCreation: true,
      // A crash while `stop` disconnects (during the group join) must not bring the consumer back.
      retry: { retries: 5, restartOnFailure: async () => !this.stopping },
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => this.onJoin(payload.memberAssignment[opts.topic] ?? []));
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      this.log.error({ err: describeError(payload.error), restart: payload.restart }, 'webhook consumer crashed');
      // kafkajs restarts by itself after retriable errors only; after any other it has disconnected for good.
      // This endpoint must not go quiet: start over (progress is in the committed offsets).
      if (!payload.restart && !this.stopping) {
        this.running = false;
        void this.runUntilStarted(true, 1);
      }
    });
  }

  /**
   * Records where a new group starts, then joins the group in the background (Kafka may be down: it keeps
   * trying). Must run before the channels produce, so `latest` means "the end of the topic at start".
   */
  async start(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.opts.startTimeoutMs)));
    // A late answer is ignored: the consumer then reads partitions without progress from the beginning.
    const positions = await Promise.race([this.readStartPositions(), timedOut]);
    clearTimeout(timer);
    if (positions) {
      this.startAt = positions;
      if (positions.size) this.log.info({ partitions: positions.size }, 'new webhook consumer group: starts at the end of the events topic as of now');
    } else if (this.opts.startFrom === 'latest') {
      this.log.warn('cannot read the events topic positions now; partitions of this endpoint without committed progress will start from the oldest retained event');
    }
    void this.runUntilStarted(positions !== undefined);
  }

  /** Stops fetching, lets the endpoint finish or release what it holds, commits what finished, leaves the group. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.pause.cancel();
    if (this.running) this.consumer.pause([{ topic: this.opts.topic }]);
    await this.endpoint.stop(deadlineMs);
    clearTimeout(this.commitTimer);
    await this.commit();
    await this.consumer.disconnect().catch((err: unknown) => this.log.warn({ err: describeError(err) }, 'webhook consumer disconnect failed'));
  }

  /** Partitions without committed progress → the topic's end offset now (empty for `earliest`); undefined when Kafka cannot say. */
  private async readStartPositions(): Promise<Map<number, string> | undefined> {
    const positions = new Map<number, string>();
    if (this.opts.startFrom === 'earliest') return positions;
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const [committed] = await admin.fetchOffsets({ groupId: this.opts.groupId, topics: [this.opts.topic] });
      // A partition the answer does not list (the topic did not exist yet) has no progress either.
      const progressed = new Set((committed?.partitions ?? []).filter((p) => Number(p.offset) >= 0).map((p) => p.partition));
      const ends = await admin.fetchTopicOffsets(this.opts.topic);
      for (const { partition, high } of ends) if (!progressed.has(partition)) positions.set(partition, high);
      return positions;
    } catch (err) {
      this.log.debug({ err: describeError(err) }, 'reading the events topic positions failed');
      return undefined;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async runUntilStarted(positioned: boolean, firstAttempt = 0): Promise<void> {
    for (let attempt = firstAttempt; !this.stopping; attempt++) {
      // Cancelled by `stop`: a stopping endpoint does not wait out a backoff.
      if (attempt > 0) await this.pause.wait(backoffDelay(CONSUMER_RESTART_BACKOFF, attempt - 1));
      if (this.stopping) return;
      try {
        // A group that joins before the topic has partitions is assigned none until a metadata refresh (minutes).
        await ensureTopicReady(this.kafka, this.opts.topic);
        await this.consumer.connect();
        await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: this.opts.startFrom === 'earliest' || !positioned });
        await this.consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (b) => this.onBatch(b) });
        this.running = true;
        if (this.stopping) this.consumer.pause([{ topic: this.opts.topic }]);
        return;
      } catch (err) {
        this.log.warn({ err: describeError(err), attempt }, 'webhook consumer cannot start; retrying with backoff');
        await this.consumer.disconnect().catch(() => undefined);
      }
    }
  }

  /**
   * New assignment: forget revoked partitions. A partition of a new group starts where `start` recorded, and
   * that position is committed like finished progress: from then on the group has progress there, so a
   * restart resumes from it instead of taking "the end of the topic" again (which would skip what this run
   * left undelivered).
   */
  private onJoin(partitions: number[]): void {
    const assigned = new Set(partitions);
    for (const p of [...this.trackers.keys()]) if (!assigned.has(p)) this.trackers.delete(p);
    for (const p of partitions) {
      const start = this.startAt.get(p);
      if (start === undefined) continue;
      const tracker = this.tracker(p);
      this.consumer.seek({ topic: this.opts.topic, partition: p, offset: tracker.next !== undefined ? String(tracker.next) : start });
      tracker.startAt(BigInt(start));
    }
    // Not now: kafkajs accepts commits only once the runner is marked running, just after this event.
    if (this.startAt.size) this.scheduleCommit();
  }

  private tracker(partition: number): OffsetTracker {
    let tracker = this.trackers.get(partition);
    if (!tracker) this.trackers.set(partition, (tracker = new OffsetTracker()));
    return tracker;
  }

  private async onBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    const { partition } = batch;
    const tracker = this.tracker(partition);
    this.highWatermarks.set(partition, BigInt(batch.highWatermark));
    let beat = Date.now();
    for (const message of batch.messages) {
      if (this.stopping || !isRunning() || isStale()) return;
      const offset = BigInt(message.offset);
      if (tracker.seen(offset)) {
        resolveOffset(message.offset);
        continue;
      }
      // One capacity waiter at a time however long the endpoint stays full (heartbeats meanwhile), not one per heartbeat.
      let capacity: Promise<void> | undefined;
      while (!this.endpoint.hasCapacity()) {
        capacity ??= this.endpoint.whenCapacity().then(() => {
          capacity = undefined;
        });
        await withinMs(capacity, HEARTBEAT_EVERY_MS);
        if (this.stopping || !isRunning() || isStale()) return;
        await heartbeat();
        beat = Date.now();
      }
      tracker.take(offset);
      resolveOffset(message.offset);
      this.offer(partition, offset, message);
      if (Date.now() - beat > HEARTBEAT_EVERY_MS) {
        await heartbeat();
        beat = Date.now();
      }
    }
  }

  /** Hands one record to the endpoint; finishes it at once when it is not for this endpoint or not an event. */
  private offer(partition: number, offset: bigint, message: EachBatchPayload['batch']['messages'][number]): void {
    const finish = (): void => this.finish(partition, offset);
    let item: PipelineEvent;
    try {
      const event = fromKafkaMessage(message);
      // Latency counts from when the event was produced (the record's timestamp), in performance.now() time.
      item = { event, stableId: true, receivedAt: performance.now() - Math.max(0, Date.now() - Number(message.timestamp)) };
    } catch (err) {
      this.log.warn({ partition, offset: String(offset), err: describeError(err) }, 'record in the events topic is not a chatbridge event; dead-lettered');
      void this.deadLetters
        .write({ reason: 'undecodable_record', origin: this.endpoint.cfg.id, frame: { event: 'kafka.record', payload: { topic: this.opts.topic, partition, offset: String(offset), key: message.key?.toString('utf8') ?? null, value: message.value?.toString('base64') ?? null } }, error: describeError(err) })
        .then(finish);
      return;
    }
    if (!this.filter.matches(item.event)) return finish();
    this.endpoint.submit(item, (outcome) => {
      if (outcome !== 'released') finish();
    });
  }

  private finish(partition: number, offset: bigint): void {
    this.trackers.get(partition)?.finish(offset);
    this.scheduleCommit();
  }

  /** Commits every partition's finished prefix; one commit at a time. A failed commit is retried by the next one. */
  private commit(): Promise<void> {
    this.committing = this.committing.then(async () => {
      const due: Array<{ partition: number; offset: bigint }> = [];
      for (const [partition, tracker] of this.trackers) {
        const offset = tracker.toCommit();
        if (offset !== undefined) due.push({ partition, offset });
      }
      if (!due.length || !this.running) return;
      try {
        await this.consumer.commitOffsets(due.map(({ partition, offset }) => ({ topic: this.opts.topic, partition, offset: String(offset) })));
        for (const { partition, offset } of due) {
          this.trackers.get(partition)?.committedUpTo(offset);
          this.startAt.delete(partition);
          const high = this.highWatermarks.get(partition);
          if (high !== undefined) this.metrics.webhookConsumerLag.set({ ...this.labels, partition: String(partition) }, Number(high > offset ? high - offset : 0n));
        }
      } catch (err) {
        // A rebalance or a broker change: progress stays uncommitted and is committed by the next attempt (or
        // re-sent by the partition's next owner, with the same webhook-id).
        this.log.warn({ err: describeError(err) }, 'webhook progress commit failed; will retry');
        this.scheduleCommit();
      }
    });
    return this.committing;
  }

  /** Coalesces commits: at most one per `commitIntervalMs`. */
  private scheduleCommit(): void {
    if (this.commitTimer || this.stopping) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      void this.commit();
    }, this.opts.consumer.commitIntervalMs);
  }
}
