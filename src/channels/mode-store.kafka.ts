import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { KafkaWriter } from '../kafka/writer';
import { scanTopic } from '../kafka/scan';
import type { ChannelMode } from '../connectors/connector.interface';
import { encodeModeRecord, foldModeRecords, type ModeStore, type PersistedModes, type StateTopicRecord } from './mode-store';

/**
 * Longest wait for the state topic: its read at start (a consumer-group join alone can take 3 s) and each write
 * of `PUT /v1/channels/:id/mode`.
 */
export function stateTopicTimeoutMs(connectionTimeoutMs: number): number {
  return Math.max(10_000, 5 * connectionTimeoutMs);
}

/**
 * Channel modes in a compacted Kafka topic (`kafka.topics.state`): one record per channel, key = channel id,
 * value `{"mode", "at"}`. Written with its own small producer (`acks: -1`, one request in flight), so a mode
 * write neither waits behind the event queue nor is retried by it forever: a failed write is reported to the
 * caller, who refuses the switch.
 */
export class KafkaModeStore implements ModeStore {
  readonly source: string;
  private readonly writer: KafkaWriter;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    /** Longest wait for `load` (the topic read to its end). */
    private readonly loadTimeoutMs: number,
    private readonly log: Logger,
  ) {
    this.source = `topic ${topic}`;
    // Not idempotent: a repeated mode record is harmless (the last one per key wins), and few retries keep a
    // refused switch quick when Kafka is down.
    this.writer = new KafkaWriter(kafka, { maxInFlightRequests: 1, allowAutoTopicCreation: true, retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 } });
  }

  async load(): Promise<PersistedModes> {
    const records: StateTopicRecord[] = [];
    await scanTopic(this.kafka, this.topic, ({ key, value }) => records.push({ key, value }), this.loadTimeoutMs, 'chatbridge-state-', { log: this.log });
    return foldModeRecords(records, (key, reason) => {
      this.log.warn({ topic: this.topic, key, reason }, `state topic record of ${key === null ? 'no channel (no key)' : `channel ${key}`} skipped: ${reason}`);
    });
  }

  save(channelId: string, mode: ChannelMode): Promise<void> {
    return this.writer.send({ topic: this.topic, acks: -1, messages: [{ key: channelId, value: encodeModeRecord(mode) }] });
  }

  async stop(): Promise<void> {
    await this.writer.stop();
  }
}
