// src/kafka/ is the Kafka layer: client, writer, consumer runner, follower, scan, topics. Elsewhere, a Kafka-backed
// implementation of a role is `<role>.kafka.ts` with class `Kafka<Role>`; a sink is `sinks/<name>/<name>.sink.ts` like every sink.
import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig, type logCreator, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConfig } from '../config/config.schema';
import { fixKafkaJsEncoder } from './encoder-fix';
import { fixKafkaJsRequestQueue } from './request-queue-fix';

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
  fixKafkaJsRequestQueue();
  fixKafkaJsEncoder();
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
