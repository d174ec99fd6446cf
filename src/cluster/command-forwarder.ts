import type { IHeaders, Kafka, Message } from 'kafkajs';
import { GroupCommitWriter } from '../kafka/group-commit';
import type { UpstreamCommand } from '../connectors/connector.interface';

/** Header of a command record one replica forwarded to the replica holding the channel. */
export const FORWARDED_HEADER = 'chatbridge-forwarded-from';

/**
 * Hands a command accepted at a replica that does not hold its channel to the one that does, through
 * `topics.commands`: keyed by its ownership key (the channel id, or `<channelId>/<conversationId>` for a spread
 * conversation), the record lands on that key's partition (Kafka's default partitioner), which the group gave to its
 * holder. Written with `acks: -1` before the door answers, group-committed (GroupCommitWriter): the commands
 * forwarded in one turn of the event loop share one produce request, in the order they were accepted.
 */
export class CommandForwarder {
  private readonly writer: GroupCommitWriter;

  constructor(kafka: Kafka, topic: string, timeoutMs: number, lingerMs: number) {
    this.writer = new GroupCommitWriter(kafka, {
      topic, writeTimeoutMs: timeoutMs, lingerMs,
      producer: { idempotent: true, maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 } },
      failure: (why, cause) => new Error(`Kafka (topic ${topic}) did not take it: ${why}`, { cause }),
    });
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
    return this.writer.write(message);
  }

  async stop(): Promise<void> {
    await this.writer.stop();
  }
}
