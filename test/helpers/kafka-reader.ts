import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type IHeaders, type KafkaMessage } from 'kafkajs';
import { fromKafkaMessage, STRUCTURED_CONTENT_TYPE } from '../../src/sinks/kafka/kafka.record';
import { dataSchemaProblem, eventSchemaProblem, throwSchemaProblems } from './event-schemas';

/** One record as read back from the test broker. */
export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  timestamp: string;
}

/**
 * Collects every record of some topics from the beginning, with its own consumer group. Every chatbridge event among
 * them (a record with a `ce_type` header or a structured one, not a dead letter) is checked against its schema
 * (docs/schemas): `waitFor`, `ofType` and `stop` throw once one did not match.
 */
export class KafkaReader {
  readonly records: ReadRecord[] = [];
  private readonly schemaProblems: string[] = [];
  private consumer?: Consumer;

  constructor(private readonly brokers: string[], private readonly topics: string[]) {}

  async start(): Promise<void> {
    const kafka = new Kafka({ clientId: 'test-reader', brokers: this.brokers, logLevel: logLevel.NOTHING });
    await ensureTopics(kafka, this.topics);
    this.consumer = kafka.consumer({ groupId: `reader-${randomUUID()}`, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 500 });
    await this.consumer.connect();
    for (const topic of this.topics) await this.consumer.subscribe({ topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const record = toRecord(topic, partition, message);
        this.records.push(record);
        const problem = schemaProblem(record);
        if (problem) this.schemaProblems.push(`${topic}@${record.offset} ${problem}`);
      },
    });
  }

  /** Waits until `predicate(records)` holds. */
  async waitFor(what: string, predicate: (records: ReadRecord[]) => boolean, timeoutMs = 20_000): Promise<ReadRecord[]> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      throwSchemaProblems('KafkaReader', this.schemaProblems);
      if (predicate(this.records)) return this.records;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}; have ${this.records.length} records`);
  }

  /** Records of one CloudEvents type. */
  ofType(type: string): ReadRecord[] {
    throwSchemaProblems('KafkaReader', this.schemaProblems);
    return this.records.filter((r) => r.headers.ce_type === type);
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    throwSchemaProblems('KafkaReader', this.schemaProblems);
  }
}

/**
 * Makes sure every topic exists with its partitions before the group is joined. A group that joins while a
 * topic has no partitions yet is assigned none of them, and kafkajs notices the topic only at its next
 * metadata refresh (minutes): a busy machine made readers miss records that way.
 */
async function ensureTopics(kafka: Kafka, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        // Metadata for an unknown topic creates it on a broker that auto-creates (the test broker does).
        const { topics: found } = await admin.fetchTopicMetadata({ topics });
        if (found.length === topics.length && found.every((t) => t.partitions.length > 0)) return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no partitions after 15 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.disconnect();
  }
}

function toRecord(topic: string, partition: number, m: KafkaMessage): ReadRecord {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ? m.key.toString('utf8') : null,
    value: m.value ? m.value.toString('utf8') : null,
    headers: headersToStrings(m.headers ?? {}),
    timestamp: m.timestamp,
  };
}

/** Why an event record does not match its schema (binary: the value by `ce_dataschema`, and the event it reads back as). */
function schemaProblem(r: ReadRecord): string | undefined {
  if (r.headers.dlq_reason !== undefined || r.value === null) return undefined;
  const structured = r.headers['content-type']?.startsWith(STRUCTURED_CONTENT_TYPE);
  if (!structured && !r.headers.ce_type?.startsWith('chatbridge.')) return undefined;
  try {
    const event = fromKafkaMessage(r);
    return (structured ? undefined : dataSchemaProblem(r.headers.ce_dataschema, JSON.parse(r.value))) ?? eventSchemaProblem(event);
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

function headersToStrings(h: IHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(',') : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  }
  return out;
}

/** The shared broker of this test run (jest globalSetup). */
export function sharedBrokers(): string[] {
  const list = process.env.CHATBRIDGE_TEST_KAFKA;
  if (!list) throw new Error('CHATBRIDGE_TEST_KAFKA is not set: run the tests through jest (globalSetup starts the test broker)');
  return list.split(',');
}

/** A topic name no other test uses. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}
