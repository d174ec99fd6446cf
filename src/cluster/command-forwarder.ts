import type { IHeaders, Kafka, Message, Producer } from 'kafkajs';
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
  private readonly producer: Producer;
  private connecting?: Promise<void>;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly timeoutMs: number,
  ) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 } });
  }

  /** Resolves once Kafka acknowledged the record; rejects when it did not within the timeout. */
  forward(key: string, channelId: string, command: UpstreamCommand, door: string): Promise<void> {
    return this.send({ key, value: JSON.stringify({ ...command, channelId }), headers: { [FORWARDED_HEADER]: door } });
  }

  /** A record of the commands topic found on another partition than its key's, written again keyed by its ownership key. */
  reroute(key: string, value: Buffer, headers: IHeaders): Promise<void> {
    return this.send({ key, value, headers });
  }

  private async send(message: Message): Promise<void> {
    this.connecting ??= this.producer.connect();
    const connection = this.connecting;
    // A kafkajs producer whose connect failed answers "Broker not connected" to every later connect until it is
    // disconnected: after any failure (or a timeout) the next forward starts from a fresh connection.
    const reset = (): void => {
      if (this.connecting !== connection) return;
      this.connecting = undefined;
      void this.producer.disconnect().catch(() => undefined);
    };
    const send = (async () => {
      await connection;
      await this.producer.send({ topic: this.topic, acks: -1, messages: [message] });
    })();
    send.catch(reset); // still settles after a timeout below; nobody waits for it then
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Kafka did not acknowledge the forwarded command within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      await Promise.race([send, timeout]);
    } catch (err) {
      reset();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
  }
}
