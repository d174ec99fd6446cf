import { murmur2 } from '../kafka/partitioner';

/**
 * The partition Kafka's default partitioner (Java client, kafkajs) puts a record with this key on, among
 * `partitions`. A channel belongs to the partition of `topics.commands` its id maps to.
 */
export function partitionOf(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
