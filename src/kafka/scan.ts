import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { ConsumerRunner, type ConsumerRunnerDeps } from './consumer-runner';
import { headerStrings } from './record-headers';
import { KafkaConsumerConfig } from '../config/config.schema';
import { BridgeError, describeError } from '../common/errors';
import { TopicEnds } from './topics';

/** One record as `scanTopic` hands it over (key, value and header values decoded as UTF-8). */
export interface ScannedRecord {
  key: string | null;
  value: string | null;
  /** Record timestamp (epoch ms). */
  timestamp: number;
  headers: Record<string, string>;
}

/** What `scanTopic` calls for each record. */
export type OnTopicRecord = (record: ScannedRecord) => void;

/** kafka.consumer defaults (the poison-record tries); a scan has no settings of its own. */
const DEFAULTS = new KafkaConsumerConfig();

/**
 * Reads a topic from its beginning up to the end offsets of when the scan starts (later records are not this
 * scan's), in offset order per partition, with a throwaway consumer group (`<groupPrefix><uuid>`, no commits), on
 * the shared consumer runner (restarts within the time budget, poison-record policy), then disconnects. A topic
 * that does not exist or holds nothing is read without joining a group. Gives up with a retriable
 * `topic_unreadable` BridgeError after `timeoutMs`, and then closes its clients in the background.
 */
export async function scanTopic(kafka: Kafka, topic: string, onRecord: OnTopicRecord, timeoutMs: number, groupPrefix: string, deps: ConsumerRunnerDeps): Promise<void> {
  const admin = kafka.admin();
  let runner: ConsumerRunner | undefined;
  let abandoned = false;
  // After a timeout, a step that completes late must not go on and leave a client running.
  const step = async <T>(p: Promise<T>): Promise<T> => {
    const v = await p;
    if (abandoned) throw new Error('abandoned');
    return v;
  };
  const cleanup = () => Promise.allSettled([runner?.stop(timeoutMs), admin.disconnect()]);

  const read = async (): Promise<void> => {
    await step(admin.connect());
    const ends = await step(TopicEnds.read(admin, topic));
    if (ends.reached) return;
    await new Promise<void>((resolve) => {
      const reached = (partition: number, offset: number): void => {
        if (ends.pass(partition, offset)) resolve();
      };
      runner = new ConsumerRunner(kafka, {
        name: `scan of ${topic}`, origin: `scan:${topic}`, topic, groupId: () => `${groupPrefix}${randomUUID()}`,
        settings: { maxWaitTimeInMs: 250, sessionTimeout: 10_000, heartbeatInterval: 1000 }, fromBeginning: () => true,
        poisonMaxTries: DEFAULTS.poisonMaxTries, commit: false, ensureTopic: false,
        onPoisoned: (partition, offset) => reached(partition, Number(offset)),
      }, (message, partition) => {
        const offset = Number(message.offset);
        if (ends.covers(partition, offset)) {
          onRecord({ key: message.key?.toString('utf8') ?? null, value: message.value?.toString('utf8') ?? null, timestamp: Number(message.timestamp), headers: headerStrings(message.headers) });
        }
        reached(partition, offset);
      }, deps);
      if (!abandoned) runner.start();
    });
  };

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BridgeError('topic_unreadable', `could not read topic "${topic}" within ${timeoutMs} ms (is Kafka reachable?)`, { retriable: true })), timeoutMs);
  });
  try {
    await Promise.race([read(), timeout]);
  } catch (err) {
    abandoned = true;
    // Not waited for: a client stuck connecting lets go only at its own request timeout.
    void cleanup();
    if (err instanceof BridgeError) throw err;
    throw new BridgeError('topic_unreadable', `cannot read topic "${topic}": ${describeError(err)}`, { retriable: true, cause: err });
  } finally {
    abandoned = true;
    clearTimeout(timer);
  }
  await cleanup();
}
