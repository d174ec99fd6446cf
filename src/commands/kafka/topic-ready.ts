import type { Kafka } from 'kafkajs';

/**
 * Resolves once `topic` has partitions (asking for its metadata creates it on a broker that auto-creates topics);
 * rejects otherwise. Called before a consumer group joins: a member that joins while the topic has no partitions
 * is assigned none of them until its next metadata refresh, minutes later.
 */
export async function ensureTopicReady(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    if (!topics[0]?.partitions.length) throw new Error(`topic ${topic} has no partitions yet`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
