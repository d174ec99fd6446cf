import pino from 'pino';
import { createEvent, type PipelineEvent } from '../envelope/envelope';
import { Metrics } from '../health/metrics';
import type { Sink } from '../sinks/sink.interface';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeadLetters } from './dead-letters';
import { DurableReceipt } from './durable';
import { EventPipeline } from './pipeline';

const silent = pino({ level: 'silent' });

class MemorySink implements Sink {
  readonly items: PipelineEvent[] = [];
  constructor(readonly name: string) {}
  publish(item: PipelineEvent): void {
    this.items.push(item);
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  ready(): boolean {
    return true;
  }
  depth(): number {
    return 0;
  }
}

function message(upstreamKey: string | undefined, channelId = 'wa'): PipelineEvent {
  const { event, stableId } = createEvent({
    type: 'chatbridge.provider.event',
    channelId,
    provider: 'zapthinker',
    upstreamKey,
    data: { channel: { id: channelId, provider: 'zapthinker' }, upstream: { event: 'x', payload: upstreamKey ?? null } },
  });
  return { event, stableId, receivedAt: 0 };
}

async function counter(metrics: Metrics, name: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

class ThrowingSink extends MemorySink {
  override publish(): void {
    throw new RangeError('Maximum call stack size exceeded');
  }
}

describe('EventPipeline', () => {
  it('a sink that throws loses nothing: the event is dead-lettered for it and still reaches the sinks after it', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const file = join(mkdtempSync(join(tmpdir(), 'pipeline-')), 'dl.jsonl');
    const p = new EventPipeline({ maxEntries: 10, ttlMs: 60_000 }, metrics, silent, new DeadLetters(file, metrics, silent));
    const after = new MemorySink('after');
    p.addSink(new ThrowingSink('broken'));
    p.addSink(after);
    const observed: string[] = [];
    p.observe(() => {
      throw new Error('observer bug');
    });
    p.observe((item) => observed.push(item.event.id));
    const item = message('m1');
    expect(() => p.publish(item)).not.toThrow();
    p.publish(message('m2'));
    expect(after.items.map((i) => i.event.id)).toEqual([item.event.id, expect.any(String)]);
    expect(observed).toHaveLength(2);
    await new Promise((r) => setImmediate(r));
    const letters = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string; origin: string; event: { id: string } });
    expect(letters.map((l) => [l.reason, l.origin])).toEqual([['sink_threw', 'broken'], ['sink_threw', 'broken']]);
    expect(letters[0].event.id).toBe(item.event.id);
    expect(await counter(metrics, 'chatbridge_refused_total')).toBe(2);
  });

  it('fans every new event out to every sink', () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const p = new EventPipeline({ maxEntries: 10, ttlMs: 60_000 }, metrics, silent);
    const a = new MemorySink('a');
    const b = new MemorySink('b');
    p.addSink(a);
    p.addSink(b);
    expect(p.publish(message('m1'))).toBe(true);
    expect(a.items).toHaveLength(1);
    expect(b.items).toHaveLength(1);
  });

  it('suppresses an event whose stable id was seen, counts it, and keeps unstable ids', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const p = new EventPipeline({ maxEntries: 10, ttlMs: 60_000 }, metrics, silent);
    const sink = new MemorySink('s');
    p.addSink(sink);
    expect(p.publish(message('m1'))).toBe(true);
    expect(p.publish(message('m1'))).toBe(false);
    expect(p.publish(message('m1', 'other-channel'))).toBe(true); // ids include the channel
    expect(p.publish(message(undefined))).toBe(true);
    expect(p.publish(message(undefined))).toBe(true);
    expect(sink.items).toHaveLength(4);
    expect(await counter(metrics, 'chatbridge_events_deduplicated_total')).toBe(1);
    expect(await counter(metrics, 'chatbridge_events_in_total')).toBe(4);
  });

  it('is bounded: beyond maxEntries the oldest ids are forgotten', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const p = new EventPipeline({ maxEntries: 3, ttlMs: 60_000 }, metrics, silent);
    p.addSink(new MemorySink('s'));
    for (const k of ['a', 'b', 'c', 'd']) p.publish(message(k));
    expect(await counter(metrics, 'chatbridge_dedupe_entries')).toBe(3);
    expect(p.publish(message('d'))).toBe(false); // still remembered
    expect(p.publish(message('a'))).toBe(true); // evicted, so accepted again
  });

  it('forgets ids after ttlMs', async () => {
    // The window reads performance.now(): a short real TTL.
    const p = new EventPipeline({ maxEntries: 10, ttlMs: 60 }, new Metrics({ defaultMetrics: false }), silent);
    p.addSink(new MemorySink('s'));
    p.publish(message('a'));
    expect(p.publish(message('a'))).toBe(false);
    await new Promise((r) => setTimeout(r, 120));
    expect(p.publish(message('a'))).toBe(true);
  });

  it('does not dedupe when maxEntries is 0', () => {
    const p = new EventPipeline({ maxEntries: 0, ttlMs: 1000 }, new Metrics({ defaultMetrics: false }), silent);
    const sink = new MemorySink('s');
    p.addSink(sink);
    p.publish(message('a'));
    p.publish(message('a'));
    expect(sink.items).toHaveLength(2);
  });
});

/** A durable sink (as Kafka) whose acknowledgements the test gives by hand. */
class DurableSink extends MemorySink {
  readonly durable = true;
  onSettled?: (id: string, outcome: 'delivered' | 'dead_lettered') => void;
  /** What the Kafka sink does when a record is acknowledged or dead-lettered. */
  settle(i: number, outcome: 'delivered' | 'dead_lettered'): void {
    const item = this.items[i];
    item.durable?.(outcome);
    if (item.stableId) this.onSettled?.(item.event.id, outcome);
  }
}

describe('EventPipeline: durable events (inbound posts answered once their events are in Kafka)', () => {
  const setup = () => {
    const p = new EventPipeline({ maxEntries: 10, ttlMs: 60_000 }, new Metrics({ defaultMetrics: false }), silent);
    const sink = new DurableSink('kafka');
    p.addSink(sink);
    return { p, sink };
  };

  it('settles a receipt only when the durable sink acknowledged every event, and reports dead-lettered ones', async () => {
    const { p, sink } = setup();
    const receipt = new DurableReceipt();
    p.publish({ ...message('a'), durable: receipt.track() });
    p.publish({ ...message('b'), durable: receipt.track() });
    const settled = receipt.settled(1000);
    sink.settle(0, 'delivered');
    expect(await receipt.settled(10)).toBeUndefined(); // one still on its way
    sink.settle(1, 'dead_lettered');
    expect(await settled).toEqual({ deadLettered: 1 });
  });

  it('a duplicate of an event still on its way settles with it; a dead-lettered event leaves the dedupe window for the retry', async () => {
    const { p, sink } = setup();
    const first = new DurableReceipt();
    const retry = new DurableReceipt();
    p.publish({ ...message('m'), durable: first.track() });
    expect(p.publish({ ...message('m'), durable: retry.track() })).toBe(false);
    expect(await retry.settled(10)).toBeUndefined();
    sink.settle(0, 'dead_lettered');
    expect(await retry.settled(10)).toEqual({ deadLettered: 1 });
    // Published again (not suppressed): the upstream's next retry can reach Kafka.
    const again = new DurableReceipt();
    expect(p.publish({ ...message('m'), durable: again.track() })).toBe(true);
    sink.settle(1, 'delivered');
    expect(await again.settled(10)).toEqual({ deadLettered: 0 });
  });

  it('a post duplicating an event received on the socket and still on its way to Kafka waits for that copy', async () => {
    const { p, sink } = setup();
    p.publish(message('s')); // the socket's copy: nobody waits for it
    const post = new DurableReceipt();
    expect(p.publish({ ...message('s'), durable: post.track() })).toBe(false);
    expect(await post.settled(10)).toBeUndefined();
    sink.settle(0, 'delivered');
    expect(await post.settled(10)).toEqual({ deadLettered: 0 });
    // Durable now: a later duplicate is answered at once.
    const later = new DurableReceipt();
    p.publish({ ...message('s'), durable: later.track() });
    expect(await later.settled(10)).toEqual({ deadLettered: 0 });
  });

  it('a socket copy that was dead-lettered leaves the dedupe window: the post\'s copy is published and waited for', async () => {
    const { p, sink } = setup();
    p.publish(message('q'));
    sink.settle(0, 'dead_lettered');
    const post = new DurableReceipt();
    expect(p.publish({ ...message('q'), durable: post.track() })).toBe(true);
    expect(await post.settled(10)).toBeUndefined();
    sink.settle(1, 'delivered');
    expect(await post.settled(10)).toEqual({ deadLettered: 0 });
  });

  it('without a durable sink, an event is settled as soon as it is handed to the sinks', async () => {
    const p = new EventPipeline({ maxEntries: 10, ttlMs: 60_000 }, new Metrics({ defaultMetrics: false }), silent);
    p.addSink(new MemorySink('stdout'));
    const receipt = new DurableReceipt();
    p.publish({ ...message('x'), durable: receipt.track() });
    expect(await receipt.settled(10)).toEqual({ deadLettered: 0 });
  });
});
