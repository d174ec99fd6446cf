import type { Kafka, Producer, ProducerConfig, ProducerRecord } from 'kafkajs';
import { withTimeout } from '../common/wait';
import { javaCompatiblePartitioner } from './partitioner';

/**
 * A producer that connects on its first send and, after any failed or timed-out send, starts the next one from a
 * fresh connection: a kafkajs producer whose `connect()` failed answers "Broker not connected" to every later
 * `connect()` until it is disconnected, so one failed connect would otherwise break every later write. The durable
 * writers (mode store, command ledger, state topic, command forwarder) each send through one.
 */
export class KafkaWriter {
  private readonly producer: Producer;
  private connecting?: Promise<void>;

  constructor(kafka: Kafka, config: ProducerConfig) {
    this.producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner, ...config });
  }

  /** Resolves once Kafka acknowledged the records; rejects on failure, or after `timeoutMs` when given. */
  async send(record: ProducerRecord, timeoutMs?: number): Promise<void> {
    this.connecting ??= this.producer.connect();
    const connection = this.connecting;
    const sending = (async () => {
      await connection;
      await this.producer.send(record);
    })();
    try {
      await (timeoutMs === undefined ? sending : withTimeout(sending, timeoutMs, `Kafka did not acknowledge within ${timeoutMs} ms`));
    } catch (err) {
      sending.catch(() => undefined); // after a timeout it still settles; nobody waits for it then
      this.reset(connection);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.connecting = undefined;
    await this.producer.disconnect().catch(() => undefined);
  }

  /** Drops `connection` (unless a newer one replaced it already): the next send connects again. */
  private reset(connection: Promise<void>): void {
    if (this.connecting !== connection) return;
    this.connecting = undefined;
    void this.producer.disconnect().catch(() => undefined);
  }
}
