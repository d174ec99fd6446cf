import { randomBytes } from 'node:crypto';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { javaCompatiblePartitioner, murmur2, partitionOf } from './partitioner';

const metadata = (n: number, leaderless: number[] = []): PartitionerArgs['partitionMetadata'] =>
  Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: leaderless.includes(partitionId) ? -1 : 1, replicas: [1], isr: [1], partitionErrorCode: 0, offlineReplicas: [] }));

describe('javaCompatiblePartitioner', () => {
  it('puts every keyed record where kafkajs\'s DefaultPartitioner (the Java client\'s) puts it, string or Buffer keys', () => {
    const ours = javaCompatiblePartitioner();
    const kafkajs = Partitioners.DefaultPartitioner();
    const keys: Array<string | Buffer> = ['wa-sales:5511999999999@s.whatsapp.net', '', 'a', 'ab', 'abc', 'abcd', 'ünïcødé', Buffer.from([0xff, 0x00, 0x80, 0x7f, 0x01])];
    for (let i = 0; i < 300; i++) keys.push(i % 2 ? randomBytes(1 + (i % 40)) : randomBytes(1 + (i % 40)).toString('base64'));
    for (const n of [1, 3, 8, 12, 64]) {
      for (const key of keys) {
        const args = { topic: 't', partitionMetadata: metadata(n), message: { key, value: null } };
        expect([key, n, ours(args)]).toEqual([key, n, kafkajs(args)]);
      }
    }
  });

  it('hashes a key that is neither a string nor a Buffer as kafkajs does (its string form)', () => {
    const ours = javaCompatiblePartitioner();
    const kafkajs = Partitioners.DefaultPartitioner();
    for (const key of [0, 7, 123456789, -3]) {
      const args = { topic: 't', partitionMetadata: metadata(12), message: { key: key as unknown as string, value: null } };
      expect([key, ours(args)]).toEqual([key, kafkajs(args)]);
    }
  });

  it('keeps a partition the record names, even with a key', () => {
    const ours = javaCompatiblePartitioner();
    expect(ours({ topic: 't', partitionMetadata: metadata(8), message: { key: 'k', value: null, partition: 5 } })).toBe(5);
    expect(ours({ topic: 't', partitionMetadata: metadata(8), message: { key: 'k', value: null, partition: 0 } })).toBe(0);
  });

  it('spreads keyless records round robin over the partitions that have a leader', () => {
    const ours = javaCompatiblePartitioner();
    const partitionMetadata = metadata(4, [1]);
    const seen = Array.from({ length: 9 }, () => ours({ topic: 't', partitionMetadata, message: { value: 'x' } }));
    expect(new Set(seen)).toEqual(new Set([0, 2, 3]));
    for (let i = 3; i < seen.length; i++) expect(seen[i]).toBe(seen[i - 3]);
  });
});

describe('partitionOf', () => {
  const kafkajs = Partitioners.DefaultPartitioner();

  it('puts every key where kafkajs\'s default (Java-compatible) partitioner puts it', () => {
    const keys = ['wa-sales', 'support', 'hub', 'site-chat', 'bot-eu', '', 'a', 'ab', 'abc', 'abcd', 'ünïcødé-channel'];
    for (let i = 0; i < 500; i++) keys.push(randomBytes(1 + (i % 40)).toString('hex').slice(0, 1 + (i % 64)));
    for (const n of [1, 2, 3, 4, 6, 12, 64]) {
      for (const key of keys) {
        expect([key, n, partitionOf(key, n)]).toEqual([key, n, kafkajs({ topic: 't', partitionMetadata: metadata(n), message: { key, value: null } })]);
      }
    }
  });

  it('gives the Java client\'s murmur2 values (Kafka\'s UtilsTest.testMurmur2)', () => {
    const cases: Array<[string, number]> = [
      ['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536], ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107],
    ];
    for (const [key, hash] of cases) expect([key, murmur2(key)]).toEqual([key, hash]);
  });
});
