import { randomBytes } from 'node:crypto';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { murmur2 } from '../kafka/partitioner';
import { partitionOf } from './partition';

describe('partitionOf', () => {
  const kafkajs = Partitioners.DefaultPartitioner();
  const metadata = (n: number): PartitionerArgs['partitionMetadata'] =>
    Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0, offlineReplicas: [] }));

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
