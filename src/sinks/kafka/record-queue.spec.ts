import type { Message } from 'kafkajs';
import { RecordQueue, recordBytes, type QueuedRecord } from './record-queue';

function rec(id: number, valueBytes: number): QueuedRecord {
  const message: Message = { key: 'k', value: Buffer.alloc(valueBytes, 0x61), headers: { ce_id: String(id) } };
  return { message, bytes: recordBytes(message), heapBytes: 0, type: 't', receivedAt: 0 };
}

const ids = (batch: QueuedRecord[]) => batch.map((r) => Number(r.message.headers?.ce_id));

describe('recordBytes', () => {
  it('counts key, value and header bytes in UTF-8, plus framing', () => {
    const plain = recordBytes({ key: null, value: null });
    expect(recordBytes({ key: 'ab', value: Buffer.alloc(100), headers: { h: 'ç' } })).toBe(plain + 2 + 100 + (recordBytes({ key: null, value: null, headers: { h: 'ç' } }) - plain));
    // 'ç' is two bytes in UTF-8: counted as bytes, not characters.
    expect(recordBytes({ key: null, value: 'ç' })).toBe(plain + 2);
  });
});

describe('RecordQueue', () => {
  it('bounds a batch by bytes as well as by count, keeping order', () => {
    const q = new RecordQueue();
    for (let i = 0; i < 10; i++) q.push(rec(i, 1000));
    const size = q.peekBatch(1, Infinity)[0].bytes;
    expect(ids(q.peekBatch(100, size * 3))).toEqual([0, 1, 2]);
    expect(ids(q.peekBatch(2, size * 3))).toEqual([0, 1]);
    expect(ids(q.peekBatch(100, size * 3 - 1))).toEqual([0, 1]);
  });

  it('sends a record larger than the byte bound alone, never stuck and never with others', () => {
    const q = new RecordQueue();
    q.push(rec(0, 10));
    q.push(rec(1, 50_000));
    q.push(rec(2, 10));
    expect(ids(q.peekBatch(100, 1000))).toEqual([0]);
    q.take(1);
    expect(ids(q.peekBatch(100, 1000))).toEqual([1]);
    q.take(1);
    expect(ids(q.peekBatch(100, 1000))).toEqual([2]);
  });

  it('keeps the byte total of what is queued through push and take', () => {
    const q = new RecordQueue();
    const a = rec(0, 100);
    const b = rec(1, 5000);
    q.push(a);
    q.push(b);
    expect(q.bytes).toBe(a.bytes + b.bytes);
    expect(ids(q.take(1))).toEqual([0]);
    expect(q.bytes).toBe(b.bytes);
    q.take(5);
    expect(q.bytes).toBe(0);
    expect(q.length).toBe(0);
  });

  it('keeps the heap total of string values through push and take', () => {
    const q = new RecordQueue();
    const text = (id: number, chars: number): QueuedRecord => ({ ...rec(id, 0), heapBytes: chars * 2 });
    q.push(text(0, 100));
    q.push(rec(1, 5000));
    q.push(text(2, 300));
    expect(q.heapBytes).toBe(800);
    q.take(2);
    expect(q.heapBytes).toBe(600);
    q.take(1);
    expect(q.heapBytes).toBe(0);
  });

  it('stays correct past the compaction point', () => {
    const q = new RecordQueue();
    const all = Array.from({ length: 10_000 }, (_, i) => rec(i, 1));
    for (const r of all) q.push(r);
    q.take(6000);
    expect(q.length).toBe(4000);
    expect(ids(q.peekBatch(2, Infinity))).toEqual([6000, 6001]);
    expect(q.bytes).toBe(all.slice(6000).reduce((n, r) => n + r.bytes, 0));
  });
});
