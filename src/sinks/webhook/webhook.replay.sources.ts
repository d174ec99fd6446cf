import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { scanTopic } from '../../kafka/scan';
import { BridgeError, describeError } from '../../common/errors';

/** Where a dead letter was found. */
export type ReplaySource = 'file' | 'kafka';

/** One dead letter as read from the file or the topic. */
export interface DeadLetterEntry {
  origin: string;
  /** When it was dead-lettered (epoch ms). */
  at: number;
  event: unknown;
  /** Why (`webhook_rejected`, `webhook_retries_exhausted`, …), when written. */
  reason?: string;
  /** Delivery attempts made, when written. */
  attempts?: number;
  /** The last HTTP status, when the endpoint answered one. */
  status?: number;
  error?: string;
}

/**
 * What takes one endpoint's dead letters read from the file and the topic: a replay's selection, or a page of the
 * listing. Dead letters of other origins are dropped here; `take` sees only the endpoint's.
 */
export abstract class DeadLetterCollector {
  /** Lines and records that could not be read, and the endpoint's dead letters without a usable event. */
  skippedMalformed = 0;

  constructor(readonly endpointId: string) {}

  /** True when a dead letter of `origin` concerns it (its event is read only then). */
  isFor(origin: string): boolean {
    return origin === this.endpointId;
  }

  /** Counts a line or record that could not be read. */
  malformed(): void {
    this.skippedMalformed++;
  }

  /** Offers one dead letter; those of other endpoints are ignored. */
  offer(source: ReplaySource, entry: DeadLetterEntry): void {
    if (this.isFor(entry.origin)) this.take(source, entry);
  }

  /** One of the endpoint's dead letters. */
  protected abstract take(source: ReplaySource, entry: DeadLetterEntry): void;
}

/** One record of the dead-letter topic, as a replay needs it. */
export interface DlqRecord {
  /** `dlq_origin` header (undefined: not written by the bridge). */
  origin?: string;
  /** Record timestamp (epoch ms). */
  timestamp: number;
  value: string | null;
  /** The record's headers (`dlq_reason`, `dlq_attempts`, `dlq_status`, `dlq_error`, …). */
  headers?: Record<string, string>;
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
 * not this replay's), with `scanTopic`'s throwaway consumer group (`chatbridge-replay-<uuid>`, no commits).
 * Gives up with `dlq_unreadable` after `timeoutMs`. A topic that does not exist holds nothing.
 */
export async function scanDeadLetterTopic(kafka: Kafka, topic: string, onRecord: (r: DlqRecord) => void, timeoutMs: number, log: Logger): Promise<void> {
  try {
    await scanTopic(kafka, topic, (r) => onRecord({ origin: r.headers.dlq_origin, timestamp: r.timestamp, value: r.value, headers: r.headers }), timeoutMs, 'chatbridge-replay-', { log });
  } catch (err) {
    const message = describeError(err).replace(`topic "${topic}"`, `the dead-letter topic "${topic}"`);
    throw new BridgeError('dlq_unreadable', message, { retriable: true, cause: err });
  }
}
