import { randomUUID } from 'node:crypto';
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import { BridgeError, describeError } from './errors';

/** One record as `scanTopic` hands it over (key, value and header values decoded as UTF-8). */
export interface ScannedRecord {
  key: string | null;
  value: string | null;
  /** Record timestamp (epoch ms). */
  timestamp: number;
  headers: Record<string, string>;
}

/** What `scanTopic` calls for each record. */
export type OnTopicRecord = (record: ScannedRecord) => void;

/**
 * Reads a topic from its beginning up to the end offsets of when the scan starts (later records are not this
 * scan's), in offset order per partition, with a throwaway consumer group (`<groupPrefix><uuid>`, no commits),
 * then disconnects. A topic that does not exist or holds nothing is read without joining a group. Gives up with
 * a retriable `topic_unreadable` BridgeError after `timeoutMs`, and then closes its clients in the background.
 */
export async function scanTopic(kafka: Kafka, topic: string, onRecord: OnTopicRecord, timeoutMs: number, groupPrefix = 'chatbridge-scan-'): Promise<void> {
  const admin = kafka.admin();
  let consumer: Consumer | undefined;
  let abandoned = false;
  // After a timeout, a step that completes late must not go on and leave a client running.
  const step = async <T>(p: Promise<T>): Promise<T> => {
    const v = await p;
    if (abandoned) throw new Error('abandoned');
    return v;
  };
  const cleanup = () => Promise.allSettled([consumer?.disconnect(), admin.disconnect()]);

  const read = async (): Promise<void> => {
    await step(admin.connect());
    // listTopics first: asking for the offsets of a missing topic could create it on a broker that auto-creates.
    if (!(await step(admin.listTopics())).includes(topic)) return;
    const ends = new Map<number, number>();
    for (const p of await step(admin.fetchTopicOffsets(topic))) if (Number(p.high) > Number(p.low)) ends.set(p.partition, Number(p.high) - 1);
    if (!ends.size) return;
    const c = kafka.consumer({ groupId: `${groupPrefix}${randomUUID()}`, maxWaitTimeInMs: 250, sessionTimeout: 10_000, heartbeatInterval: 1000 });
    consumer = c;
    await step(c.connect());
    await step(c.subscribe({ topic, fromBeginning: true }));
    await new Promise<void>((resolve, reject) => {
      c.on(c.events.CRASH, (e) => reject(e.payload.error));
      c.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const end = ends.get(partition);
          if (end === undefined) return;
          const offset = Number(message.offset);
          if (offset <= end) onRecord({ key: message.key?.toString('utf8') ?? null, value: message.value?.toString('utf8') ?? null, timestamp: Number(message.timestamp), headers: headerStrings(message.headers) });
          if (offset >= end) {
            ends.delete(partition);
            if (!ends.size) resolve();
          }
        },
      }).catch(reject);
    });
  };

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BridgeError('topic_unreadable', `could not read topic "${topic}" within ${timeoutMs} ms (is Kafka reachable?)`, { retriable: true })), timeoutMs);
  });
  const reading = read();
  reading.then(cleanup, cleanup);
  try {
    await Promise.race([reading, timeout]);
  } catch (err) {
    // Not waited for: a client stuck connecting lets go only at its own request timeout.
    void cleanup();
    if (err instanceof BridgeError) throw err;
    throw new BridgeError('topic_unreadable', `cannot read topic "${topic}": ${describeError(err)}`, { retriable: true, cause: err });
  } finally {
    abandoned = true;
    clearTimeout(timer);
  }
  await cleanup();
}

/** A record's headers as strings (the first value of a repeated header; buffers decoded as UTF-8). */
export function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[name] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}
