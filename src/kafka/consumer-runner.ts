import type { Consumer, ConsumerConfig, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay, CONSUMER_RESTART_BACKOFF } from '../common/backoff';
import { describeError } from '../common/errors';
import { ensureTopicReady } from './topics';
import { Pause, withinMs } from '../common/wait';
import type { Metrics } from '../health/metrics';
import type { DeadLetters } from '../pipeline/dead-letters';
import { deadRecord, isRetriable } from './poison';

/** What a `ConsumerRunner` needs to know about its consumer. */
export interface ConsumerRunnerOptions {
  /** Names the consumer in logs (`command consumer`, `state topic follower`, …). */
  name: string;
  /** `origin` of its dead letters. */
  origin: string;
  topic: string;
  /** The group id, asked at each start (a follower takes a fresh group every time). */
  groupId: () => string;
  /** kafkajs settings: the group timeouts, assigners, … (`consumerSettings` gives the common ones). */
  settings: Omit<ConsumerConfig, 'groupId' | 'retry'>;
  /** Read from the oldest record where the group has no committed progress (asked at each start). */
  fromBeginning: () => boolean;
  /** Tries of a record whose handler throws an error not declared retriable, before it is dead-lettered. */
  poisonMaxTries: number;
  /** Commit each finished record (true), or leave commits to the owner (`commitOffsets`) or to nobody. */
  commit: boolean;
  /** Partitions handled at the same time (default 1). */
  concurrency?: number;
  /** Wait for the topic to have partitions before joining (default true; false never creates the topic). */
  ensureTopic?: boolean;
  /** Runs before each start; a throw counts as a failed start. */
  beforeStart?: () => Promise<void>;
  /** The group's assignment after each rebalance (partitions of `topic`, negotiated protocol). */
  onGroupJoin?: (partitions: number[], protocol: string) => void;
  onHeartbeat?: () => void;
  onRebalancing?: () => void;
  /** A start failed or the consumer crashed: the group could not be reached (it is retried with backoff). */
  onUnreachable?: () => void;
  /** A record was dead-lettered by the poison policy (an owner that tracks offsets itself finishes it). */
  onPoisoned?: (partition: number, offset: string) => void;
}

/** What a handler may use while it holds a record. */
export interface RecordContext {
  heartbeat(): Promise<void>;
  /** False once the batch is stale, the consumer stopping or the partition revoked: give the record back. */
  live(): boolean;
  /** The partition's high watermark as of the batch (for lag). */
  highWatermark: string;
}

/**
 * Handles one record. Resolves when done (`false`: not taken now, it is fetched again; the handler arranged when).
 * Throws an error with `retriable: true` to have it offered again after a backoff, as often as needed; any other
 * throw is retried at most `poisonMaxTries` times in all, then the record is dead-lettered and the partition moves on.
 */
export type RecordHandler = (message: KafkaMessage, partition: number, ctx: RecordContext) => Promise<boolean | void> | boolean | void;

/** Where a runner reports. Without dead letters (a bounded scan), a poison record is written to the log whole. */
export interface ConsumerRunnerDeps {
  log: Logger;
  metrics?: Metrics;
  deadLetters?: DeadLetters;
}

/** The common kafkajs settings of `kafka.consumer` (session timeout and a heartbeat a third of it, at most 3 s). */
export function consumerSettings(cfg: { maxWaitTimeMs: number; sessionTimeoutMs: number }): ConsumerRunnerOptions['settings'] {
  return { maxWaitTimeInMs: cfg.maxWaitTimeMs, sessionTimeout: cfg.sessionTimeoutMs, heartbeatInterval: Math.min(3000, Math.floor(cfg.sessionTimeoutMs / 3)) };
}

/**
 * The one Kafka consumer loop: connect, subscribe, run, restart with backoff (a start that fails, a consumer that
 * crashed for good), stop. Records are handed over in offset order per partition with one poison-record policy
 * (see `RecordHandler`): a failing record is offered again after a backoff with its partition paused, so other
 * partitions go on, and a record that keeps failing costs `poisonMaxTries` tries and one dead letter, never the
 * partition.
 */
export class ConsumerRunner {
  private consumer?: Consumer;
  private stopping = false;
  private started = false;
  private readonly pause = new Pause();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The start under way (connect, subscribe, group join), if any. */
  private starting?: Promise<void>;
  /** True while that start is in the group join (`consumer.run`), the one step `stop` cannot interrupt. */
  private joining = false;
  /** Per partition: the record that failed last and how often in a row. */
  private readonly failures = new Map<number, { offset: string; tries: number }>();

  constructor(
    private readonly kafka: Pick<Kafka, 'consumer' | 'admin'>,
    private readonly opts: ConsumerRunnerOptions,
    private readonly handler: RecordHandler,
    private readonly deps: ConsumerRunnerDeps,
  ) {}

  /** True while a consumer runs (joined or joining), false before, between restarts and after `stop`. */
  get running(): boolean {
    return this.started && !this.stopping;
  }

  /** Starts in the background; Kafka may be down, it keeps trying with backoff until stopped. */
  start(): void {
    this.startInBackground(0);
  }

  /** Stops fetching, cancels backoffs and retry timers, leaves the group (at most `deadlineMs`). */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.pause.cancel();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // A start under way disconnects its consumer itself once it sees `stopping`. Disconnected from here during its
    // group join, a kafkajs consumer would still finish the join and then fetch on, a group member nobody stops: stop
    // waits for a join (bounded). Before the join (topic check, connect: Kafka may be unreachable for long) the start
    // checks `stopping` before joining and ends itself, so stop does not spend the shutdown's time waiting for it.
    // Once run() resolved the consumer is a running member even while `starting` is not yet cleared: disconnect it.
    if (this.starting && !this.started) return this.joining ? withinMs(this.starting, deadlineMs) : undefined;
    const consumer = this.consumer;
    if (consumer) await withinMs(consumer.disconnect().catch((err: unknown) => this.deps.log.warn({ err: describeError(err) }, `${this.opts.name} disconnect failed`)), deadlineMs);
  }

  /** Stops fetching every partition (the records in hand finish); used before a drain at shutdown. */
  pauseAll(): void {
    if (this.running) this.consumer?.pause([{ topic: this.opts.topic }]);
  }

  /** Stops fetching one partition; its next fetch starts at `offset`. */
  pausePartition(partition: number, offset: string): void {
    const consumer = this.consumer;
    if (!consumer || this.stopping) return;
    consumer.pause([{ topic: this.opts.topic, partitions: [partition] }]);
    consumer.seek({ topic: this.opts.topic, partition, offset });
  }

  /** Fetches a paused partition again. */
  resumePartition(partition: number): void {
    if (!this.stopping) this.consumer?.resume([{ topic: this.opts.topic, partitions: [partition] }]);
  }

  /** Moves a partition's position (e.g. where a new group starts). */
  seek(partition: number, offset: string): void {
    this.consumer?.seek({ topic: this.opts.topic, partition, offset });
  }

  /** Commits positions of the topic now (owners that commit out of order). */
  async commitOffsets(offsets: Array<{ partition: number; offset: string }>): Promise<void> {
    if (!this.consumer) throw new Error(`${this.opts.name} is not running`);
    await this.consumer.commitOffsets(offsets.map((o) => ({ topic: this.opts.topic, ...o })));
  }

  private startInBackground(firstAttempt: number): void {
    const starting = this.runUntilStarted(firstAttempt).finally(() => {
      if (this.starting === starting) this.starting = undefined;
    });
    this.starting = starting;
  }

  private async runUntilStarted(firstAttempt: number): Promise<void> {
    const { name, topic } = this.opts;
    for (let attempt = firstAttempt; !this.stopping; attempt++) {
      // Cancelled by `stop`: a stopping consumer does not wait out a backoff.
      if (attempt > 0) await this.pause.wait(backoffDelay(CONSUMER_RESTART_BACKOFF, attempt - 1));
      if (this.stopping) return;
      const consumer = this.create();
      try {
        await this.opts.beforeStart?.();
        // A group that joins before the topic has partitions is assigned none until a metadata refresh (minutes).
        if (this.opts.ensureTopic !== false) await ensureTopicReady(this.kafka as Kafka, topic);
        if (this.stopping) return;
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: this.opts.fromBeginning() });
        if (this.stopping) {
          await consumer.disconnect().catch(() => undefined);
          return;
        }
        this.joining = true;
        try {
          await consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: this.opts.concurrency ?? 1,
            eachBatch: (b) => this.onBatch(b),
          });
        } finally {
          this.joining = false;
        }
        this.started = true;
        if (this.stopping) await consumer.disconnect().catch(() => undefined);
        return;
      } catch (err) {
        this.deps.log.warn({ topic, err: describeError(err), attempt }, `${name} cannot start; retrying with backoff`);
        this.opts.onUnreachable?.();
        await consumer.disconnect().catch(() => undefined);
      }
    }
  }

  private create(): Consumer {
    const consumer = this.kafka.consumer({
      ...this.opts.settings,
      groupId: this.opts.groupId(),
      // A crash while `stop` disconnects (during the group join) must not bring the consumer back.
      retry: { retries: 5, restartOnFailure: async () => !this.stopping },
    });
    this.consumer = consumer;
    this.started = false;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (this.stopping || this.consumer !== consumer) return;
      this.deps.log.error({ topic: this.opts.topic, err: describeError(payload.error), restart: payload.restart }, `${this.opts.name} crashed`);
      this.opts.onUnreachable?.();
      // kafkajs restarts by itself after retriable errors only; after any other it has disconnected for good.
      if (!payload.restart) this.startInBackground(1);
    });
    const { onGroupJoin, onHeartbeat, onRebalancing, topic } = this.opts;
    if (onGroupJoin) consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => onGroupJoin(payload.memberAssignment[topic] ?? [], payload.groupProtocol));
    if (onHeartbeat) consumer.on(consumer.events.HEARTBEAT, () => onHeartbeat());
    if (onRebalancing) consumer.on(consumer.events.REBALANCING, () => onRebalancing());
    return consumer;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }: EachBatchPayload): Promise<void> {
    const { partition } = batch;
    const ctx: RecordContext = { heartbeat, live: () => !this.stopping && isRunning() && !isStale(), highWatermark: batch.highWatermark };
    let finished: string | undefined;
    let read = 0;
    try {
      for (const message of batch.messages) {
        if (!ctx.live()) return;
        if (!(await this.handle(partition, message, ctx))) return;
        resolveOffset(message.offset);
        finished = message.offset;
        read++;
        await heartbeat();
      }
    } finally {
      if (read) this.deps.metrics?.kafkaRecordsRead.inc({ reader: this.opts.name }, read);
      // Through the batch's own commit: the consumer's commitOffsets is a no-op once disconnect() began.
      if (this.opts.commit && finished !== undefined) {
        const offset = String(BigInt(finished) + 1n);
        await commitOffsetsIfNecessary({ topics: [{ topic: this.opts.topic, partitions: [{ partition, offset }] }] }).catch((err: unknown) => {
          // A rebalance took the partition: its next owner reads these records again.
          this.deps.log.warn({ topic: this.opts.topic, err: describeError(err), partition, offset }, `${this.opts.name}: offsets not committed`);
        });
      }
    }
  }

  /** True when the record is finished (handled or dead-lettered); false when it is to be fetched again. */
  private async handle(partition: number, message: KafkaMessage, ctx: RecordContext): Promise<boolean> {
    try {
      const taken = await this.handler(message, partition, ctx);
      this.failures.delete(partition);
      return taken !== false;
    } catch (err) {
      return this.failed(partition, message, err);
    }
  }

  private async failed(partition: number, message: KafkaMessage, err: unknown): Promise<boolean> {
    const { topic, name, poisonMaxTries } = this.opts;
    const last = this.failures.get(partition);
    const tries = last?.offset === message.offset ? last.tries + 1 : 1;
    const retriable = isRetriable(err);
    const where = { topic, partition, offset: message.offset, err: describeError(err) };
    if (!retriable && tries >= poisonMaxTries) {
      this.failures.delete(partition);
      await this.deadLetter(partition, message, err, tries);
      return true;
    }
    this.failures.set(partition, { offset: message.offset, tries });
    if (retriable) this.deps.log.warn({ ...where, tries }, `${name}: record refused for now; kept in Kafka and offered again`);
    else this.deps.log.warn({ ...where, tries, of: poisonMaxTries }, `${name}: record handler failed; offered again`);
    this.offerAgainLater(partition, message.offset, tries);
    return false;
  }

  /** Pauses the partition at the record, fetched again after a backoff that grows with its failures in a row. */
  private offerAgainLater(partition: number, offset: string, tries: number): void {
    this.pausePartition(partition, offset);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.stopping) this.resumePartition(partition);
    }, Math.max(100, backoffDelay(CONSUMER_RESTART_BACKOFF, tries - 1)));
    this.timers.add(timer);
  }

  private async deadLetter(partition: number, message: KafkaMessage, err: unknown, tries: number): Promise<void> {
    const { topic, name, origin } = this.opts;
    const record = deadRecord(topic, partition, message);
    const error = describeError(err);
    this.deps.metrics?.refused.inc({ origin: 'consumer', reason: 'poison_record' });
    const letter = { reason: 'poison_record', origin, error, attempts: tries, record };
    if (!this.deps.deadLetters) {
      this.deps.log.error({ topic, partition, offset: message.offset, err: error, tries, deadLetter: letter }, `${name}: poison record skipped after ${tries} tries (written here whole)`);
    } else {
      this.deps.log.error({ topic, partition, offset: message.offset, err: error, tries }, `${name}: poison record dead-lettered after ${tries} tries; the partition moves on`);
      await this.deps.deadLetters.write(letter);
    }
    this.opts.onPoisoned?.(partition, message.offset);
  }
}
