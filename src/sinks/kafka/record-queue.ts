import type { Message } from 'kafkajs';
import type { DurableCallback } from '../../pipeline/durable';

/** One event as the Kafka sink holds it: the record built once at enqueue, and its size. */
export interface QueuedRecord {
  message: Message;
  /** Estimated size of the record in a Kafka record batch (key, value, headers, framing). */
  bytes: number;
  /** JS heap its value holds while queued as a string (see `MAX_QUEUED_TEXT_HEAP`); 0 for a Buffer. */
  heapBytes: number;
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

/** Size of `message` once in a record batch, before compression; `valueBytes` when its value's UTF-8 length is known. Pure. */
export function recordBytes(message: Message, valueBytes = lengthOf(message.value)): number {
  let n = RECORD_OVERHEAD + lengthOf(message.key) + valueBytes;
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
  return Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v));
}

/** FIFO of records with O(1) push and amortised O(1) take, counting records, bytes and the heap their values hold. */
export class RecordQueue {
  private items: QueuedRecord[] = [];
  private head = 0;
  private total = 0;
  private heap = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** Sum of the queued records' `bytes`. */
  get bytes(): number {
    return this.total;
  }

  /** Sum of the queued records' `heapBytes`. */
  get heapBytes(): number {
    return this.heap;
  }

  push(item: QueuedRecord): void {
    this.items.push(item);
    this.total += item.bytes;
    this.heap += item.heapBytes;
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
    for (const item of out) {
      this.total -= item.bytes;
      this.heap -= item.heapBytes;
    }
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }
}
