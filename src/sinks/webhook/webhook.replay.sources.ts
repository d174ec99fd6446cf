import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import { BridgeError, describeError } from '../../common/errors';

/** One record of the dead-letter topic, as a replay needs it. */
export interface DlqRecord {
  /** `dlq_origin` header (undefined: not written by the bridge). */
  origin?: string;
  /** Record timestamp (epoch ms). */
  timestamp: number;
  value: string | null;
}

/** Streams the dead-letter file line by line (it may be large). A missing file is an empty one. */
export async function readDeadLetterFile(path: string, onLine: (line: string) => void): Promise<void> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of lines) onLine(line);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new BridgeError('dead_letter_file_unreadable', `cannot read the dead-letter file ${path}: ${describeError(err)}`, { retriable: true, cause: err });
  } finally {
    lines.close();
    stream.destroy();
  }
}

/**
 * Reads the dead-letter topic from the beginning up to the end offsets of when it starts (later records are
 * not this replay's), with a throwaway consumer group (`chatbridge-replay-<uuid>`, no offset commits), then
 * disconnects. Gives up with `dlq_unreadable` after `timeoutMs`. A topic that does not exist holds nothing.
 */
export async function scanDeadLetterTopic(kafka: Kafka, topic: string, onRecord: (r: DlqRecord) => void, timeoutMs: number): Promise<void> {
  const admin = kafka.admin();
  let consumer: Consumer | undefined;
  let abandoned = false;
  // Each step checks: after a timeout, a connect that completes late must not leave a client running.
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
    const c = kafka.consumer({ groupId: `chatbridge-replay-${randomUUID()}`, maxWaitTimeInMs: 250, sessionTimeout: 10_000, heartbeatInterval: 1000 });
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
          if (offset <= end) onRecord({ origin: header(message.headers, 'dlq_origin'), timestamp: Number(message.timestamp), value: message.value?.toString('utf8') ?? null });
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
    timer = setTimeout(() => reject(new BridgeError('dlq_unreadable', `could not read the dead-letter topic "${topic}" within ${timeoutMs} ms (is Kafka reachable?)`, { retriable: true })), timeoutMs);
  });
  const reading = read();
  // Whenever the reading ends, even after the answer was given, its clients are closed.
  reading.then(cleanup, cleanup);
  try {
    await Promise.race([reading, timeout]);
  } catch (err) {
    // Not waited for: a client stuck connecting lets go only at its own request timeout.
    void cleanup();
    if (err instanceof BridgeError) throw err;
    throw new BridgeError('dlq_unreadable', `cannot read the dead-letter topic "${topic}": ${describeError(err)}`, { retriable: true, cause: err });
  } finally {
    abandoned = true;
    clearTimeout(timer);
  }
  await cleanup();
}

function header(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  return Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}
