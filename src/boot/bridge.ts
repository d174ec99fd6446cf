import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { ChannelRuntime } from '../channels/channel-runtime';
import { FrameIntake } from '../channels/frame-intake';
import { ModeController } from '../channels/mode-controller';
import { ModeSwitcher } from '../channels/mode-switcher';
import { SoleOwnership, type ChannelOwnership, type OwnershipChange } from '../cluster/ownership';
import { CommandLedger } from '../commands/command-ledger';
import { CommandRouter } from '../commands/command-router';
import { CommandService } from '../commands/command.service';
import type { KafkaCommandConsumer } from '../commands/kafka/command-consumer.kafka';
import type { AppConfig } from '../config/config.loader';
import { AuthFailureLimiter, TokenRateLimiter } from '../common/rate-limit';
import { EventStream } from '../gateway/event-stream';
import { Metrics } from '../health/metrics';
import { Readiness } from '../health/readiness';
import { InboundReceiver } from '../inbound/inbound.receiver';
import { DeadLetters } from '../pipeline/dead-letters';
import { EventPipeline } from '../pipeline/pipeline';
import type { KafkaSink } from '../sinks/kafka/kafka.sink';
import { StdoutSink } from '../sinks/stdout/stdout.sink';
import { WebhookReplayer } from '../sinks/webhook/webhook.replay';
import { WebhookSink } from '../sinks/webhook/webhook.sink';
import { kafkaParts, type ClusterParts } from './kafka-parts';

/** Options of the composition that are not configuration (streams, for embedding and tests). */
export interface BridgeOptions {
  /** Where embedded mode writes events (default: process.stdout). */
  stdout?: Writable;
  /** Registry-level Node metrics (off in tests that start several bridges in one process). */
  defaultMetrics?: boolean;
}

/**
 * The composition root: builds the bridge's object graph once from the validated config and owns its start and stop
 * order. Only the boot files know it; Nest's providers take its services one by one (AppModule.forBridge).
 * Start: sinks, shared state, command ledger and channels, then the Kafka command door and cluster membership.
 * Stop: membership, door, commands, the handover hold, channels, shared state, forwarder, then sinks (flush).
 */
export class Bridge {
  readonly metrics: Metrics;
  readonly deadLetters: DeadLetters;
  readonly pipeline: EventPipeline;
  /** What `GET /readyz` answers. */
  readonly readiness: Readiness;
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
  /** With Kafka: the events sink (spilled to the dead-letter file by a hard stop). */
  readonly kafka?: KafkaSink;
  readonly webhooks?: WebhookSink;
  /** Re-sends an endpoint's dead-lettered events (`POST /v1/webhooks/:id/replay`). */
  readonly replayer: WebhookReplayer;
  /** The socket.io live event stream (`subscribe` → `event`); not a delivery sink. */
  readonly stream: EventStream;
  /** Per-token rate limit of the authenticated API (HTTP and socket.io). */
  readonly rateLimiter: TokenRateLimiter;
  /** Failed authentications per caller address (HTTP `/v1/*`, socket.io handshakes, inbound posts). */
  readonly authFailures: AuthFailureLimiter;
  /** Which channels this replica holds: all, or with `cluster.enabled` those the Kafka group assigned it. */
  private readonly ownership: ChannelOwnership;
  /** With Kafka: the command door on `topics.commands` (a consumer group). */
  private readonly commandConsumer?: KafkaCommandConsumer;
  /** With `cluster.enabled`: ownership, the followed state topic, the command forwarder. */
  private readonly cluster?: ClusterParts;
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
    const kafka = kafkaParts(config, log, this.deadLetters, this.metrics, (change) => this.handover(change));
    if (kafka) {
      this.kafka = kafka.sink;
      this.pipeline.addSink(kafka.sink);
      this.deadLetters.useTarget(kafka.sink);
    }
    if (config.webhooks.length) {
      this.webhooks = new WebhookSink(config.webhooks, this.deadLetters, this.metrics, log.child({ context: 'webhooks' }), kafka?.webhookSource, (item) => this.pipeline.publish(item));
      this.pipeline.addSink(this.webhooks);
    }
    // docs/kafka.md: events go to stdout as JSON lines only when no other sink is configured.
    if (!this.pipeline.allSinks.length) this.pipeline.addSink(new StdoutSink(opts.stdout ?? process.stdout, this.deadLetters, this.metrics));
    // Added after that decision: the live stream is always there and counts neither as a configured sink nor for readiness.
    this.stream = new EventStream(config.api.stream, this.metrics, log.child({ context: 'event-stream' }));
    this.pipeline.addSink(this.stream);
    this.readiness = new Readiness(this.pipeline, this.stream);
    this.cluster = kafka?.cluster;
    this.ownership = this.cluster?.ownership ?? new SoleOwnership();
    const channelsLog = log.child({ context: 'channels' });
    const intake = new FrameIntake(config.limits, this.pipeline, this.deadLetters, this.metrics, channelsLog);
    const sockets = new ModeSwitcher(config.modeSwitch, channelsLog, this.pipeline);
    this.channels = new ChannelRuntime(config, intake, sockets, this.pipeline, this.metrics, channelsLog, this.ownership, this.cluster?.shared);
    this.modes = new ModeController(this.channels, sockets, this.ownership, channelsLog, kafka?.durableModes, this.cluster?.shared);
    this.inbound = new InboundReceiver(this.channels, intake, sockets);
    this.router = new CommandRouter(this.channels);
    const ledger = new CommandLedger({ maxEntries: config.commands.ledgerMaxEntries, ttlMs: config.commands.ledgerTtlMs }, log.child({ context: 'command-ledger' }), kafka?.ledgerStore);
    this.commands = new CommandService(config, this.router, this.pipeline, ledger, this.metrics, log.child({ context: 'commands' }), this.ownership, this.cluster?.forwarder);
    this.commandConsumer = kafka?.commandDoor(this.commands);
    this.replayer = new WebhookReplayer({
      endpoints: this.webhooks,
      deadLetterFile: config.deadLetter.file,
      deadLetters: this.deadLetters,
      kafka: kafka?.replay,
      metrics: this.metrics,
      log: log.child({ context: 'webhook-replay' }),
    });
  }

  async start(): Promise<void> {
    for (const sink of this.pipeline.allSinks) await sink.start();
    // Followed from now on; the channels that spread their conversations wait (bounded) for its history.
    this.cluster?.shared.start();
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
    this.cluster?.ownership.start();
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

  /** True from the start of `stop()`. */
  get stopping(): boolean {
    return this.shuttingDown;
  }

  async stop(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.readiness.stopping();
    const deadline = Date.now() + this.config.shutdownGraceMs;
    this.cluster?.ownership.stop();
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
    await this.cluster?.shared.stop(Math.min(3000, Math.max(500, deadline - Date.now() - 2000)));
    await this.cluster?.forwarder.stop();
    await Promise.all(this.pipeline.allSinks.map((s) => s.stop(Math.max(0, deadline - Date.now()))));
  }
}
