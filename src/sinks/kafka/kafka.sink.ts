import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay } from '../../common/backoff';
import { describeError } from '../../common/errors';
import type { KafkaConfig } from '../../config/config.schema';
import type { PipelineEvent } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import type { DeadLetter, DeadLetterTarget, DeadLetters } from '../../pipeline/dead-letters';
import type { Sink } from '../sink.interface';
import { EventQueue } from './event-queue';
import { toKafkaMessage } from './kafka.record';

/**
 * Publishes events to `topics.events` with an idempotent producer (`acks: -1`). One produce request is in
 * flight at a time and holds the oldest queued events, so order is kept for every key (and therefore every
 * conversation); while it is in flight newer events queue up and form the next, larger batch.
 *
 * When Kafka is down, the batch at the head is retried with capped backoff forever, and events wait in a
 * bounded in-memory queue (metric `chatbridge_sink_queue_depth`, a warning past `warnQueue`). An event that
 * finds the queue full is dead-lettered to the file (reason `queue_full`), never dropped silently.
 */
export class KafkaSink implements Sink, DeadLetterTarget {
  readonly name = 'kafka';
  private readonly producer: Producer;
  private readonly queue = new EventQueue();
  private up = false;
  private accepting = true;
  private stopped = false;
  private wake?: () => void;
  private loop?: Promise<void>;
  private failures = 0;
  private warnedDepth = false;
  private abortWait?: () => void;

  constructor(
    private readonly kafka: Kafka,
    private readonly cfg: KafkaConfig,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    // The Java client's murmur2 partitioner, so keys land where other Kafka clients would put them.
    this.producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true, retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 } });
    this.metrics.sinkUp.set({ sink: this.name }, 0);
  }

  publish(item: PipelineEvent): void {
    if (!this.accepting) {
      this.deadLetters.writeFile({ reason: 'shutdown', origin: this.name, channelId: item.event.channelid, event: item.event });
      return;
    }
    if (this.queue.length >= this.cfg.producer.maxQueue) {
      this.deadLetters.writeFile({ reason: 'queue_full', origin: this.name, channelId: item.event.channelid, event: item.event, error: `kafka queue full (${this.cfg.producer.maxQueue} events)` });
      return;
    }
    this.queue.push(item);
    const depth = this.queue.length;
    this.metrics.queueDepth.set({ sink: this.name }, depth);
    if (depth >= this.cfg.producer.warnQueue && !this.warnedDepth) {
      this.warnedDepth = true;
      this.log.warn({ depth, maxQueue: this.cfg.producer.maxQueue }, 'kafka queue is growing: Kafka is slow or unreachable');
    }
    this.wake?.();
  }

  async start(): Promise<void> {
    this.loop = this.run();
  }

  ready(): boolean {
    return this.up;
  }

  depth(): number {
    return this.queue.length;
  }

  /** Dead-letter target: `topics.deadLetter`, reason and origin in headers. */
  available(): boolean {
    return this.up && !this.stopped;
  }

  async write(item: DeadLetter): Promise<void> {
    const headers: Record<string, string> = { dlq_reason: item.reason, dlq_origin: item.origin, 'content-type': 'application/json' };
    if (item.channelId) headers.dlq_channelid = item.channelId;
    if (item.error) headers.dlq_error = item.error.slice(0, 1000);
    if (item.attempts !== undefined) headers.dlq_attempts = String(item.attempts);
    if (item.status !== undefined) headers.dlq_status = String(item.status);
    if (item.event) headers.ce_id = item.event.id;
    await this.producer.send({
      topic: this.cfg.topics.deadLetter,
      acks: -1,
      messages: [{ key: item.event?.partitionkey ?? item.channelId ?? null, value: JSON.stringify(item.event ?? item.frame ?? null), headers }],
    });
  }

  async stop(deadlineMs: number): Promise<void> {
    this.accepting = false;
    const deadline = Date.now() + deadlineMs;
    while (this.queue.length && Date.now() < deadline && this.loop) {
      await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
    }
    this.stopped = true;
    this.abortWait?.();
    this.wake?.();
    await this.loop;
    const left = this.queue.take(this.queue.length);
    for (const item of left) this.deadLetters.writeFile({ reason: 'shutdown', origin: this.name, channelId: item.event.channelid, event: item.event, error: 'not delivered to Kafka before shutdown' });
    if (left.length) this.log.error({ count: left.length }, 'events not delivered to Kafka before shutdown were written to the dead-letter file');
    this.metrics.queueDepth.set({ sink: this.name }, 0);
    await this.producer.disconnect().catch(() => undefined);
    this.setUp(false);
  }

  private async run(): Promise<void> {
    let connected = false;
    while (!this.stopped) {
      if (!this.queue.length && connected) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      try {
        if (!connected) {
          await this.producer.connect();
          connected = true;
          this.setUp(true);
          await this.maybeCreateTopics();
          continue;
        }
        await this.sendBatch();
        if (this.failures) this.log.info({ afterFailures: this.failures }, 'kafka delivery resumed');
        this.failures = 0;
        this.setUp(true);
      } catch (err) {
        this.failures++;
        this.metrics.publishErrors.inc({ sink: this.name });
        this.setUp(false);
        const delay = Math.max(50, backoffDelay({ initialDelayMs: 200, maxDelayMs: this.cfg.producer.retryMaxDelayMs, multiplier: 2 }, this.failures - 1));
        const level = this.failures === 1 || this.failures % 20 === 0 ? 'warn' : 'debug';
        this.log[level]({ err: describeError(err), failures: this.failures, queued: this.queue.length, retryInMs: delay }, connected ? 'kafka produce failed; batch kept and retried' : 'kafka unreachable; events are queued');
        if (!connected || isConnectionError(err)) {
          connected = false;
          await this.producer.disconnect().catch(() => undefined);
        }
        await this.pause(delay);
      }
    }
  }

  private async sendBatch(): Promise<void> {
    const batch = this.queue.peek(this.cfg.producer.batchSize);
    await this.producer.send({
      topic: this.cfg.topics.events,
      acks: -1,
      compression: this.cfg.producer.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      messages: batch.map((b) => toKafkaMessage(b.event)),
    });
    this.queue.take(batch.length);
    const now = performance.now();
    for (const b of batch) {
      this.metrics.eventsOut.inc({ sink: this.name, channel: b.event.channelid ?? '', type: b.event.type });
      this.metrics.publishLatency.observe({ sink: this.name }, (now - b.receivedAt) / 1000);
    }
    this.metrics.queueDepth.set({ sink: this.name }, this.queue.length);
    if (this.queue.length < this.cfg.producer.warnQueue / 2) this.warnedDepth = false;
  }

  /** `kafka.createTopics: true`: creates missing topics once. A broker that forbids it gets a warning, not a crash. */
  private async maybeCreateTopics(): Promise<void> {
    if (!this.cfg.createTopics) return;
    const admin = this.kafka.admin();
    const { events, commands, deadLetter, state, commandLedger } = this.cfg.topics;
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const missing = [events, commands, deadLetter, state, commandLedger].filter((t) => !existing.has(t));
      if (missing.length) {
        // The state topic keeps only each channel's latest record, however old; the ledger each command's latest state.
        const configEntries = (topic: string) => (topic === state || topic === commandLedger ? [{ name: 'cleanup.policy', value: 'compact' }] : undefined);
        await admin.createTopics({ waitForLeaders: true, topics: missing.map((topic) => ({ topic, numPartitions: this.cfg.topicPartitions ?? -1, configEntries: configEntries(topic) })) });
        this.log.info({ topics: missing }, 'created missing Kafka topics');
      }
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'could not create Kafka topics (kafka.createTopics); continuing with what exists');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.abortWait = done;
    });
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.metrics.sinkUp.set({ sink: this.name }, up ? 1 : 0);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Errors after which the connection is rebuilt (kafkajs marks them by name, not by text). */
function isConnectionError(err: unknown): boolean {
  const name = (err as { name?: string })?.name ?? '';
  return ['KafkaJSConnectionError', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound', 'KafkaJSConnectionClosedError', 'KafkaJSNonRetriableError'].includes(name);
}
