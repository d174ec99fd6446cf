import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { PipelineEvent } from '../envelope/envelope';
import type { Metrics } from '../health/metrics';
import type { Sink } from '../sinks/sink.interface';
import { describeError } from '../common/errors';
import type { DeadLetters } from './dead-letters';

/**
 * Dedupe and fan-out. An event whose id derives from an upstream id and was seen within the window is
 * not republished (replays after reconnect, snapshots, echoes). Every other event goes to every sink;
 * sinks queue on their own, so one slow sink never holds back another.
 */
export class EventPipeline {
  private readonly seen?: LRUCache<string, true>;
  private readonly sinks: Sink[] = [];
  private readonly observers: Array<(item: PipelineEvent) => void> = [];
  /** Durable events on their way to the durable sink, by id, with the callbacks of their duplicates. */
  private readonly durableWaiters = new Map<string, Array<NonNullable<PipelineEvent['durable']>>>();

  constructor(
    dedupe: { maxEntries: number; ttlMs: number },
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Where an event goes for a sink that threw on it. */
    private readonly deadLetters?: DeadLetters,
  ) {
    if (dedupe.maxEntries > 0) this.seen = new LRUCache<string, true>({ max: dedupe.maxEntries, ttl: dedupe.ttlMs, ttlAutopurge: false });
  }

  /** Adds a sink; events published afterwards reach it. */
  addSink(sink: Sink): void {
    this.sinks.push(sink);
  }

  /** Calls `fn` with every event published from now on (after dedupe), synchronously; `fn` must be cheap and not throw. */
  observe(fn: (item: PipelineEvent) => void): void {
    this.observers.push(fn);
  }

  /** The registered sinks. */
  get allSinks(): readonly Sink[] {
    return this.sinks;
  }

  /** Publishes one event. Returns false when it was a duplicate and was suppressed. */
  publish(item: PipelineEvent): boolean {
    const { event } = item;
    if (item.stableId && this.seen) {
      if (this.seen.has(event.id)) {
        this.metrics.duplicates.inc({ channel: event.channelid ?? '' });
        this.log.debug({ channel: event.channelid, id: event.id, type: event.type }, 'duplicate event suppressed');
        // The copy published first may still be on its way to Kafka: a durable duplicate settles with it.
        if (item.durable) {
          const waiting = this.durableWaiters.get(event.id);
          if (waiting) waiting.push(item.durable);
          else item.durable('delivered');
        }
        return false;
      }
      this.seen.set(event.id, true);
      this.metrics.dedupeEntries.set(this.seen.size);
    }
    if (item.durable) item = this.trackDurable(item);
    this.metrics.eventsIn.inc({ channel: event.channelid ?? '', type: event.type });
    // Each sink is a fault boundary: one that throws loses nothing (the event is dead-lettered for it) and never keeps
    // the event from the sinks after it.
    for (const sink of this.sinks) {
      try {
        sink.publish(item);
      } catch (err) {
        this.sinkFailed(sink.name, item, err);
        if (sink.durable) item.durable?.('dead_lettered');
      }
    }
    for (const fn of this.observers) {
      try {
        fn(item);
      } catch (err) {
        this.log.error({ err: describeError(err), id: event.id, type: event.type }, 'an event observer threw; ignored');
      }
    }
    return true;
  }

  /**
   * An event whose input waits for its durability: with a durable sink, its duplicates wait with it, and a dead-lettered
   * one leaves the dedupe window so the upstream's retry is published again; without one, it is settled at once.
   */
  private trackDurable(item: PipelineEvent): PipelineEvent {
    const first = item.durable as NonNullable<PipelineEvent['durable']>;
    if (!this.sinks.some((s) => s.durable)) {
      first('delivered');
      return { ...item, durable: undefined };
    }
    const id = item.event.id;
    const waiting = [first];
    if (item.stableId) this.durableWaiters.set(id, waiting);
    return {
      ...item,
      durable: (outcome) => {
        if (this.durableWaiters.get(id) === waiting) this.durableWaiters.delete(id);
        if (outcome === 'dead_lettered' && item.stableId) this.seen?.delete(id);
        for (const w of waiting) w(outcome);
      },
    };
  }

  /** A sink threw on publish (a bug: sinks queue and never throw): the event is dead-lettered for it, counted and logged. */
  private sinkFailed(sink: string, item: PipelineEvent, err: unknown): void {
    const { event } = item;
    this.metrics.refused.inc({ origin: 'sink', reason: 'sink_threw' });
    this.log.error({ sink, err: describeError(err), id: event.id, type: event.type }, 'a sink threw on publish; the event is dead-lettered for that sink');
    if (this.deadLetters) void this.deadLetters.write({ reason: 'sink_threw', origin: sink, channelId: event.channelid, event, error: describeError(err) });
  }
}
