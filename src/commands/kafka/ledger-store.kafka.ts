import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { BridgeError, describeError } from '../../common/errors';
import { KafkaWriter } from '../../kafka/writer';
import type { KafkaConsumerConfig } from '../../config/config.schema';
import type { CommandRecord, LedgerStore } from '../command.types';
import { decodeLedgerRecord, encodeLedgerRecord } from './ledger-record';
import { TopicFollower, type TopicFollowOptions } from '../../kafka/follower';
import { ProducePacer } from '../../kafka/produce-pacer';

/** What the Kafka ledger needs besides the client. */
export interface KafkaLedgerOptions {
  /** The compacted ledger topic (`kafka.topics.commandLedger`). */
  topic: string;
  /** The command consumer group; the follower uses `<group>.ledger.<host>.<pid>.<random>`, one group per process. */
  group: string;
  /** Longest wait for `load` (the records that existed at its start read). */
  loadTimeoutMs: number;
  /** Where a record the follower keeps failing on goes (the consumer runner's poison policy). */
  poison?: Pick<TopicFollowOptions, 'deadLetters' | 'metrics'>;
  /** Longest wait for one `write` to be acknowledged by every in-sync replica. */
  writeTimeoutMs: number;
  /** A produce request starts at least this long after the previous one unless its batch is full (`kafka.producer.lingerMs`; ProducePacer). */
  lingerMs?: number;
  consumer: KafkaConsumerConfig;
}

interface PendingWrite {
  key: string;
  /** Encoded when `write` is called: the caller may change the record object afterwards. */
  value: string;
  settle: (err?: Error) => void;
  /** Handed to the producer: from then on a timeout cannot take it back. */
  inFlight: boolean;
}

/** Most records in one produce request; writes that arrive while one is in flight go together in the next. */
const MAX_BATCH = 500;
/**
 * Most records waiting for a produce request; past it a write is refused at once (`ledger_unavailable`, as when
 * Kafka refuses it), so a Kafka that slows down bounds memory instead of queueing every command.
 */
const MAX_QUEUED_WRITES = 20 * MAX_BATCH;
/** Malformed records logged one by one at load; the rest are only counted. */
const LOGGED_SKIPS = 5;

/**
 * The command ledger in a compacted Kafka topic: key = commandId, value = the CommandRecord as JSON, so the
 * latest state of every command survives restarts and is shared by replicas. Read once: a follower reads the topic
 * from its beginning (`load` resolves once it has what existed at the start) and goes on with other replicas' writes.
 * Written with its own producer (`acks: -1`): a write resolves only once Kafka acknowledged it and rejects
 * (`ledger_unavailable`) when it was not within `writeTimeoutMs`. Writes are group-committed: the records of every
 * write made in one turn of the event loop go in one produce request, with one request in flight; what arrives
 * meanwhile waits and goes in the next one (at most MAX_QUEUED_WRITES wait), which starts `lingerMs` after the
 * previous one at the earliest unless it is full. Each caller waits for its own batch's
 * acknowledgement, and a failed batch fails every write in it. Records of one command keep their order (one queue,
 * one request at a time, one partition per key). A record that does not decode is skipped and counted, never fatal.
 */
export class KafkaLedgerStore implements LedgerStore {
  readonly name: string;
  private readonly writer: KafkaWriter;
  private readonly pacer: ProducePacer;
  private readonly queue: PendingWrite[] = [];
  /** A flush is scheduled or running: a write only queues its record. */
  private flushing = false;
  private follower?: TopicFollower;
  /** Where the follower hands records (the caller of the latest `load`). */
  private onRecord: (record: CommandRecord) => void = () => undefined;
  /** Malformed records read before catching up (reported once then); later ones are logged at debug. */
  private skipped = 0;
  private stopped = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: KafkaLedgerOptions,
    private readonly log: Logger,
  ) {
    this.name = `topic ${opts.topic}`;
    // Not idempotent: a repeated record is harmless (the ledger merges by status rank and updatedAt).
    this.writer = new KafkaWriter(kafka, { allowAutoTopicCreation: true, retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 } });
    this.pacer = new ProducePacer(opts.lingerMs ?? 0);
  }

  /**
   * Starts following the topic (once) and resolves when the records that existed then were handed to `onRecord`;
   * later records (other replicas' writes) keep coming to it. Rejects (`topic_unreadable`) after `loadTimeoutMs`;
   * the follower goes on, so a later `load` only waits for the rest.
   */
  async load(onRecord: (record: CommandRecord) => void): Promise<void> {
    this.onRecord = onRecord;
    const { topic } = this.opts;
    if (!this.follower) {
      this.follower = new TopicFollower(this.kafka, { topic, groupPrefix: `${this.opts.group}.ledger`, consumer: this.opts.consumer, name: 'command ledger follower', ...this.opts.poison }, (message) => {
        if (message.value === null) return; // a tombstone: nothing to answer from
        const key = message.key?.toString('utf8') ?? null;
        let record: CommandRecord;
        try {
          record = decodeLedgerRecord(key, message.value.toString('utf8'));
        } catch (err) {
          const caughtUp = this.follower?.isCaughtUp;
          if (!caughtUp && ++this.skipped <= LOGGED_SKIPS) this.log.warn({ topic, key, reason: describeError(err) }, `ledger record ${key ?? '(no key)'} skipped: ${describeError(err)}`);
          else this.log.debug({ topic, key, reason: describeError(err) }, 'malformed ledger record skipped');
          return;
        }
        this.onRecord(record);
      }, this.log, () => {
        if (this.skipped) this.log.warn({ topic, skipped: this.skipped }, `${this.skipped} malformed record(s) of the command ledger skipped`);
      });
      if (this.stopped) return;
      this.follower.start();
    }
    if (!(await this.follower.caughtUp(this.opts.loadTimeoutMs))) {
      throw new BridgeError('topic_unreadable', `could not read topic "${topic}" within ${this.opts.loadTimeoutMs} ms (is Kafka reachable?)`, { retriable: true });
    }
  }

  write(record: CommandRecord): Promise<void> {
    if (this.stopped) return Promise.reject(this.unavailable('the ledger is stopped'));
    if (this.queue.length >= MAX_QUEUED_WRITES) {
      return Promise.reject(this.unavailable(`${this.queue.length} records are already waiting for Kafka (the ledger is behind)`));
    }
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(pending);
        if (i >= 0) this.queue.splice(i, 1);
        pending.settle(this.unavailable(`not acknowledged within ${this.opts.writeTimeoutMs} ms${pending.inFlight ? ' (the record may still be stored)' : ''}`));
      }, this.opts.writeTimeoutMs);
      const pending: PendingWrite = {
        key: record.commandId,
        value: encodeLedgerRecord(record),
        inFlight: false,
        settle: (err) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        },
      };
      this.queue.push(pending);
      if (this.queue.length >= MAX_BATCH) this.pacer.release();
      if (!this.flushing) {
        // After the writes of this turn of the event loop (the other requests and commands it serves), so they share a request.
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pacer.release();
    for (const pending of this.queue.splice(0)) pending.settle(this.unavailable('the ledger is stopped'));
    await Promise.allSettled([this.follower?.stop(), this.writer.stop()]);
  }

  /** Sends the queue in batches, one produce request at a time, until it is empty; `flushing` is set by the caller. */
  private async flush(): Promise<void> {
    try {
      while (this.queue.length && !this.stopped) {
        await this.pacer.wait(this.queue.length >= MAX_BATCH);
        // Meanwhile the ledger may have stopped, or every waiting write timed out: nothing is sent empty.
        if (!this.queue.length || this.stopped) break;
        this.pacer.started();
        const batch = this.queue.splice(0, MAX_BATCH);
        for (const pending of batch) pending.inFlight = true;
        try {
          // Bounded like each write: a broker that never answers must not hold every later write behind this batch.
          await this.writer.send({ topic: this.opts.topic, acks: -1, messages: batch.map(({ key, value }) => ({ key, value })) }, this.opts.writeTimeoutMs);
          for (const pending of batch) pending.settle();
        } catch (err) {
          for (const pending of batch) pending.settle(this.unavailable(describeError(err), err));
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private unavailable(why: string, cause?: unknown): BridgeError {
    return new BridgeError('ledger_unavailable', `command ledger (topic ${this.opts.topic}) write failed: ${why}`, { retriable: true, cause });
  }
}
