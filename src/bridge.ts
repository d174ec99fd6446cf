import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { ChannelsService } from './channels/channels.service';
import type { DurableModes } from './channels/mode-persistence';
import { KafkaModeStore, stateTopicTimeoutMs } from './channels/mode-store.kafka';
import type { AppConfig } from './config/config.loader';
import { Metrics } from './health/metrics';
import { DeadLetters } from './pipeline/dead-letters';
import { EventPipeline } from './pipeline/pipeline';
import { createKafka } from './sinks/kafka/kafka.client';
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
  readonly channels: ChannelsService;
  readonly kafka?: KafkaSink;
  readonly webhooks?: WebhookSink;
  private shuttingDown = false;

  constructor(
    readonly config: AppConfig,
    readonly log: Logger,
    opts: BridgeOptions = {},
  ) {
    this.metrics = new Metrics({ defaultMetrics: opts.defaultMetrics });
    this.deadLetters = new DeadLetters(config.deadLetter.file, this.metrics, log.child({ context: 'dead-letters' }));
    this.pipeline = new EventPipeline(config.dedupe, this.metrics, log.child({ context: 'pipeline' }));
    const kafka = config.kafka ? createKafka(config.kafka, log) : undefined;
    let durableModes: DurableModes | undefined;
    if (config.kafka && kafka) {
      const timeoutMs = stateTopicTimeoutMs(config.kafka.connectionTimeoutMs);
      durableModes = { store: new KafkaModeStore(kafka, config.kafka.topics.state, timeoutMs, log.child({ context: 'mode-store' })), timeoutMs };
      this.kafka = new KafkaSink(kafka, config.kafka, this.deadLetters, this.metrics, log.child({ context: 'kafka-sink' }));
      this.pipeline.addSink(this.kafka);
      this.deadLetters.useTarget(this.kafka);
    }
    if (config.webhooks.length) {
      const source = config.kafka && kafka ? { kafka, config: config.kafka } : undefined;
      this.webhooks = new WebhookSink(config.webhooks, this.deadLetters, this.metrics, log.child({ context: 'webhooks' }), source, (item) => this.pipeline.publish(item));
      this.pipeline.addSink(this.webhooks);
    }
    // SPEC §5: events go to stdout as JSON lines only when no other sink is configured.
    if (!this.pipeline.allSinks.length) this.pipeline.addSink(new StdoutSink(opts.stdout ?? process.stdout, this.deadLetters, this.metrics));
    this.channels = new ChannelsService(config, this.pipeline, this.deadLetters, this.metrics, log.child({ context: 'channels' }), durableModes);
  }

  /** True until shutdown begins and, with Kafka, while Kafka is reachable. */
  ready(): boolean {
    return !this.shuttingDown && this.pipeline.allSinks.every((s) => s.ready());
  }

  /** Sinks' state for readiness. */
  sinks(): Array<{ name: string; ready: boolean; queued: number }> {
    return this.pipeline.allSinks.map((s: Sink) => ({ name: s.name, ready: s.ready(), queued: s.depth() }));
  }

  async start(): Promise<void> {
    for (const sink of this.pipeline.allSinks) await sink.start();
    // Channels start in their persisted modes, so those are read (bounded) before any socket opens.
    await this.channels.start();
  }

  async stop(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const deadline = Date.now() + this.config.shutdownGraceMs;
    await this.channels.stop();
    await Promise.all(this.pipeline.allSinks.map((s) => s.stop(Math.max(0, deadline - Date.now()))));
  }
}
