import type { PipelineEvent } from '../envelope/envelope';
import type { DurableOutcome } from '../pipeline/durable';

/** A destination of canonical events (Kafka, stdout, webhooks, the live stream). */
export interface Sink {
  readonly name: string;
  /**
   * True for the sink whose acknowledgement makes an event durable (Kafka): it settles `PipelineEvent.durable`, and
   * reports the outcome of every event with a stable id to `onSettled` (set by the pipeline).
   */
  readonly durable?: boolean;
  onSettled?: (id: string, outcome: DurableOutcome) => void;
  /** Takes one event. Must not throw and must not block: a sink queues and delivers on its own. */
  publish(item: PipelineEvent): void;
  /** Connects; may resolve before the destination is reachable (the sink retries on its own). */
  start(): Promise<void>;
  /** Delivers what is queued within `deadlineMs`, then dead-letters the rest and disconnects. */
  stop(deadlineMs: number): Promise<void>;
  /** True when the sink can deliver now (readiness). */
  ready(): boolean;
  /** Events waiting. */
  depth(): number;
}
