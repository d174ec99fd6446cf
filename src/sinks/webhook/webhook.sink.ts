import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConfig } from '../../config/config.schema';
import { createBridgeEvent, type PipelineEvent } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import type { Sink } from '../sink.interface';
import type { WebhookConfig } from './webhook.config';
import { StructuredBody, WebhookEndpoint, type EndpointSnapshot, type EndpointStateChange } from './webhook.endpoint';
import { eventFilter, type EventFilter } from './webhook.filter';
import { KafkaWebhookSource } from './webhook-source.kafka';
import { UndiciTransport } from './webhook.transport';

/** With Kafka: the client and config the endpoints' consumers use. */
export interface WebhookKafkaSettings {
  kafka: Kafka;
  config: KafkaConfig;
}

/**
 * Outbound webhooks (docs/webhooks.md). Each endpoint has its own worker, queue, connections and breaker, so a slow or
 * dead endpoint never holds back another endpoint, Kafka or the sockets.
 *
 * With Kafka, each endpoint is fed by its own consumer group on `topics.events` and commits only what it has
 * delivered or dead-lettered: pending deliveries survive a crash (KafkaWebhookSource). `publish` is then a
 * no-op: the events reach the endpoints through Kafka.
 *
 * Without Kafka, `publish` hands each event to every endpoint whose filter matches; what is pending lives in
 * memory (bounded by `maxPending` per endpoint), is written to the dead-letter file at shutdown, and does not
 * survive a crash.
 */
export class WebhookSink implements Sink {
  readonly name = 'webhooks';
  private readonly endpoints: Array<{ worker: WebhookEndpoint; filter: EventFilter; source?: KafkaWebhookSource }>;

  /**
   * `publishStatus` receives the `chatbridge.webhook.status` event of an endpoint that was disabled (410) or
   * re-enabled; the bridge publishes it like any event (Kafka, the other endpoints).
   */
  constructor(configs: readonly WebhookConfig[], deadLetters: DeadLetters, metrics: Metrics, log: Logger, kafka?: WebhookKafkaSettings, publishStatus?: (item: PipelineEvent) => void) {
    this.endpoints = configs.map((cfg) => {
      const epLog = log.child({ endpoint: cfg.id });
      const url = new URL(cfg.url);
      const onStateChange = (change: EndpointStateChange): void =>
        publishStatus?.(createBridgeEvent('chatbridge.webhook.status', 'webhooks', cfg.id, { webhook: { id: cfg.id, url: `${url.origin}${url.pathname}` }, status: change }));
      const worker = new WebhookEndpoint(cfg, new UndiciTransport(cfg.url, cfg.concurrency, cfg.timeoutMs), deadLetters, metrics, epLog, { durable: Boolean(kafka), onStateChange });
      const filter = eventFilter(cfg);
      if (!kafka) return { worker, filter };
      const { consumer, topics } = kafka.config;
      const source = new KafkaWebhookSource(kafka.kafka, worker, filter, { topic: topics.events, groupId: `${consumer.webhookGroupPrefix ?? `${kafka.config.clientId}.webhook.`}${cfg.id}`, consumer, startFrom: cfg.startFrom, startTimeoutMs: 2 * kafka.config.connectionTimeoutMs + 1000 }, deadLetters, metrics, epLog);
      return { worker, filter, source };
    });
  }

  publish(item: PipelineEvent): void {
    // One serialization per event, however many endpoints take it (each signs the same body), at its first attempt.
    let body: StructuredBody | undefined;
    for (const { worker, filter, source } of this.endpoints) {
      if (!source && filter.matches(item.event)) worker.submit(item, undefined, (body ??= new StructuredBody(item.event)));
    }
  }

  /** With Kafka: records where new consumer groups start and joins them (in the background). */
  async start(): Promise<void> {
    await Promise.all(this.endpoints.map(({ source }) => source?.start()));
  }

  async stop(deadlineMs: number): Promise<void> {
    await Promise.all(this.endpoints.map(({ worker, source }) => (source ? source.stop(deadlineMs) : worker.stop(deadlineMs))));
  }

  /** Always true: a failing receiver is that receiver's problem (its state is in `GET /v1/webhooks`), not the bridge's readiness. */
  ready(): boolean {
    return true;
  }

  depth(): number {
    return this.endpoints.reduce((n, { worker }) => n + worker.pending, 0);
  }

  /** Every endpoint's state, in config order. */
  list(): EndpointSnapshot[] {
    return this.endpoints.map(({ worker }) => worker.snapshot());
  }

  /** The worker of one endpoint, or undefined. */
  endpoint(id: string): WebhookEndpoint | undefined {
    return this.endpoints.find(({ worker }) => worker.cfg.id === id)?.worker;
  }

  /** Re-enables one endpoint (410) and closes its breaker; undefined when no such id. */
  enable(id: string): EndpointSnapshot | undefined {
    const worker = this.endpoint(id);
    if (!worker) return undefined;
    worker.enable();
    return worker.snapshot();
  }
}
