import type { Kafka } from 'kafkajs';

/**
 * Resolves with the number of partitions of `topic` once it has some (asking for its metadata creates it on a
 * broker that auto-creates topics); rejects otherwise. Called before a consumer group joins: a member that joins while the topic has no partitions
 * is assigned none of them until its next metadata refresh, minutes later.
 */
export async function ensureTopicReady(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const count = topics[0]?.partitions.length ?? 0;
    if (!count) throw new Error(`topic ${topic} has no partitions yet`);
    return count;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
