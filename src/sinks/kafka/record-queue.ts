import type { Message } from 'kafkajs';
import type { DurableCallback } from '../../pipeline/durable';

/** One event as the Kafka sink holds it: the record built once at enqueue, and its size. */
export interface QueuedRecord {
  message: Message;
  /** Estimated size of the record in a Kafka record batch (key, value, headers, framing), and a bound of its size in memory. */
  bytes: number;
  channelId?: string;
  type: string;
  /** `performance.now()` ms when the frame arrived, for the latency metric. */
  receivedAt: number;
  /** The event's id when it is stable (derived from the upstream's): its outcome is reported to the pipeline. */
  stableId?: string;
  /** The event's durability callback, if its input waits for it (inbound posts). */
  durable?: DurableCallback;
}

/** Per-record framing in a Kafka record batch (length, attributes, deltas, varints), rounded up. */
const RECORD_OVERHEAD = 32;
/** Per-header framing (two length varints). */
const HEADER_OVERHEAD = 4;

/**
 * Size of `message` once in a record batch, before compression: UTF-8 bytes, framing included. A string that is not all
 * ASCII counts at least two bytes per character, its size in memory while queued (see `lengthOf`). Pure.
 */
export function recordBytes(message: Message): number {
  let n = RECORD_OVERHEAD + lengthOf(message.key) + lengthOf(message.value);
  const headers = message.headers;
  // Once per event: a key loop, no entry arrays.
  for (const name in headers) {
    const value = headers[name];
    n += HEADER_OVERHEAD + Buffer.byteLength(name) + (Array.isArray(value) ? value.reduce((s: number, v) => s + lengthOf(v), 0) : lengthOf(value));
  }
  return n;
}

function lengthOf(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (Buffer.isBuffer(v)) return v.length;
  const s = String(v);
  const utf8 = Buffer.byteLength(s);
  // Held as a JS string until kafkajs encodes it: one that is not all ASCII may be held at two bytes per character
  // (V8 does so once one character is past Latin-1), more than its UTF-8 length. It counts at the larger of the two,
  // so the queue's byte budget bounds the memory the queue holds.
  return utf8 === s.length ? utf8 : Math.max(utf8, 2 * s.length);
}

/** FIFO of records with O(1) push and amortised O(1) take, counting records and bytes. */
export class RecordQueue {
  private items: QueuedRecord[] = [];
  private head = 0;
  private total = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** Sum of the queued records' `bytes`. */
  get bytes(): number {
    return this.total;
  }

  push(item: QueuedRecord): void {
    this.items.push(item);
    this.total += item.bytes;
  }

  /**
   * The oldest records, left in place: at most `maxCount` and at most `maxBytes` together, but always at least
   * one (a record larger than `maxBytes` goes alone).
   */
  peekBatch(maxCount: number, maxBytes: number): QueuedRecord[] {
    const out: QueuedRecord[] = [];
    let size = 0;
    for (let i = this.head; i < this.items.length && out.length < maxCount; i++) {
      const item = this.items[i];
      if (out.length && size + item.bytes > maxBytes) break;
      out.push(item);
      size += item.bytes;
    }
    return out;
  }

  /** Removes and returns the oldest `n` records. */
  take(n: number): QueuedRecord[] {
    const out = this.items.slice(this.head, this.head + n);
    this.head += out.length;
    for (const item of out) this.total -= item.bytes;
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }
}
