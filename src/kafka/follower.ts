import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConsumerConfig } from '../config/config.schema';
import type { Metrics } from '../health/metrics';
import { ConsumerRunner, consumerSettings } from './consumer-runner';
import type { DeadLetters } from '../pipeline/dead-letters';
import { withinMs } from '../common/wait';
import { TopicEnds } from './topics';

/** What a `TopicFollower` needs besides the client. */
export interface TopicFollowOptions {
  topic: string;
  /** The follower's consumer group is `<groupPrefix>.<host>.<pid>.<random>`: one per process, never committed. */
  groupPrefix: string;
  consumer: KafkaConsumerConfig;
  /** Names the follower in logs (`command ledger follower`, `state topic follower`). */
  name: string;
  /** Where a record the handler keeps failing on goes (without: the log, whole). */
  deadLetters?: DeadLetters;
  metrics?: Metrics;
}

/**
 * Reads a topic from its beginning and then follows it, in the background, until stopped: every process sees every
 * record (its own group, no commits), in offset order per partition, on the shared consumer runner (restarts with
 * backoff; a record the handler keeps throwing on is dead-lettered after `kafka.consumer.poisonMaxTries` tries and
 * skipped, never fatal).
 *
 * "Caught up" means every record that existed when following began was handed over (the end offsets are taken
 * before the first read; an empty or missing topic is caught up at once): `caughtUp` waits for it, and `onCaughtUp`
 * is called right after the last such record, before any later one.
 */
export class TopicFollower {
  private readonly runner: ConsumerRunner;
  /** Where the topic ended when following began; undefined until known. */
  private ends?: TopicEnds;
  private done = false;
  private markDone!: () => void;
  private readonly reachedEnd = new Promise<void>((resolve) => (this.markDone = resolve));

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: TopicFollowOptions,
    onRecord: (message: KafkaMessage, partition: number) => void,
    log: Logger,
    private readonly onCaughtUp?: () => void,
  ) {
    const { topic, consumer: cfg, name } = opts;
    this.runner = new ConsumerRunner(kafka, {
      name, origin: name, topic, settings: consumerSettings(cfg), poisonMaxTries: cfg.poisonMaxTries, commit: false,
      groupId: () => `${opts.groupPrefix}.${hostname()}.${process.pid}.${randomUUID().slice(0, 8)}`,
      fromBeginning: () => true,
      beforeStart: async () => {
        if (!this.ends) await this.markEnds();
      },
      onPoisoned: (partition, offset) => this.progress(partition, Number(offset)),
    }, (message, partition) => {
      onRecord(message, partition);
      this.progress(partition, Number(message.offset));
    }, { log, deadLetters: opts.deadLetters, metrics: opts.metrics });
  }

  /** Starts following in the background. */
  start(): void {
    this.runner.start();
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
    await this.runner.stop(this.opts.consumer.sessionTimeoutMs);
  }

  /** Where the topic ends now. */
  private async markEnds(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      this.ends = await TopicEnds.read(admin, this.opts.topic);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (this.ends.reached) this.reached();
  }

  private progress(partition: number, offset: number): void {
    if (this.ends?.pass(partition, offset)) this.reached();
  }

  private reached(): void {
    if (this.done) return;
    this.done = true;
    this.markDone();
    this.onCaughtUp?.();
  }
}
