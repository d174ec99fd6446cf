import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { describeError } from '../common/errors';
import type { KafkaConfig } from '../config/config.schema';

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

/**
 * `kafka.createTopics: true`: creates the configured topics that are missing (`state` and `commandLedger`
 * compacted, docs/configuration.md). A broker that forbids it gets a warning, not a crash.
 */
export async function createMissingTopics(kafka: Kafka, cfg: KafkaConfig, log: Logger): Promise<void> {
  if (!cfg.createTopics) return;
  const admin = kafka.admin();
  const { events, commands, deadLetter, state, commandLedger } = cfg.topics;
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const missing = [events, commands, deadLetter, state, commandLedger].filter((t) => !existing.has(t));
    if (missing.length) {
      // The state topic keeps only each channel's latest record, however old; the ledger each command's latest state.
      const configEntries = (topic: string) => (topic === state || topic === commandLedger ? [{ name: 'cleanup.policy', value: 'compact' }] : undefined);
      await admin.createTopics({ waitForLeaders: true, topics: missing.map((topic) => ({ topic, numPartitions: cfg.topicPartitions ?? -1, configEntries: configEntries(topic) })) });
      log.info({ topics: missing }, 'created missing Kafka topics');
    }
  } catch (err) {
    log.warn({ err: describeError(err) }, 'could not create Kafka topics (kafka.createTopics); continuing with what exists');
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Where each partition of a topic ended when a read from its beginning began, and which of those ends the read has
 * not passed yet: the follower's "caught up" and the scan's "done" (records past these ends are not the scan's).
 */
export class TopicEnds {
  private constructor(private readonly ends: Map<number, number>) {}

  /** The offset of each partition's last record now; none for a missing or empty topic. */
  static async read(admin: Admin, topic: string): Promise<TopicEnds> {
    const ends = new Map<number, number>();
    // listTopics first: asking for the offsets of a missing topic could create it on a broker that auto-creates.
    if ((await admin.listTopics()).includes(topic)) {
      for (const p of await admin.fetchTopicOffsets(topic)) if (Number(p.high) > Number(p.low)) ends.set(p.partition, Number(p.high) - 1);
    }
    return new TopicEnds(ends);
  }

  /** True once every partition's end was passed (at once for a topic that held nothing). */
  get reached(): boolean {
    return !this.ends.size;
  }

  /** True for a record that existed when the read began, on a partition whose end is not passed yet. */
  covers(partition: number, offset: number): boolean {
    const end = this.ends.get(partition);
    return end !== undefined && offset <= end;
  }

  /** Notes a record handed over (or dead-lettered); true when it was the last end missing. */
  pass(partition: number, offset: number): boolean {
    const end = this.ends.get(partition);
    if (end === undefined || offset < end) return false;
    this.ends.delete(partition);
    return !this.ends.size;
  }
}
