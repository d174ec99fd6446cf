import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { describeError } from '../../common/errors';
import { withinMs } from '../../common/wait';
import type { KafkaConsumerConfig } from '../../config/config.schema';
import type { PipelineEvent } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import { ConsumerRunner, consumerSettings, type RecordContext } from '../../kafka/consumer-runner';
import type { DeadLetters } from '../../pipeline/dead-letters';
import { fromKafkaMessage } from '../kafka/kafka.record';
import { deadRecord } from '../../kafka/poison';
import { OffsetTracker } from './offset-tracker';
import { StructuredBody, type WebhookEndpoint } from './webhook.endpoint';
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
 * Feeds one webhook endpoint from `topics.events` through its own consumer group (on the shared consumer runner),
 * so what the endpoint has not finished survives a crash: an offset is committed only when every event before it in
 * its partition is delivered or dead-lettered (OffsetTracker). After a restart the group resumes at the committed
 * offset and re-sends what was in flight, with the same `webhook-id` (at least once).
 *
 * Backpressure: when the endpoint holds `maxPending` events (its receiver is slow, down or retrying), the batch
 * loop waits for capacity and fetches nothing more; events stay in Kafka rather than being dead-lettered. While one
 * event retries for hours, the later offsets of its partition stay open: past `kafka.consumer.webhookMaxOpenOffsets`
 * of them the partition is paused (the others go on) and resumed once the stuck event finishes.
 */
export class KafkaWebhookSource {
  private readonly runner: ConsumerRunner;
  private readonly trackers = new Map<number, OffsetTracker>();
  /** Partitions paused because their tracker is full. */
  private readonly full = new Set<number>();
  /** Partitions with no committed progress when the bridge started, and where they start (`latest`). */
  private startAt = new Map<number, string>();
  private readonly highWatermarks = new Map<number, bigint>();
  private readonly labels: { endpoint: string };
  private positioned = false;
  private stopping = false;
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
    const cfg = opts.consumer;
    this.runner = new ConsumerRunner(kafka, {
      name: 'webhook consumer', origin: endpoint.cfg.id, topic: opts.topic, groupId: () => opts.groupId,
      settings: { ...consumerSettings(cfg), allowAutoTopicCreation: true }, poisonMaxTries: cfg.poisonMaxTries, commit: false,
      fromBeginning: () => opts.startFrom === 'earliest' || !this.positioned,
      onGroupJoin: (partitions) => this.onJoin(partitions),
      onPoisoned: (partition, offset) => {
        const tracker = this.tracker(partition);
        if (!tracker.seen(BigInt(offset))) tracker.take(BigInt(offset));
        this.finish(partition, BigInt(offset));
      },
    }, (message, partition, ctx) => this.onRecord(message, partition, ctx), { log, metrics, deadLetters });
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
      this.positioned = true;
      if (positions.size) this.log.info({ partitions: positions.size }, 'new webhook consumer group: starts at the end of the events topic as of now');
    } else if (this.opts.startFrom === 'latest') {
      this.log.warn('cannot read the events topic positions now; partitions of this endpoint without committed progress will start from the oldest retained event');
    }
    this.runner.start();
  }

  /** Stops fetching, lets the endpoint finish or release what it holds, commits what finished, leaves the group. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.runner.pauseAll();
    await this.endpoint.stop(deadlineMs);
    clearTimeout(this.commitTimer);
    await this.commit();
    await this.runner.stop(deadlineMs);
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

  /**
   * New assignment: forget revoked partitions. A partition of a new group starts where `start` recorded, and
   * that position is committed like finished progress: from then on the group has progress there, so a
   * restart resumes from it instead of taking "the end of the topic" again (which would skip what this run
   * left undelivered).
   */
  private onJoin(partitions: number[]): void {
    const assigned = new Set(partitions);
    for (const p of [...this.trackers.keys()]) if (!assigned.has(p)) this.trackers.delete(p);
    for (const p of [...this.full]) if (!assigned.has(p)) this.full.delete(p);
    for (const p of partitions) {
      const start = this.startAt.get(p);
      if (start === undefined) continue;
      const tracker = this.tracker(p);
      this.runner.seek(p, tracker.next !== undefined ? String(tracker.next) : start);
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

  /**
   * Takes one record: skips what this session already took (a refetch after a rejoin), waits while the endpoint is
   * full, pauses the partition while its tracker is full, and hands the record over. False: not taken now.
   */
  private async onRecord(message: KafkaMessage, partition: number, ctx: RecordContext): Promise<boolean> {
    const tracker = this.tracker(partition);
    this.highWatermarks.set(partition, BigInt(ctx.highWatermark));
    const offset = BigInt(message.offset);
    if (tracker.seen(offset)) return true;
    if (tracker.openCount >= this.opts.consumer.webhookMaxOpenOffsets) {
      this.full.add(partition);
      this.runner.pausePartition(partition, message.offset);
      this.log.warn({ partition, offset: message.offset, open: tracker.openCount }, 'webhook partition paused: too many offsets open behind an unfinished event (kafka.consumer.webhookMaxOpenOffsets); resumes as they drain');
      return false;
    }
    // One capacity waiter at a time however long the endpoint stays full (heartbeats meanwhile), not one per heartbeat.
    let capacity: Promise<void> | undefined;
    while (!this.endpoint.hasCapacity()) {
      capacity ??= this.endpoint.whenCapacity().then(() => {
        capacity = undefined;
      });
      await withinMs(capacity, HEARTBEAT_EVERY_MS);
      if (!ctx.live()) return false;
      await ctx.heartbeat();
    }
    tracker.take(offset);
    try {
      this.offer(partition, offset, message);
    } catch (err) {
      // Nothing took it over: give it back, so the runner's tries and dead letter decide.
      tracker.untake(offset);
      throw err;
    }
    return true;
  }

  /** Hands one record to the endpoint; finishes it at once when it is not for this endpoint or not an event. */
  private offer(partition: number, offset: bigint, message: KafkaMessage): void {
    const finish = (): void => this.finish(partition, offset);
    let item: PipelineEvent;
    try {
      const event = fromKafkaMessage(message);
      // Latency counts from when the event was produced (the record's timestamp), in performance.now() time.
      item = { event, stableId: true, receivedAt: performance.now() - Math.max(0, Date.now() - Number(message.timestamp)) };
    } catch (err) {
      this.log.warn({ partition, offset: String(offset), err: describeError(err) }, 'record in the events topic is not a chatbridge event; dead-lettered');
      void this.deadLetters
        .write({ reason: 'undecodable_record', origin: this.endpoint.cfg.id, record: deadRecord(this.opts.topic, partition, message), error: describeError(err) })
        .then(finish);
      return;
    }
    if (!this.filter.matches(item.event)) return finish();
    // Serialized here, not at the first attempt: an event JSON cannot write (a record nested deeper than
    // JSON.stringify's stack) throws to the runner, whose tries and poison dead letter keep the record whole.
    const body = new StructuredBody(item.event);
    body.text();
    this.endpoint.submit(item, (outcome) => {
      if (outcome !== 'released') finish();
    }, body);
  }

  private finish(partition: number, offset: bigint): void {
    const tracker = this.trackers.get(partition);
    tracker?.finish(offset);
    this.scheduleCommit();
    // Resumed below the bound (not at it), so a partition does not flap on every finished event.
    if (tracker && this.full.has(partition) && tracker.openCount < this.opts.consumer.webhookMaxOpenOffsets * 0.9) {
      this.full.delete(partition);
      this.runner.resumePartition(partition);
      this.log.info({ partition, open: tracker.openCount }, 'webhook partition resumed');
    }
  }

  /** Commits every partition's finished prefix; one commit at a time. A failed commit is retried by the next one. */
  private commit(): Promise<void> {
    this.committing = this.committing.then(async () => {
      const due: Array<{ partition: number; offset: bigint }> = [];
      for (const [partition, tracker] of this.trackers) {
        const offset = tracker.toCommit();
        if (offset !== undefined) due.push({ partition, offset });
      }
      if (!due.length || !this.runner.running) return;
      try {
        await this.runner.commitOffsets(due.map(({ partition, offset }) => ({ partition, offset: String(offset) })));
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
