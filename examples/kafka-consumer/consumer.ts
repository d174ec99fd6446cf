/**
 * A consumer of chatbridge's events topic (`chatbridge.events`) with kafkajs and the `cloudevents` SDK.
 *
 * Each record is one CloudEvent in the Kafka binding's binary mode (docs/kafka.md#producing-events): key =
 * `partitionkey` (`<channelId>:<conversationId>`), value = the event's `data` as JSON, attributes in `ce_*` headers;
 * or, with `kafka.producer.cloudEventsMode: structured`, the whole event as the value (`content-type:
 * application/cloudevents+json`). `Kafka.toEvent` reads both, so this consumer needs no setting for it.
 * What this consumer does, and why:
 * - **Order per conversation.** One conversation is one key, so one partition; kafkajs hands over a partition's
 *   records one at a time, in offset order, and the next only once `handle` has finished with the previous one.
 * - **Dedupe by id.** Delivery is at least once: a record may be written twice with the same `ce_id`
 *   (docs/delivery.md). The ids of recent events are kept in a bounded LRU and a repeat is skipped.
 * - **Commit after processing.** Auto-commit is off; a record's offset is committed once `handle` resolved, so a
 *   crash re-reads only what was not finished (or whose commit had not reached Kafka). The LRU starts empty after a
 *   restart, so where a second processing matters, keep processed ids with your results (one transaction) instead.
 *
 * Run it against a bridge whose Kafka is reachable (from the repository root):
 *
 *   KAFKA_BROKERS=localhost:9092 npx ts-node examples/kafka-consumer/consumer.ts
 *
 * Environment: `KAFKA_BROKERS` (comma-separated, default `localhost:9092`), `EVENTS_TOPIC` (`chatbridge.events`),
 * `GROUP_ID` (`chatbridge-example-consumer`), `FROM_BEGINNING=1` to start a new group at the oldest retained record
 * instead of the newest.
 */
import { Kafka as CloudEventsKafka, type CloudEventV1, type KafkaMessage as CloudEventsMessage } from 'cloudevents';
import { Kafka, logLevel, type ConsumerConfig, type IHeaders, type KafkaMessage } from 'kafkajs';
import { SeenIds } from '../seen-ids';

/** One chatbridge event as the SDK reads it back; `data` is the JSON of the record's value. */
export type ChatbridgeEvent = CloudEventV1<unknown> & { partitionkey?: string; channelid?: string; provider?: string };

/** What `runConsumer` needs; only `handle` is required. */
export interface ConsumerOptions {
  brokers?: string[];
  topic?: string;
  groupId?: string;
  fromBeginning?: boolean;
  /** How many recent event ids are remembered to skip repeats. */
  dedupeSize?: number;
  /** More kafkajs consumer settings (session timeout, fetch sizes, `maxWaitTimeInMs`, …). */
  consumer?: Omit<ConsumerConfig, 'groupId'>;
  /** Processes one event. The record is committed when it resolves; when it throws, the record is read again. */
  handle: (event: ChatbridgeEvent) => Promise<void> | void;
  /** Where skipped records, duplicates and kafkajs's warnings go (default: stderr). */
  log?: (line: string) => void;
}

/** A running consumer. */
export interface RunningConsumer {
  stop(): Promise<void>;
}

/**
 * Turns a record as kafkajs delivers it into a CloudEvent. kafkajs gives the key and every header value as a
 * Buffer; `Kafka.toEvent` calls string methods on header values and copies them into the attributes, so each is
 * decoded as UTF-8 first, and so is the key (it becomes `partitionkey`). The value may stay a Buffer: with
 * `content-type: application/json` the SDK parses it itself. `body` is only there because the SDK's Message type
 * requires it; the Kafka binding reads `value`.
 */
export function toCloudEvent(record: KafkaMessage): ChatbridgeEvent {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(record.headers ?? {})) {
    const text = headerText(value);
    if (text !== undefined) headers[name] = text;
  }
  const value = record.value ?? Buffer.alloc(0);
  const message: CloudEventsMessage<Buffer> = { key: record.key?.toString('utf8') ?? '', value, body: value, headers, timestamp: record.timestamp };
  const event = CloudEventsKafka.toEvent(message);
  if (Array.isArray(event)) throw new Error('a batch of CloudEvents in one record: not a chatbridge event');
  return event as ChatbridgeEvent;
}

function headerText(value: IHeaders[string]): string | undefined {
  if (value === undefined) return undefined;
  // A header repeated in one record: chatbridge never does this; the first value wins.
  const one = Array.isArray(value) ? value[0] : value;
  return Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
}

/** Subscribes to the events topic and calls `handle` for each new event, in order per partition. */
export async function runConsumer(opts: ConsumerOptions): Promise<RunningConsumer> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const topic = opts.topic ?? 'chatbridge.events';
  const seen = new SeenIds(opts.dedupeSize ?? 10_000);
  const kafka = new Kafka({
    clientId: 'chatbridge-example-consumer',
    brokers: opts.brokers ?? ['localhost:9092'],
    // kafkajs's warnings and errors (a failed `handle` among them) go to the same place as this consumer's lines.
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, log: entry }) => log(`kafkajs ${namespace}: ${entry.message}${entry.error ? ` (${String(entry.error)})` : ''}`),
  });
  const consumer = kafka.consumer({ ...opts.consumer, groupId: opts.groupId ?? 'chatbridge-example-consumer' });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning ?? false });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic: from, partition, message }) => {
      const next = [{ topic: from, partition, offset: (BigInt(message.offset) + 1n).toString() }];
      let event: ChatbridgeEvent;
      try {
        event = toCloudEvent(message);
      } catch (err) {
        // Not a CloudEvent (another producer wrote to the topic): skipping it keeps the partition moving.
        log(`skipped ${from}/${partition}@${message.offset}: ${(err as Error).message}`);
        return void (await consumer.commitOffsets(next));
      }
      // CloudEvents: the same source and id are the same event.
      const key = `${event.source} ${event.id}`;
      if (seen.seen(key)) {
        log(`duplicate ${event.id} skipped (${from}/${partition}@${message.offset})`);
        return void (await consumer.commitOffsets(next));
      }
      try {
        await opts.handle(event);
      } catch (err) {
        // Not committed: kafkajs offers this record again (its retry, or a restart from the last commit), and then
        // it must not count as seen.
        seen.forget(key);
        throw err;
      }
      await consumer.commitOffsets(next);
    },
  });
  return { stop: () => consumer.disconnect() };
}

/** The command-line consumer: one line per event on stdout until SIGINT or SIGTERM. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<RunningConsumer> {
  const running = await runConsumer({
    brokers: (env.KAFKA_BROKERS ?? 'localhost:9092').split(','),
    topic: env.EVENTS_TOPIC,
    groupId: env.GROUP_ID,
    fromBeginning: env.FROM_BEGINNING === '1',
    handle: (event) => console.log(event.time, event.type, event.partitionkey, event.id, JSON.stringify(event.data)),
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void running.stop());
  return running;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
