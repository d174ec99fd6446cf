import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConsumerConfig } from '../config/config.schema';
import { CONSUMER_RESTART_BACKOFF, backoffDelay } from './backoff';
import { describeError } from './errors';
import { ensureTopicReady } from './topic-ready';
import { Pause, withinMs } from './wait';

/** What a `TopicFollower` needs besides the client. */
export interface TopicFollowOptions {
  topic: string;
  /** The follower's consumer group is `<groupPrefix>.<host>.<pid>.<random>`: one per process, never committed. */
  groupPrefix: string;
  consumer: KafkaConsumerConfig;
  /** Names the follower in logs (`command ledger follower`, `state topic follower`). */
  name: string;
}

/**
 * Reads a topic from its beginning and then follows it, in the background, until stopped: every process sees every
 * record (its own group, no commits), in offset order per partition. A start that fails, or a consumer that crashes
 * for good, starts over with backoff. Records the handler throws on are logged and skipped, never fatal.
 *
 * "Caught up" means every record that existed when following began was handed over (the end offsets are taken
 * before the first read; an empty or missing topic is caught up at once): `caughtUp` waits for it, and `onCaughtUp`
 * is called right after the last such record, before any later one.
 */
export class TopicFollower {
  private consumer?: Consumer;
  private stopped = false;
  private readonly pause = new Pause();
  /** Partition → offset of its last record when following began; undefined until known, empty once caught up. */
  private ends?: Map<number, number>;
  private done = false;
  private markDone!: () => void;
  private readonly reachedEnd = new Promise<void>((resolve) => (this.markDone = resolve));

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: TopicFollowOptions,
    private readonly onRecord: (message: KafkaMessage, partition: number) => void,
    private readonly log: Logger,
    private readonly onCaughtUp?: () => void,
  ) {}

  /** Starts following in the background. */
  start(): void {
    void this.run();
  }

  /** True once the records that existed at the start were handed over. */
  get isCaughtUp(): boolean {
    return this.done;
  }

  /** Resolves true once caught up, false after `timeoutMs`. */
  async caughtUp(timeoutMs: number): Promise<boolean> {
    await withinMs(this.reachedEnd, timeoutMs);
    return this.done;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pause.cancel();
    await this.consumer?.disconnect().catch(() => undefined);
  }

  private async run(): Promise<void> {
    const { topic, consumer: cfg, name } = this.opts;
    for (let attempt = 0; !this.stopped; attempt++) {
      if (attempt > 0) await this.pause.wait(backoffDelay(CONSUMER_RESTART_BACKOFF, attempt - 1));
      if (this.stopped) return;
      const consumer = this.kafka.consumer({
        groupId: `${this.opts.groupPrefix}.${hostname()}.${process.pid}.${randomUUID().slice(0, 8)}`,
        maxWaitTimeInMs: cfg.maxWaitTimeMs,
        sessionTimeout: cfg.sessionTimeoutMs,
        heartbeatInterval: Math.min(3000, Math.floor(cfg.sessionTimeoutMs / 3)),
        // A crash while `stop` disconnects (during the group join) must not bring the follower back.
        retry: { retries: 5, restartOnFailure: async () => !this.stopped },
      });
      this.consumer = consumer;
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (this.stopped) return;
        this.log.warn({ topic, err: describeError(payload.error), restart: payload.restart }, `${name} crashed`);
        // kafkajs restarts by itself after retriable errors only; after any other the follower starts over.
        if (!payload.restart && this.consumer === consumer) void this.run();
      });
      try {
        if (!this.ends) await this.markEnds();
        // A group that joins before the topic has partitions is assigned none until a metadata refresh (minutes).
        await ensureTopicReady(this.kafka, topic);
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ message, partition }) => {
            try {
              this.onRecord(message, partition);
            } catch (err) {
              this.log.error({ topic, partition, offset: message.offset, err: describeError(err) }, `${name}: a record could not be applied; skipped`);
            }
            this.progress(partition, Number(message.offset));
          },
        });
        if (this.stopped) await consumer.disconnect();
        return;
      } catch (err) {
        this.log.warn({ topic, err: describeError(err), attempt }, `${name} cannot start; retrying with backoff`);
        await consumer.disconnect().catch(() => undefined);
      }
    }
  }

  /** Where the topic ends now (listTopics first: asking a missing topic's offsets could create it). */
  private async markEnds(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const ends = new Map<number, number>();
      if ((await admin.listTopics()).includes(this.opts.topic)) {
        for (const p of await admin.fetchTopicOffsets(this.opts.topic)) if (Number(p.high) > Number(p.low)) ends.set(p.partition, Number(p.high) - 1);
      }
      this.ends = ends;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (!this.ends.size) this.reached();
  }

  private progress(partition: number, offset: number): void {
    const end = this.ends?.get(partition);
    if (end === undefined || offset < end) return;
    this.ends?.delete(partition);
    if (!this.ends?.size) this.reached();
  }

  private reached(): void {
    if (this.done) return;
    this.done = true;
    this.markDone();
    this.onCaughtUp?.();
  }
}
