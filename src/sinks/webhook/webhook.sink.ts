import type { Logger } from 'pino';
import type { PipelineEvent } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import type { Sink } from '../sink.interface';
import type { WebhookConfig } from './webhook.config';
import { WebhookEndpoint, type EndpointSnapshot } from './webhook.endpoint';
import { eventFilter, type EventFilter } from './webhook.filter';
import { UndiciTransport } from './webhook.transport';

/**
 * Outbound webhooks (SPEC §6): hands each event to every endpoint whose filter matches. Each endpoint has its
 * own worker, queue, connections and breaker, so a slow or dead endpoint never holds back another endpoint,
 * Kafka or the sockets: `publish` only appends to in-memory queues.
 *
 * Without Kafka, what is pending lives in memory (bounded by `maxPending` per endpoint) and is written to the
 * dead-letter file at shutdown; it does not survive a crash.
 */
export class WebhookSink implements Sink {
  readonly name = 'webhooks';
  private readonly endpoints: Array<{ worker: WebhookEndpoint; filter: EventFilter }>;

  constructor(configs: readonly WebhookConfig[], deadLetters: DeadLetters, metrics: Metrics, log: Logger) {
    this.endpoints = configs.map((cfg) => ({
      worker: new WebhookEndpoint(cfg, new UndiciTransport(cfg.url, cfg.concurrency, cfg.timeoutMs), deadLetters, metrics, log.child({ endpoint: cfg.id })),
      filter: eventFilter(cfg),
    }));
  }

  publish(item: PipelineEvent): void {
    for (const { worker, filter } of this.endpoints) {
      if (filter.matches(item.event)) worker.submit(item);
    }
  }

  async start(): Promise<void> {
    // Nothing to connect: each endpoint's pool opens connections on its first delivery.
  }

  async stop(deadlineMs: number): Promise<void> {
    await Promise.all(this.endpoints.map(({ worker }) => worker.stop(deadlineMs)));
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
