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
 * forwarded in one turn of the event loop share one send (a request per partition leader), in the order they were
 * accepted. It does not linger: every caller waits for its acknowledgement, a reroute record by record.
 *
 * Not idempotent: when a send of records for several partitions finally fails, kafkajs rolls back the sequence
 * numbers of every partition in it, also of those the broker appended, and an idempotent producer would then have
 * its next batch taken as a duplicate (dropped) or refused as out of order. A record written twice is harmless: the
 * holder recognises a command it knows by its `commandId`. One send at a time keeps the order.
 */
export class CommandForwarder {
  private readonly writer: GroupCommitWriter;

  constructor(kafka: Kafka, topic: string, timeoutMs: number) {
    this.writer = new GroupCommitWriter(kafka, {
      topic, writeTimeoutMs: timeoutMs, lingerMs: 0,
      producer: { maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 } },
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
