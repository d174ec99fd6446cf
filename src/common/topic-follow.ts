import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { ensureTopicReady } from './topic-ready';
import type { KafkaConsumerConfig } from '../config/config.schema';
import { backoffDelay } from './backoff';
import { describeError } from './errors';
import { Pause } from './wait';

/** What a `TopicFollower` needs besides the client. */
export interface TopicFollowOptions {
  topic: string;
  /** The follower's consumer group is `<groupPrefix>.<host>.<pid>.<random>`: one per process, never committed. */
  groupPrefix: string;
  consumer: KafkaConsumerConfig;
  /** Names the follower in logs (`command ledger watcher`, `state topic follower`). */
  name: string;
}

/**
 * Reads a topic from its beginning and then follows it, in the background, until stopped: every process sees every
 * record (its own group, no commits), in offset order per partition. A start that fails, or a consumer that crashes
 * for good, starts over with backoff. Records the handler throws on are logged and skipped, never fatal.
 */
export class TopicFollower {
  private consumer?: Consumer;
  private stopped = false;
  private readonly pause = new Pause();

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: TopicFollowOptions,
    private readonly onRecord: (message: KafkaMessage, partition: number) => void,
    private readonly log: Logger,
  ) {}

  /** Starts following in the background. */
  start(): void {
    void this.run(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pause.cancel();
    await this.consumer?.disconnect().catch(() => undefined);
  }

  private async run(firstAttempt: number): Promise<void> {
    const { topic, consumer: cfg, name } = this.opts;
    for (let attempt = firstAttempt; !this.stopped; attempt++) {
      if (attempt > 0) await this.pause.wait(backoffDelay({ initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2 }, attempt - 1));
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
        if (!payload.restart && this.consumer === consumer) void this.run(1);
      });
      try {
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
}
