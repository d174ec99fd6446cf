import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay } from '../../common/backoff';
import { describeError } from '../../common/errors';
import { Pause, withinMs } from '../../common/wait';
import type { KafkaConfig } from '../../config/config.schema';
import type { PipelineEvent } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import { javaCompatiblePartitioner } from '../../kafka/partitioner';
import { ProducePacer } from '../../kafka/produce-pacer';
import type { DeadLetter, DeadLetterTarget, DeadLetters } from '../../pipeline/dead-letters';
import type { DurableOutcome } from '../../pipeline/durable';
import type { Sink } from '../sink.interface';
import { fromKafkaMessage, toDeadLetterMessage, toKafkaMessage } from './kafka.record';
import { RecordQueue, recordBytes, type QueuedRecord } from './record-queue';
import { recordRefusal } from './refusal';

/** Longest wait for the producer to disconnect at shutdown (ms); the queue is in the file by then. */
const DISCONNECT_MS = 1000;
/**
 * Most JS heap the queued records' values may hold as strings (bytes: one per character of ASCII text, two per
 * character of any other, its most, plus `STRING_HEADER` each); values past it are held as UTF-8 Buffers outside the heap.
 */
export const MAX_QUEUED_TEXT_HEAP = 32 * 1024 * 1024;
/** A V8 string's header and alignment on a 64-bit heap, rounded up (bytes). */
export const STRING_HEADER = 24;
/** Time kept, per queued record, to write the dead-letter file before the shutdown deadline (ms; 0.02-0.045 measured). */
const SPILL_MS_PER_RECORD = 0.05;

/**
 * Publishes events to `topics.events` with an idempotent producer (`acks: -1`). Each event becomes its Kafka
 * record once, when it is queued. One produce request is in flight at a time and holds the oldest queued records
 * (at most `batchSize` and `maxBatchBytes`), so order is kept for every key (and therefore every conversation);
 * while it is in flight newer events queue up and form the next batch, which starts `lingerMs` after the previous
 * one at the earliest unless it is full (ProducePacer).
 *
 * When Kafka is down, the batch at the head is retried with capped backoff forever, and events wait in a queue
 * bounded by count and bytes (metric `chatbridge_sink_queue_depth`, a warning past `warnQueue`). An event that
 * finds the queue full is dead-lettered to the file (reason `queue_full`), never dropped silently. When the
 * broker refuses records themselves (too large, invalid), the batch is split until the refused record is alone;
 * that one is dead-lettered to the file (`kafka_record_refused`) and the others are sent, in order.
 */
export class KafkaSink implements Sink, DeadLetterTarget {
  readonly name = 'kafka';
  /** An event is durable once this sink has it acknowledged (inbound posts wait for it). */
  readonly durable = true;
  onSettled?: (id: string, outcome: DurableOutcome) => void;
  private readonly producer: Producer;
  private readonly queue = new RecordQueue();
  private up = false;
  private accepting = true;
  private stopped = false;
  /** Set once the queue was handed to the dead-letter file: a late acknowledgement no longer takes from it. */
  private spilled = false;
  private wake?: () => void;
  private loop?: Promise<void>;
  private failures = 0;
  private warnedDepth = false;
  /** The backoff between failed attempts; `stop` cancels it. */
  private readonly backoff = new Pause();
  /** Spaces the produce requests while batches are not full (`producer.lingerMs`). */
  private readonly pacer: ProducePacer;
  /** This sink's metric labels, one object for every update (some run once per event). */
  private readonly labels = { sink: this.name };
  /** `chatbridge_events_out_total{sink="kafka"}` by channel and type, counted per event at no cost (HotCount). */
  private readonly eventsOut: ReturnType<Metrics['eventsOutOf']>;

  constructor(
    kafka: Kafka,
    private readonly cfg: KafkaConfig,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Runs after each connect, before the queue is sent: the bridge creates the configured topics there (`kafka.createTopics`). */
    private readonly onConnected: () => Promise<void> = async () => undefined,
  ) {
    // The Java client's murmur2 partitioner (kafka/partitioner.ts), so keys land where other Kafka clients would put them.
    this.producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true, retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 } });
    this.pacer = new ProducePacer(cfg.producer.lingerMs);
    this.metrics.sinkUp.set({ sink: this.name }, 0);
    metrics.readAtScrape(metrics.queueDepth, this.labels, () => this.queue.length);
    this.eventsOut = metrics.eventsOutOf(this.name);
  }

  publish(item: PipelineEvent): void {
    const { event } = item;
    if (!this.accepting) {
      this.deadLetters.writeFile({ reason: 'shutdown', origin: this.name, channelId: event.channelid, event });
      this.settle({ durable: item.durable, stableId: item.stableId ? event.id : undefined }, 'dead_lettered');
      return;
    }
    const message = toKafkaMessage(event, this.cfg.producer.cloudEventsMode);
    const text = message.value as string;
    const valueBytes = Buffer.byteLength(text);
    // The value's JSON stays the string it was written as while the queue's strings hold little of the heap: kafkajs
    // writes it into the produce request once, and no Buffer is made per record before (a copy, an allocation and
    // off-heap memory for the GC to track, on every event). Past that bound, while Kafka is slow or down, values are
    // copied to UTF-8 outside the JS heap, so a queue up to `maxQueueBytes` does not grow the heap with it. ASCII
    // text takes a byte per character in the heap; any other is counted at two, its most.
    let heapBytes = STRING_HEADER + (valueBytes === text.length ? valueBytes : text.length * 2);
    if (this.queue.heapBytes + heapBytes > MAX_QUEUED_TEXT_HEAP) {
      message.value = Buffer.from(text);
      heapBytes = 0;
    }
    const record: QueuedRecord = { message, bytes: recordBytes(message, valueBytes), heapBytes, channelId: event.channelid, type: event.type, receivedAt: item.receivedAt, durable: item.durable, stableId: item.stableId ? event.id : undefined };
    const { maxQueue, maxQueueBytes, warnQueue } = this.cfg.producer;
    const full = this.queue.length >= maxQueue ? `${maxQueue} events` : this.queue.bytes + record.bytes > maxQueueBytes ? `${maxQueueBytes} bytes` : undefined;
    if (full) {
      this.metrics.refused.inc({ origin: this.name, reason: 'queue_full' });
      this.deadLetters.writeFile({ reason: 'queue_full', origin: this.name, channelId: event.channelid, event, error: `kafka queue full (${full})` });
      this.settle(record, 'dead_lettered');
      return;
    }
    this.queue.push(record);
    if (this.batchFull()) this.pacer.release();
    const depth = this.queue.length;
    if (depth >= warnQueue && !this.warnedDepth) {
      this.warnedDepth = true;
      this.log.warn({ depth, maxQueue, bytes: this.queue.bytes, maxQueueBytes }, 'kafka queue is growing: Kafka is slow or unreachable');
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
    await this.producer.send({ topic: this.cfg.topics.deadLetter, acks: -1, messages: [toDeadLetterMessage(item)] });
  }

  /**
   * Delivers what is queued until `deadlineMs`, then writes the rest to the dead-letter file, the batch in flight
   * included: a broker that accepts and never answers cannot hold shutdown, and what it may still acknowledge
   * later is a duplicate (same `ce_id`), not a loss.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.accepting = false;
    const deadline = Date.now() + deadlineMs;
    // Writing the file takes time too: that time is kept out of the wait, so stop ends by the deadline.
    const spillBy = () => deadline - Math.min(deadlineMs / 2, this.queue.length * SPILL_MS_PER_RECORD);
    while (this.queue.length && Date.now() < spillBy() && this.loop) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, spillBy() - Date.now()))));
    }
    this.stopped = true;
    this.backoff.cancel();
    this.pacer.release();
    this.wake?.();
    if (this.loop) await withinMs(this.loop, Math.max(0, spillBy() - Date.now()));
    this.spill();
    await withinMs(this.producer.disconnect(), Math.min(DISCONNECT_MS, Math.max(100, deadline - Date.now())));
    this.setUp(false);
  }

  /**
   * Writes everything still queued, the batch in flight included, to the dead-letter file (reason `shutdown`) and
   * stops the sink. Synchronous, so a process exit right after it loses nothing. Returns how many it wrote.
   */
  spill(): number {
    this.accepting = false;
    this.stopped = true;
    this.spilled = true;
    this.pacer.release();
    const left = this.queue.take(this.queue.length);
    for (const r of left) {
      this.deadLetters.writeFile({ reason: 'shutdown', origin: this.name, channelId: r.channelId, event: fromKafkaMessage(r.message), error: 'not acknowledged by Kafka before shutdown' });
      this.settle(r, 'dead_lettered');
    }
    if (left.length) this.log.error({ count: left.length }, 'events not acknowledged by Kafka before shutdown were written to the dead-letter file');
    return left.length;
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
          await this.onConnected();
          continue;
        }
        const { batchSize, maxBatchBytes } = this.cfg.producer;
        await this.pacer.wait(this.batchFull());
        // Stopped meanwhile: `stop` spills what is left, a spill took it already.
        if (this.stopped || !this.queue.length) continue;
        this.pacer.started();
        await this.deliver(this.queue.peekBatch(batchSize, maxBatchBytes));
        if (this.failures) this.log.info({ afterFailures: this.failures }, 'kafka delivery resumed');
        this.failures = 0;
        this.setUp(true);
      } catch (err) {
        if (this.spilled) return;
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
        await this.backoff.wait(delay);
      }
    }
  }

  /** The queue holds a whole produce request: it goes without lingering. */
  private batchFull(): boolean {
    return this.queue.length >= this.cfg.producer.batchSize || this.queue.bytes >= this.cfg.producer.maxBatchBytes;
  }

  /**
   * Sends `batch` (the head of the queue). When the broker refuses records themselves, the batch is split in
   * halves, sent in order, until the refused record is alone: that one is dead-lettered and the rest go on.
   * Any other error is thrown, and the head is retried as it is.
   */
  private async deliver(batch: QueuedRecord[]): Promise<void> {
    try {
      await this.send(batch);
    } catch (err) {
      const refusal = recordRefusal(err);
      if (!refusal || this.spilled) throw err;
      if (batch.length === 1) return this.refuse(batch[0], refusal, err);
      const half = Math.ceil(batch.length / 2);
      await this.deliver(batch.slice(0, half));
      await this.deliver(batch.slice(half));
    }
  }

  private async send(batch: QueuedRecord[]): Promise<void> {
    await this.producer.send({
      topic: this.cfg.topics.events,
      acks: -1,
      compression: this.cfg.producer.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      messages: batch.map((b) => b.message),
    });
    // Already in the dead-letter file: acknowledged after the shutdown deadline, so these are now duplicates.
    if (this.spilled) return;
    this.queue.take(batch.length);
    const now = performance.now();
    for (const b of batch) {
      this.eventsOut(b.channelId ?? '', b.type).inc();
      this.metrics.publishLatency.observe(this.labels, (now - b.receivedAt) / 1000);
      this.settle(b, 'delivered');
    }
    if (this.queue.length < this.cfg.producer.warnQueue / 2) this.warnedDepth = false;
  }

  /** The broker refused this record on its own: retrying cannot help, so it leaves the queue for the file. */
  private refuse(record: QueuedRecord, refusal: string, err: unknown): void {
    this.queue.take(1);
    this.metrics.refused.inc({ origin: this.name, reason: 'kafka_record_refused' });
    const event = fromKafkaMessage(record.message);
    // A record too large for Kafka is too large for the dead-letter topic as well: the file takes it.
    this.deadLetters.writeFile({ reason: 'kafka_record_refused', origin: this.name, channelId: record.channelId, event, error: `${refusal}: ${describeError(err)}` });
    this.settle(record, 'dead_lettered');
    this.log.warn({ refusal, id: event.id, type: record.type, bytes: record.bytes }, 'kafka refused one record; dead-lettered to the file, the rest go on');
  }

  /** Tells the event's input (inbound post) and the pipeline's dedupe what became of it. */
  private settle(record: Pick<QueuedRecord, 'durable' | 'stableId'>, outcome: DurableOutcome): void {
    record.durable?.(outcome);
    if (record.stableId) this.onSettled?.(record.stableId, outcome);
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.metrics.sinkUp.set({ sink: this.name }, up ? 1 : 0);
  }
}

/** Errors after which the connection is rebuilt (kafkajs marks them by name, not by text). */
function isConnectionError(err: unknown): boolean {
  const name = (err as { name?: string })?.name ?? '';
  return ['KafkaJSConnectionError', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound', 'KafkaJSConnectionClosedError', 'KafkaJSNonRetriableError'].includes(name);
}
