import type { Logger } from 'pino';
import type { PipelineEvent } from '../envelope/envelope';
import type { HotCount, Metrics } from '../health/metrics';
import type { Sink } from '../sinks/sink.interface';
import { describeError } from '../common/errors';
import type { DeadLetters } from './dead-letters';
import { DedupeWindow } from './dedupe-window';
import type { DurableCallback, DurableOutcome } from './durable';

/**
 * Dedupe and fan-out. An event whose id derives from an upstream id and was seen within the window is
 * not republished (replays after reconnect, snapshots, echoes). Every other event goes to every sink;
 * sinks queue on their own, so one slow sink never holds back another.
 */
export class EventPipeline {
  /** Stable ids seen within the window. */
  private readonly seen?: DedupeWindow;
  /**
   * Stable ids on their way to the durable sink, not yet settled: its duplicates' inputs wait for it. A set beside the
   * window, so settling an event is one deletion; it holds no more ids than the durable sink's bounded queue, as every
   * event handed to that sink is settled once.
   */
  private readonly inFlight = new Set<string>();
  private readonly sinks: Sink[] = [];
  private readonly observers: Array<(item: PipelineEvent) => void> = [];
  /** Inputs waiting for a stable-id event on its way to the durable sink (its first copy's and its duplicates'). */
  private readonly durableWaiters = new Map<string, DurableCallback[]>();
  private durableSink = false;
  /** `chatbridge_events_in_total` by channel and type, counted once per event. */
  private readonly eventsInOf: (channel: string, type: string) => HotCount;

  constructor(
    dedupe: { maxEntries: number; ttlMs: number },
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Where an event goes for a sink that threw on it. */
    private readonly deadLetters?: DeadLetters,
  ) {
    if (dedupe.maxEntries > 0) this.seen = new DedupeWindow(dedupe.maxEntries, dedupe.ttlMs);
    this.eventsInOf = metrics.hotSeries(metrics.eventsIn, {}, 'channel', 'type');
    metrics.readAtScrape(metrics.dedupeEntries, {}, () => this.seen?.size ?? 0);
  }

  /** Adds a sink; events published afterwards reach it. */
  addSink(sink: Sink): void {
    this.sinks.push(sink);
    if (sink.durable) {
      this.durableSink = true;
      sink.onSettled = (id, outcome) => this.settled(id, outcome);
    }
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
      if (this.seen.seenBefore(event.id)) {
        this.metrics.duplicates.inc({ channel: event.channelid ?? '' });
        this.log.debug({ channel: event.channelid, id: event.id, type: event.type }, 'duplicate event suppressed');
        // The copy published first may still be on its way to Kafka: a durable duplicate settles with it.
        if (item.durable) {
          if (this.inFlight.has(event.id)) this.wait(event.id, item.durable);
          else item.durable('delivered');
        }
        return false;
      }
      if (this.durableSink) this.inFlight.add(event.id);
    }
    if (item.durable) item = this.trackDurable(item);
    this.eventsInOf(event.channelid ?? '', event.type).inc();
    // Each sink is a fault boundary: one that throws loses nothing (the event is dead-lettered for it) and never keeps
    // the event from the sinks after it.
    for (const sink of this.sinks) {
      try {
        sink.publish(item);
      } catch (err) {
        this.sinkFailed(sink.name, item, err);
        if (sink.durable) {
          item.durable?.('dead_lettered');
          if (item.stableId) this.settled(event.id, 'dead_lettered');
        }
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
   * An event whose input waits for its durability (an inbound post). Without a durable sink it is settled at once. With
   * one, a stable-id event's input waits with its duplicates' for the sink's report (`settled`); another event keeps
   * its own callback, which the sink calls.
   */
  private trackDurable(item: PipelineEvent): PipelineEvent {
    const callback = item.durable as DurableCallback;
    if (!this.durableSink) {
      callback('delivered');
      return { ...item, durable: undefined };
    }
    if (!item.stableId) return item;
    this.wait(item.event.id, callback);
    return { ...item, durable: undefined };
  }

  private wait(id: string, callback: DurableCallback): void {
    const waiting = this.durableWaiters.get(id);
    if (waiting) waiting.push(callback);
    else this.durableWaiters.set(id, [callback]);
  }

  /**
   * The durable sink's report on a stable-id event: the inputs waiting for it are answered; a delivered event is now
   * durable for later duplicates, a dead-lettered one leaves the dedupe window so the upstream's retry is published.
   */
  private settled(id: string, outcome: DurableOutcome): void {
    const waiting = this.durableWaiters.get(id);
    if (waiting) {
      this.durableWaiters.delete(id);
      for (const w of waiting) w(outcome);
    }
    this.inFlight.delete(id);
    if (outcome === 'dead_lettered') this.seen?.delete(id);
  }

  /** A sink threw on publish (a bug: sinks queue and never throw): the event is dead-lettered for it, counted and logged. */
  private sinkFailed(sink: string, item: PipelineEvent, err: unknown): void {
    const { event } = item;
    if (this.deadLetters) void this.deadLetters.sinkThrew(sink, event, describeError(err));
    else this.log.error({ sink, err: describeError(err), id: event.id, type: event.type }, 'a sink threw on publish; no dead-letter store to keep the event');
  }
}
