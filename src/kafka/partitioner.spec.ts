import { randomBytes } from 'node:crypto';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { javaCompatiblePartitioner } from './partitioner';

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
