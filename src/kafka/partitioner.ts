import { randomInt } from 'node:crypto';
import type { ICustomPartitioner } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`, which kafkajs's DefaultPartitioner also uses), in 32-bit
 * arithmetic.
 */
export function murmur2(key: string | Buffer): number {
  // As kafkajs: a Buffer as it is, anything else as the UTF-8 of its string form.
  const data = Buffer.isBuffer(key) ? key : Buffer.from(String(key), 'utf8');
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rest = length & 3;
  if (rest >= 3) h ^= data[whole + 2] << 16;
  if (rest >= 2) h ^= data[whole + 1] << 8;
  if (rest >= 1) h = Math.imul(h ^ data[whole], M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition Kafka's default partitioner (Java client, kafkajs) puts a record with this key on, among
 * `partitions`. A channel belongs to the partition of `topics.commands` its id maps to (cluster/ownership.ts).
 */
export function partitionOf(key: string | Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/**
 * The partitioner of every producer of the bridge: kafkajs's DefaultPartitioner, computed in 32-bit arithmetic.
 * kafkajs's own takes a 64-bit Long (a BigInt) per step of murmur2, of which only the low 32 bits count, and filters
 * the partition list for every record; on the command door that was about a sixth of all the memory allocated per
 * command. The same choices as kafkajs's: a record that names its partition keeps it; a keyed one goes to
 * `partitionOf(key)` (where the Java client puts it too, so consumers of other clients and the cluster agree); a
 * keyless one goes round robin over the partitions that have a leader.
 */
export const javaCompatiblePartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (message.key !== null && message.key !== undefined) return partitionOf(message.key, partitionMetadata.length);
    const next = ((counters.get(topic) ?? randomInt(0x7fffffff)) + 1) & 0x7fffffff;
    counters.set(topic, next);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    return available.length ? available[next % available.length].partitionId : next % partitionMetadata.length;
  };
};
