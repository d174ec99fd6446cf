import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { ChannelRuntime } from './channels/channel-runtime';
import { FrameIntake } from './channels/frame-intake';
import { ModeController } from './channels/mode-controller';
import { ModeSwitcher } from './channels/mode-switcher';
import { CommandForwarder } from './cluster/command-forwarder';
import { ClusterMembership } from './cluster/membership';
import { ClusterOwnership, SoleOwnership, type ChannelOwnership, type OwnershipChange } from './cluster/ownership';
import { SharedState } from './cluster/shared-state';
import type { DurableModes } from './channels/mode-persistence';
import { KafkaModeStore, stateTopicTimeoutMs } from './channels/mode-store.kafka';
import { CommandLedger } from './commands/command-ledger';
import { CommandRouter } from './commands/command-router';
import { CommandService } from './commands/command.service';
import { commandGroupId, KafkaCommandConsumer } from './commands/kafka/command-consumer.kafka';
import { KafkaLedgerStore } from './commands/kafka/ledger-store.kafka';
import type { AppConfig } from './config/config.loader';
import { AuthFailureLimiter, TokenRateLimiter } from './common/rate-limit';
import { EventStream } from './gateway/event-stream';
import { InboundReceiver } from './inbound/inbound.receiver';
import { Metrics } from './health/metrics';
import { DeadLetters } from './pipeline/dead-letters';
import { EventPipeline } from './pipeline/pipeline';
import { createKafka } from './kafka/client';
import { createMissingTopics, ensureTopicReady } from './kafka/topics';
import { KafkaSink } from './sinks/kafka/kafka.sink';
import type { Sink } from './sinks/sink.interface';
import { StdoutSink } from './sinks/stdout/stdout.sink';
import { WebhookSink } from './sinks/webhook/webhook.sink';

/** Options of the composition that are not configuration (streams, for embedding and tests). */
export interface BridgeOptions {
  /** Where embedded mode writes events (default: process.stdout). */
  stdout?: Writable;
  /** Registry-level Node metrics (off in tests that start several bridges in one process). */
  defaultMetrics?: boolean;
}

/**
 * The bridge's object graph, built once from the validated config: metrics, dead letters, pipeline,
 * sinks and channels. Start order: sinks, then channels. Stop order: channels (no new events), then sinks
 * (flush what is in flight).
 */
export class Bridge {
  readonly metrics: Metrics;
  readonly deadLetters: DeadLetters;
  readonly pipeline: EventPipeline;
  /** The channels and their connections. */
  readonly channels: ChannelRuntime;
  /** Runtime mode switches and the modes channels start in. */
  readonly modes: ModeController;
  /** Inbound posts of channels in webhook mode. */
  readonly inbound: InboundReceiver;
  /** Where commands meet the channels' connectors. */
  readonly router: CommandRouter;
  /** The command gateway behind the HTTP, socket.io and Kafka doors. */
  readonly commands: CommandService;
  /** With Kafka: the command door on `topics.commands` (a consumer group). */
  readonly commandConsumer?: KafkaCommandConsumer;
  readonly kafka?: KafkaSink;
  readonly webhooks?: WebhookSink;
  /** The socket.io live event stream (`subscribe` → `event`); not a delivery sink. */
  readonly stream: EventStream;
  /** Per-token rate limit of the authenticated API (HTTP and socket.io). */
  readonly rateLimiter: TokenRateLimiter;
  /** Failed authentications per caller address (HTTP `/v1/*`, socket.io handshakes, inbound posts). */
  readonly authFailures: AuthFailureLimiter;
  /** Which channels this replica holds: all, or with `cluster.enabled` those the Kafka group assigned it. */
  readonly ownership: ChannelOwnership;
  private readonly forwarder?: CommandForwarder;
  /** Cluster: the state topic as every replica follows it (mode switches made elsewhere, spread conversations). */
  private readonly shared?: SharedState;
  /** Ownership changes are applied one after the other. */
  private handovers: Promise<void> = Promise.resolve();
  private shuttingDown = false;

  constructor(
    readonly config: AppConfig,
    readonly log: Logger,
    opts: BridgeOptions = {},
  ) {
    this.metrics = new Metrics({ defaultMetrics: opts.defaultMetrics });
    this.rateLimiter = new TokenRateLimiter(config.api.rateLimit.perSecond, config.api.rateLimit.burst);
    this.authFailures = new AuthFailureLimiter(config.api.authFailures.maxFailures, config.api.authFailures.windowMs, config.api.authFailures.maxAddresses);
    this.deadLetters = new DeadLetters(config.deadLetter.file, this.metrics, log.child({ context: 'dead-letters' }), config.limits.maxEventBytes);
    this.pipeline = new EventPipeline(config.dedupe, this.metrics, log.child({ context: 'pipeline' }), this.deadLetters);
    const kafka = config.kafka ? createKafka(config.kafka, log) : undefined;
    let durableModes: DurableModes | undefined;
    if (config.kafka && kafka) {
      const timeoutMs = stateTopicTimeoutMs(config.kafka.connectionTimeoutMs);
      if (config.cluster.enabled) {
        // Several replicas: every one follows the state topic anyway; the start-up modes come from that one read.
        this.shared = new SharedState(kafka, { topic: config.kafka.topics.state, group: commandGroupId(config.kafka), consumer: config.kafka.consumer, poison: { deadLetters: this.deadLetters, metrics: this.metrics } }, log.child({ context: 'shared-state' }));
        durableModes = { store: this.shared.modeStore(timeoutMs), timeoutMs };
      } else {
        durableModes = { store: new KafkaModeStore(kafka, config.kafka.topics.state, timeoutMs, log.child({ context: 'mode-store' })), timeoutMs };
      }
      const sinkLog = log.child({ context: 'kafka-sink' });
      const kafkaConfig = config.kafka;
      this.kafka = new KafkaSink(kafka, kafkaConfig, this.deadLetters, this.metrics, sinkLog, () => createMissingTopics(kafka, kafkaConfig, sinkLog));
      this.pipeline.addSink(this.kafka);
      this.deadLetters.useTarget(this.kafka);
    }
    if (config.webhooks.length) {
      const source = config.kafka && kafka ? { kafka, config: config.kafka } : undefined;
      this.webhooks = new WebhookSink(config.webhooks, this.deadLetters, this.metrics, log.child({ context: 'webhooks' }), source, (item) => this.pipeline.publish(item));
      this.pipeline.addSink(this.webhooks);
    }
    // docs/kafka.md: events go to stdout as JSON lines only when no other sink is configured.
    if (!this.pipeline.allSinks.length) this.pipeline.addSink(new StdoutSink(opts.stdout ?? process.stdout, this.deadLetters, this.metrics));
    // Added after that decision: the live stream is always there and counts neither as a configured sink nor for readiness.
    this.stream = new EventStream(config.api.stream, this.metrics, log.child({ context: 'event-stream' }));
    this.pipeline.addSink(this.stream);
    const cluster = config.cluster.enabled && config.kafka && kafka ? config.cluster : undefined;
    const clusterOwnership = cluster
      ? new ClusterOwnership(
        config.channels.map((c) => c.id),
        { quietAfterMs: cluster.sessionTimeoutMs - cluster.heartbeatIntervalMs, rebalanceMs: cluster.rebalanceTimeoutMs, unassignedAfterMs: cluster.sessionTimeoutMs },
        (change) => this.handover(change),
        log.child({ context: 'cluster' }),
        // The producer's connection says whether Kafka is reachable from here.
        () => this.kafka?.ready() ?? false,
      )
      : undefined;
    this.ownership = clusterOwnership ?? new SoleOwnership();
    const channelsLog = log.child({ context: 'channels' });
    const intake = new FrameIntake(config.limits, this.pipeline, this.deadLetters, this.metrics, channelsLog);
    const sockets = new ModeSwitcher(config.modeSwitch, channelsLog, this.pipeline);
    this.channels = new ChannelRuntime(config, intake, sockets, this.pipeline, this.metrics, channelsLog, this.ownership, this.shared);
    this.modes = new ModeController(this.channels, sockets, this.ownership, channelsLog, durableModes, this.shared);
    this.inbound = new InboundReceiver(this.channels, intake, sockets);
    this.router = new CommandRouter(this.channels);
    const ledgerStore = config.kafka && kafka
      ? new KafkaLedgerStore(kafka, {
        topic: config.kafka.topics.commandLedger, group: commandGroupId(config.kafka), consumer: config.kafka.consumer,
        loadTimeoutMs: stateTopicTimeoutMs(config.kafka.connectionTimeoutMs), writeTimeoutMs: config.kafka.producer.requestTimeoutMs,
        poison: { deadLetters: this.deadLetters, metrics: this.metrics },
      }, log.child({ context: 'command-ledger-store' }))
      : undefined;
    const ledger = new CommandLedger({ maxEntries: config.commands.ledgerMaxEntries, ttlMs: config.commands.ledgerTtlMs }, log.child({ context: 'command-ledger' }), ledgerStore);
    if (cluster && kafka && config.kafka) this.forwarder = new CommandForwarder(kafka, config.kafka.topics.commands, config.kafka.producer.requestTimeoutMs);
    this.commands = new CommandService(config, this.router, this.pipeline, ledger, this.metrics, log.child({ context: 'commands' }), this.ownership, this.forwarder);
    if (config.kafka && kafka) {
      const topic = config.kafka.topics.commands;
      const groupId = commandGroupId(config.kafka);
      const doorLog = log.child({ context: 'kafka-commands' });
      // In a cluster the command group is the membership: its assignment is the channels' ownership.
      const membership = cluster && clusterOwnership ? new ClusterMembership({ settings: cluster, group: groupId, partitionCount: () => ensureTopicReady(kafka, topic) }, clusterOwnership, doorLog) : undefined;
      const door = {
        topic, groupId, consumer: config.kafka.consumer,
        cluster: membership && clusterOwnership && this.forwarder ? { membership, ownership: clusterOwnership, forwarder: this.forwarder } : undefined,
      };
      this.commandConsumer = new KafkaCommandConsumer(kafka, door, this.commands, this.deadLetters, this.metrics, doorLog);
    }
  }

  /** True until shutdown begins and, with Kafka, while Kafka is reachable. */
  ready(): boolean {
    return !this.shuttingDown && this.deliverySinks().every((s) => s.ready());
  }

  /** Sinks' state for readiness. */
  sinks(): Array<{ name: string; ready: boolean; queued: number }> {
    return this.deliverySinks().map((s: Sink) => ({ name: s.name, ready: s.ready(), queued: s.depth() }));
  }

  /** The sinks that deliver events (readiness), i.e. all but the live stream. */
  private deliverySinks(): Sink[] {
    return this.pipeline.allSinks.filter((s) => s !== this.stream);
  }

  async start(): Promise<void> {
    for (const sink of this.pipeline.allSinks) await sink.start();
    // Followed from now on; the channels that spread their conversations wait (bounded) for its history.
    this.shared?.start();
    // Channels start in their persisted modes, so those are read (bounded) before any socket opens.
    // The command ledger is read while the channels start (both bounded when Kafka is down); commands left by a
    // previous run resume once both are done, so they find their connectors.
    const ledger = this.commands.start();
    await this.modes.restore();
    this.channels.start();
    this.commands.channelsStarted();
    await ledger;
    // Joins its group in the background: Kafka being slow does not hold the start.
    this.commandConsumer?.start();
    if (this.ownership instanceof ClusterOwnership) this.ownership.start();
  }

  /** Applies a rebalance: commands of lost channels are left to their new holder, lost sockets close, gained ones open. */
  private handover(change: OwnershipChange): void {
    this.handovers = this.handovers.then(async () => {
      if (this.shuttingDown) return;
      this.commands.channelsLost(change.lost);
      await this.channels.applyOwnership(change);
      this.commands.channelsGained(change.gained);
    }).catch((err: unknown) => this.log.error({ err }, 'applying a channel handover failed'));
  }

  async stop(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const deadline = Date.now() + this.config.shutdownGraceMs;
    if (this.ownership instanceof ClusterOwnership) this.ownership.stop();
    // Commands first (no new ones; running attempts end while their channels are still open), then channels, then sinks.
    // The Kafka door first: the record in hand is finished and committed while the service still takes it. In a
    // cluster that also leaves the group, so the other replicas take the channels over while these sockets close.
    await this.commandConsumer?.stop(Math.floor(this.config.shutdownGraceMs / 3));
    const leftGroupAt = Date.now();
    await this.commands.stop(Math.floor(this.config.shutdownGraceMs / 3));
    if (this.ownership.clustered) {
      // Make before break: the replicas taking over connect while these sockets still deliver.
      const hold = Math.min(this.config.cluster.handoverOverlapMs - (Date.now() - leftGroupAt), deadline - Date.now() - 1000);
      if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
    }
    await this.channels.stop();
    await this.modes.stop();
    // After the channels: closing visitors write their last read marks for the replicas taking them over.
    await this.shared?.stop(Math.min(3000, Math.max(500, deadline - Date.now() - 2000)));
    await this.forwarder?.stop();
    await Promise.all(this.pipeline.allSinks.map((s) => s.stop(Math.max(0, deadline - Date.now()))));
  }
}
