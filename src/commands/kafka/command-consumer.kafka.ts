import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { BridgeError, describeError } from '../../common/errors';
import type { KafkaConfig, KafkaConsumerConfig } from '../../config/config.schema';
import type { Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import type { CommandDoorApi } from '../command.types';
import { classifyRefusal, parseCommandRecord } from './command-record';
import { FORWARDED_HEADER, type CommandForwarder } from '../../cluster/command-forwarder';
import type { ClusterMembership } from '../../cluster/membership';
import type { ClusterOwnership } from '../../cluster/ownership';
import { ConsumerRunner, consumerSettings } from '../../kafka/consumer-runner';
import { deadRecord } from '../../kafka/poison';

/** What the Kafka command door needs besides its collaborators. */
export interface KafkaCommandConsumerOptions {
  /** `kafka.topics.commands`. */
  topic: string;
  /** `kafka.consumer.commandGroup`, else `<clientId>.commands`: replicas of one deployment share it. */
  groupId: string;
  consumer: KafkaConsumerConfig;
  /**
   * `cluster.enabled`: the group is the cluster's membership (its settings, and its events make the channels'
   * ownership), and records of a channel found on another partition are re-routed to its own.
   */
  cluster?: { membership: ClusterMembership; ownership: ClusterOwnership; forwarder: CommandForwarder };
}

/** Dead-letter origin of refused command records. */
const KAFKA_COMMANDS_ORIGIN = 'kafka-commands';

/**
 * The Kafka door of the command gateway: a consumer group on `topics.commands` (on the shared consumer
 * runner) hands each record to the CommandService, in order per partition. A record's offset is committed only once
 * the command is in the ledger (`submit` resolved) or the record was dead-lettered (bad JSON, 400/404/409/422), so a
 * crash re-reads at most what was not finished, and the ledger answers those repeats without sending again. A
 * transient refusal (503) leaves the record in Kafka: its partition is paused and the record offered again after a
 * backoff. Anything else that throws is the runner's poison policy: a few tries, then a dead letter.
 */
export class KafkaCommandConsumer {
  private readonly runner: ConsumerRunner;

  constructor(
    kafka: Kafka,
    private readonly opts: KafkaCommandConsumerOptions,
    private readonly commands: CommandDoorApi,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    const membership = opts.cluster?.membership;
    this.runner = new ConsumerRunner(kafka, {
      name: 'command consumer', origin: KAFKA_COMMANDS_ORIGIN, topic: opts.topic, groupId: () => opts.groupId,
      settings: membership?.consumerSettings(opts.consumer) ?? consumerSettings(opts.consumer),
      fromBeginning: () => true, poisonMaxTries: opts.consumer.poisonMaxTries, commit: true, concurrency: 4,
      ...membership?.hooks,
    }, (message, partition) => this.handle(partition, message), { log, metrics, deadLetters });
  }

  /** Joins the group in the background (Kafka may be down: it keeps trying); never blocks the bridge's start. */
  start(): void {
    this.runner.start();
  }

  /** Stops taking records: the record in hand finishes and is committed, then the group is left (bounded). */
  async stop(deadlineMs: number): Promise<void> {
    this.opts.cluster?.membership.stop();
    await this.runner.stop(deadlineMs);
  }

  /**
   * Finishes a record (in the ledger, re-routed or dead-lettered as invalid), or throws: a retriable BridgeError for a
   * transient refusal (offered again as long as it lasts), the service's own error for anything unexpected.
   */
  private async handle(partition: number, message: KafkaMessage): Promise<void> {
    const parsed = parseCommandRecord(message.key, message.value);
    if (!parsed.ok) {
      await this.deadLetter(partition, message, undefined, `invalid_command: ${parsed.error}`, 400);
      return;
    }
    const cluster = this.opts.cluster;
    const ownerKey = cluster && parsed.channelId !== undefined ? this.commands.ownerKey(parsed.channelId, conversationOf(parsed.body)) : undefined;
    const home = cluster && ownerKey !== undefined ? cluster.ownership.partitionFor(ownerKey) : undefined;
    if (cluster && ownerKey !== undefined && home !== undefined && home !== partition) {
      // Produced with another partitioner (librdkafka's default is not Kafka's), or keyed by the channel while the
      // command belongs to a spread conversation: the holder reads `home`.
      try {
        await cluster.forwarder.reroute(ownerKey, message.value as Buffer, message.headers ?? {});
      } catch (err) {
        this.metrics.kafkaCommands.inc({ outcome: 'retried' });
        throw new BridgeError('reroute_failed', `command record could not be re-routed to its channel's partition ${home}: ${describeError(err)}`, { retriable: true, cause: err });
      }
      this.metrics.kafkaCommands.inc({ outcome: 'rerouted' });
      this.log.info({ partition, offset: message.offset, channel: parsed.channelId, key: ownerKey, to: home }, 'command record on another partition than its holder\'s: re-routed to it');
      return;
    }
    try {
      const forwarded = message.headers?.[FORWARDED_HEADER] !== undefined;
      const result = await this.commands.submit(parsed.body, { door: 'kafka', channelId: parsed.channelId, forwarded });
      this.metrics.kafkaCommands.inc({ outcome: result.duplicate ? 'duplicate' : 'accepted' });
    } catch (err) {
      const refusal = classifyRefusal(err);
      if (refusal.action === 'dead_letter') {
        await this.deadLetter(partition, message, parsed.channelId, refusal.error, refusal.status);
        return;
      }
      this.metrics.kafkaCommands.inc({ outcome: 'retried' });
      // A declared transient refusal (503: busy, ledger down, shutting down) waits as long as it lasts; anything else
      // is not this door's to judge and goes to the poison policy.
      if (refusal.code === 'unexpected_error') throw err;
      throw new BridgeError(refusal.code, refusal.error, { retriable: true, cause: err });
    }
  }

  private async deadLetter(partition: number, message: KafkaMessage, channelId: string | undefined, error: string, status?: number): Promise<void> {
    const key = message.key?.length ? message.key.toString('utf8') : null;
    this.log.warn({ partition, offset: message.offset, channel: channelId ?? key ?? undefined, err: error }, 'command record refused; dead-lettered');
    this.metrics.kafkaCommands.inc({ outcome: 'invalid' });
    await this.deadLetters.write({ reason: 'invalid_command', origin: KAFKA_COMMANDS_ORIGIN, channelId: channelId ?? key ?? undefined, record: deadRecord(this.opts.topic, partition, message), error, status });
  }
}

/** The command door's consumer group: `kafka.consumer.commandGroup`, else `<clientId>.commands`. */
export function commandGroupId(cfg: KafkaConfig): string {
  return cfg.consumer.commandGroup ?? `${cfg.clientId}.commands`;
}

/** The body's `conversationId`, when it has one (the service validates the rest). */
function conversationOf(body: unknown): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>).conversationId : undefined;
}
