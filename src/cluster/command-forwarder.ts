import type { IHeaders, Kafka, Message } from 'kafkajs';
import { KafkaWriter } from '../kafka/writer';
import type { UpstreamCommand } from '../connectors/connector.interface';

/** Header of a command record one replica forwarded to the replica holding the channel. */
export const FORWARDED_HEADER = 'chatbridge-forwarded-from';

/**
 * Hands a command accepted at a replica that does not hold its channel to the one that does, through
 * `topics.commands`: keyed by its ownership key (the channel id, or `<channelId>/<conversationId>` for a spread
 * conversation), the record lands on that key's partition (Kafka's default partitioner), which the group gave to its
 * holder. Written with `acks: -1` before the door answers.
 */
export class CommandForwarder {
  private readonly writer: KafkaWriter;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly timeoutMs: number,
  ) {
    this.writer = new KafkaWriter(kafka, { idempotent: true, maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 } });
  }

  /** Resolves once Kafka acknowledged the record; rejects when it did not within the timeout. */
  forward(key: string, channelId: string, command: UpstreamCommand, door: string): Promise<void> {
    return this.send({ key, value: JSON.stringify({ ...command, channelId }), headers: { [FORWARDED_HEADER]: door } });
  }

  /** A record of the commands topic found on another partition than its key's, written again keyed by its ownership key. */
  reroute(key: string, value: Buffer, headers: IHeaders): Promise<void> {
    return this.send({ key, value, headers });
  }

  private send(message: Message): Promise<void> {
    return this.writer.send({ topic: this.topic, acks: -1, messages: [message] }, this.timeoutMs);
  }

  async stop(): Promise<void> {
    await this.writer.stop();
  }
}
