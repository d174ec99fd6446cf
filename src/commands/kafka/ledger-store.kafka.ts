import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { BridgeError, describeError } from '../../common/errors';
import { GroupCommitWriter } from '../../kafka/group-commit';
import type { KafkaConsumerConfig } from '../../config/config.schema';
import type { CommandRecord, LedgerStore } from '../command.types';
import { decodeLedgerRecord, encodeLedgerRecord } from './ledger-record';
import { TopicFollower, type TopicFollowOptions } from '../../kafka/follower';

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
  /** A produce request starts at least this long after the previous one unless its batch is full (`kafka.producer.lingerMs`; 0 when omitted). */
  lingerMs?: number;
  consumer: KafkaConsumerConfig;
}

/** Malformed records logged one by one at load; the rest are only counted. */
const LOGGED_SKIPS = 5;

/**
 * The command ledger in a compacted Kafka topic: key = commandId, value = the CommandRecord as JSON, so the
 * latest state of every command survives restarts and is shared by replicas. Read once: a follower reads the topic
 * from its beginning (`load` resolves once it has what existed at the start) and goes on with other replicas' writes.
 * Written with its own producer (`acks: -1`), group-committed (GroupCommitWriter: the records of many commands in
 * one send, one in flight, each write resolving once its batch is acknowledged): a write rejects
 * (`ledger_unavailable`) when it was not acknowledged within `writeTimeoutMs`, or when 10,000 records already wait.
 * Records of one command keep their order (one queue, one request at a time, one partition per key). A record
 * that does not decode is skipped and counted, never fatal.
 */
export class KafkaLedgerStore implements LedgerStore {
  readonly name: string;
  private readonly writer: GroupCommitWriter;
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
    this.writer = new GroupCommitWriter(kafka, {
      topic: opts.topic, writeTimeoutMs: opts.writeTimeoutMs, lingerMs: opts.lingerMs ?? 0,
      // Not idempotent: a repeated record is harmless (the ledger merges by status rank and updatedAt).
      producer: { allowAutoTopicCreation: true, retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 } },
      failure: (why, cause) => this.unavailable(why, cause),
    });
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
    return this.writer.write({ key: record.commandId, value: encodeLedgerRecord(record) });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([this.follower?.stop(), this.writer.stop()]);
  }

  private unavailable(why: string, cause?: unknown): BridgeError {
    return new BridgeError('ledger_unavailable', `command ledger (topic ${this.opts.topic}) write failed: ${why}`, { retriable: true, cause });
  }
}
