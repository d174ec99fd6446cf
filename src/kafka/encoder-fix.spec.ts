import { fixKafkaJsEncoder } from './encoder-fix';

interface Encoder {
  buffer: Buffer;
  writeVarInt(v: number): Encoder;
  writeUVarInt(v: number): Encoder;
  writeVarLong(v: unknown): Encoder;
  writeString(v: string | null): Encoder;
  writeBytes(v: Buffer | string | null): Encoder;
  writeVarIntBytes(v: Buffer | string | null): Encoder;
  writeInt64(v: number): Encoder;
  writeEncoder(e: Encoder): Encoder;
}
const EncoderClass = require('kafkajs/src/protocol/encoder') as (new (size?: number) => Encoder) & { sizeOfVarLong(v: unknown): number };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => Encoder;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (b: object) => Promise<Encoder> };
const Long = require('kafkajs/src/utils/long') as { fromValue(v: unknown): unknown };

const VARINTS = [0, 1, 63, 64, 127, 128, 255, 8191, 8192, 16383, 16384, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, -1, -64, -65, -(2 ** 31), 2 ** 31, 2 ** 32 + 5];
const VARLONGS: unknown[] = [
  0, 1, -1, 63, 64, -64, -65, 2 ** 30 - 1, -(2 ** 30), 2 ** 30, -(2 ** 30) - 1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1,
  1_733_400_000_000, -1_733_400_000_000, Number.MAX_SAFE_INTEGER, '12345', Long.fromValue(99),
];
const big = 'x'.repeat(3000);
const ceHeaders = Object.fromEntries(['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_time', 'ce_subject', 'ce_dataschema', 'content-type', 'ce_chatbridgechannel', 'ce_partitionkey'].map((k, i) => [k, `value-${i}-é`]));

/** Everything the produce path encodes, as hex: varints, varlongs, strings, bytes, records, a record batch. */
async function encodings(): Promise<string[]> {
  const out: string[] = [];
  for (const v of VARINTS) out.push(new EncoderClass().writeVarInt(v).writeUVarInt(v).buffer.toString('hex'));
  for (const v of VARLONGS) out.push(`${new EncoderClass().writeVarLong(v).buffer.toString('hex')} (${EncoderClass.sizeOfVarLong(v)} bytes)`);
  out.push(new EncoderClass().writeString('héllo').writeString(null).writeBytes(Buffer.from(big)).writeBytes(big).writeBytes(null).writeVarIntBytes(big).writeInt64(2 ** 40).buffer.toString('hex'));
  out.push(new EncoderClass(2).writeEncoder(new EncoderClass().writeString(big)).buffer.toString('hex'));
  const records = [
    Record({ offsetDelta: 0, timestampDelta: 0, key: Buffer.from('conversation-1'), value: Buffer.from('{"a":1}'), headers: ceHeaders }),
    Record({ offsetDelta: 1, timestampDelta: 1500, key: null, value: null }),
    Record({ offsetDelta: 300, timestampDelta: -5, key: Buffer.from('k'), value: Buffer.from(big), headers: { multi: ['a', 'b'], empty: '' } }),
  ];
  for (const r of records) out.push(r.buffer.toString('hex'));
  const batch = await RecordBatch({ firstTimestamp: 1_733_400_000_000, maxTimestamp: 1_733_400_001_500, records, lastOffsetDelta: 300, producerId: 7, producerEpoch: 1, firstSequence: 42 });
  out.push(batch.buffer.toString('hex'));
  return out;
}

describe('kafkajs encoder fix', () => {
  it('is written for the kafkajs version package.json pins: another version re-examines it', () => {
    expect((require('kafkajs/package.json') as { version: string }).version).toBe('2.2.4');
  });

  it('encodes byte for byte what kafkajs encodes (varints, varlongs and their sizes, strings, bytes past a first buffer, records with headers, a record batch)', async () => {
    const before = await encodings();
    fixKafkaJsEncoder();
    const after = await encodings();
    expect(after).toHaveLength(before.length);
    after.forEach((hex, i) => expect({ i, hex }).toEqual({ i, hex: before[i] }));
  });

  it('starts an encoder without a buffer of its own and grows it from the pool', () => {
    fixKafkaJsEncoder();
    const e = new EncoderClass() as Encoder & { buf: Buffer };
    expect(e.buf.length).toBe(0);
    e.writeVarInt(1);
    expect(e.buf.length).toBe(64);
    expect(e.buf.buffer.byteLength).toBe(Buffer.poolSize);
  });
});
