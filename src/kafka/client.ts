import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig, type logCreator, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { describeError } from '../common/errors';
import type { KafkaConfig } from '../config/config.schema';

/** kafkajs log level → pino method. kafkajs's INFO is chatty (joins, connects): it becomes debug. */
const LEVELS: Record<number, 'error' | 'warn' | 'debug' | 'trace'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'debug',
  [logLevel.DEBUG]: 'trace',
};

/** Bridges kafkajs's logs into the application logger, one JSON line each, secrets redacted by pino. */
export function kafkaLogCreator(root: Logger): logCreator {
  const log = root.child({ context: 'kafkajs' });
  return () => ({ level, log: entry }) => {
    const { message, namespace, ...extra } = entry;
    const method = LEVELS[level] ?? 'debug';
    // kafkajs puts `broker`, `clientId`, `error`, `retryCount` … beside the message.
    log[method]({ namespace, ...extra, timestamp: undefined, logger: undefined }, message);
  };
}

/** Builds the kafkajs client from the validated config. */
export function createKafka(cfg: KafkaConfig, root: Logger): Kafka {
  const conf: KafkaJsConfig = {
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    ssl: cfg.ssl,
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.producer.requestTimeoutMs,
    logLevel: logLevel.INFO,
    logCreator: kafkaLogCreator(root),
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
  };
  if (cfg.sasl) conf.sasl = { mechanism: cfg.sasl.mechanism, username: cfg.sasl.username, password: cfg.sasl.password } as SASLOptions;
  return new Kafka(conf);
}

/** `kafka.createTopics: true`: creates missing topics once. A broker that forbids it gets a warning, not a crash. */
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
