import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { DurableModes } from '../channels/mode-persistence';
import { KafkaModeStore, stateTopicTimeoutMs } from '../channels/mode-store.kafka';
import { CommandForwarder } from '../cluster/command-forwarder';
import { ClusterMembership } from '../cluster/membership';
import { ClusterOwnership, type OwnershipChange } from '../cluster/ownership';
import { SharedState } from '../cluster/shared-state';
import type { CommandService } from '../commands/command.service';
import { commandGroupId, KafkaCommandConsumer } from '../commands/kafka/command-consumer.kafka';
import { KafkaLedgerStore } from '../commands/kafka/ledger-store.kafka';
import type { AppConfig } from '../config/config.loader';
import type { Metrics } from '../health/metrics';
import { createKafka } from '../kafka/client';
import { createMissingTopics, ensureTopicReady } from '../kafka/topics';
import type { DeadLetters } from '../pipeline/dead-letters';
import { KafkaSink } from '../sinks/kafka/kafka.sink';
import type { WebhookKafkaSettings } from '../sinks/webhook/webhook.sink';

/** With `cluster.enabled`: what the replicas share through Kafka. */
export interface ClusterParts {
  /** The channels this replica holds: the command group's assignment. */
  readonly ownership: ClusterOwnership;
  /** The state topic as every replica follows it (mode switches made elsewhere, spread conversations). */
  readonly shared: SharedState;
  /** Hands commands for channels another replica holds to it, through `topics.commands`. */
  readonly forwarder: CommandForwarder;
}

/** Everything the bridge builds on Kafka (docs/kafka.md), on one client. */
export interface KafkaParts {
  /** The events sink (`topics.events`); dead letters go to `topics.deadLetter` through it. */
  readonly sink: KafkaSink;
  /** The state topic: where runtime mode switches are persisted. */
  readonly durableModes: DurableModes;
  /** The command ledger on `topics.commandLedger`. */
  readonly ledgerStore: KafkaLedgerStore;
  /** Webhook deliveries follow `topics.events`, one consumer group per endpoint. */
  readonly webhookSource: WebhookKafkaSettings;
  /** Dead-letter replay reads `topics.deadLetter` with a client of its own for each replay. */
  readonly replay: { topic: string; client: () => Kafka };
  readonly cluster?: ClusterParts;
  /** The command door on `topics.commands` (a consumer group), feeding the command service. */
  commandDoor(commands: CommandService): KafkaCommandConsumer;
}

/**
 * The Kafka-backed parts, all of them or none: undefined without a `kafka` block, which is the one place where
 * "with or without Kafka" is decided. `handover` receives the cluster's ownership changes.
 */
export function kafkaParts(
  config: AppConfig, log: Logger, deadLetters: DeadLetters, metrics: Metrics, handover: (change: OwnershipChange) => void,
): KafkaParts | undefined {
  const settings = config.kafka;
  if (!settings) return undefined;
  const kafka = createKafka(settings, log);
  const group = commandGroupId(settings);
  const poison = { deadLetters, metrics };
  const stateTimeoutMs = stateTopicTimeoutMs(settings.connectionTimeoutMs);
  const sinkLog = log.child({ context: 'kafka-sink' });
  const sink = new KafkaSink(kafka, settings, deadLetters, metrics, sinkLog, () => createMissingTopics(kafka, settings, sinkLog));
  const cluster = config.cluster.enabled ? clusterParts(config, kafka, log, poison, sink, handover) : undefined;
  // Several replicas: every one follows the state topic anyway; the start-up modes come from that one read.
  const modeStore = cluster ? cluster.shared.modeStore(stateTimeoutMs) : new KafkaModeStore(kafka, settings.topics.state, stateTimeoutMs, log.child({ context: 'mode-store' }));
  const ledgerStore = new KafkaLedgerStore(kafka, {
    topic: settings.topics.commandLedger, group, consumer: settings.consumer,
    loadTimeoutMs: stateTimeoutMs, writeTimeoutMs: settings.producer.requestTimeoutMs, lingerMs: settings.producer.lingerMs, poison,
  }, log.child({ context: 'command-ledger-store' }));
  const replayLog = log.child({ context: 'webhook-replay' });
  return {
    sink,
    durableModes: { store: modeStore, timeoutMs: stateTimeoutMs },
    ledgerStore,
    webhookSource: { kafka, config: settings },
    replay: { topic: settings.topics.deadLetter, client: () => createKafka(settings, replayLog) },
    cluster,
    commandDoor: (commands) => {
      const topic = settings.topics.commands;
      const doorLog = log.child({ context: 'kafka-commands' });
      // In a cluster the command group is the membership: its assignment is the channels' ownership.
      const membership = cluster && new ClusterMembership({ settings: config.cluster, group, partitionCount: () => ensureTopicReady(kafka, topic) }, cluster.ownership, doorLog);
      const door = {
        topic, groupId: group, consumer: settings.consumer,
        cluster: cluster && membership ? { membership, ownership: cluster.ownership, forwarder: cluster.forwarder } : undefined,
      };
      return new KafkaCommandConsumer(kafka, door, commands, deadLetters, metrics, doorLog);
    },
  };
}

function clusterParts(
  config: AppConfig, kafka: Kafka, log: Logger, poison: { deadLetters: DeadLetters; metrics: Metrics },
  sink: KafkaSink, handover: (change: OwnershipChange) => void,
): ClusterParts {
  const settings = config.kafka as NonNullable<AppConfig['kafka']>;
  const cluster = config.cluster;
  const ownership = new ClusterOwnership(
    config.channels.map((c) => c.id),
    { quietAfterMs: cluster.sessionTimeoutMs - cluster.heartbeatIntervalMs, rebalanceMs: cluster.rebalanceTimeoutMs, unassignedAfterMs: cluster.sessionTimeoutMs },
    handover,
    log.child({ context: 'cluster' }),
    // The producer's connection says whether Kafka is reachable from here.
    () => sink.ready(),
  );
  const shared = new SharedState(kafka, { topic: settings.topics.state, group: commandGroupId(settings), consumer: settings.consumer, poison }, log.child({ context: 'shared-state' }));
  const forwarder = new CommandForwarder(kafka, settings.topics.commands, settings.producer.requestTimeoutMs);
  return { ownership, shared, forwarder };
}
