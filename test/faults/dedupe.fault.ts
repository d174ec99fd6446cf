import { metricValue } from '../helpers/bridge-harness';
import type { BridgeProcess } from '../helpers/bridge-process';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { expectHealthy, report, rssMiB, startBuiltBridge } from './harness';

/**
 * The dedupe window's bound (`dedupe.maxEntries`), black-box: a built bridge whose window holds 1,000 ids takes 4,000
 * distinct upstream messages, so it forgets an id for every new one from the 1,001st on, then the upstream replays
 * some of them. A replay of an id still in the window is suppressed; one the window forgot is published again with
 * the same `ce_id` (docs/delivery.md: consumers deduplicate by id). The window stays at its bound, the process stays up
 * and the next message arrives.
 */
const MAX_ENTRIES = 1000;
const MESSAGES = 4000;
const REPLAYED = 300;
const RSS_BOUND_MIB = 300;

describe('fault suite: the dedupe window at its bound', () => {
  const zap = new ZapThinkerSimulator({ instances: { sales: { token: 'sales-token-0123456789' } } });
  const topic = uniqueTopic('faults-dedupe');
  const reader = new KafkaReader(sharedBrokers(), [topic]);
  let bridge: BridgeProcess;

  beforeAll(async () => {
    await zap.start();
    zap.touch('sales');
    await reader.start();
    bridge = await startBuiltBridge('dedupe', {
      kafka: { brokers: sharedBrokers(), topics: { events: topic } },
      dedupe: { maxEntries: MAX_ENTRIES },
      channels: [{ id: 'zap', provider: 'zapthinker', zapthinker: { url: zap.url, instance: 'sales', apiKey: 'sales-token-0123456789' } }],
    });
    await zap.waitForClients('sales', 1, 20_000);
  }, 120_000);

  afterAll(async () => {
    await bridge?.signal('SIGTERM');
    await reader.stop();
    await zap.stop();
  });

  /** Message `i` of the run: its own upstream id, so sending it again is the upstream replaying it. */
  const send = (i: number, text = `m-${i}`) => zap.sendMessage('sales', { remoteJid: `55119${String(10000000 + (i % 50))}`, id: `DEDUPE${String(i).padStart(10, '0')}`, text });
  /** Kafka records of received messages by text: how many, and under which ids. */
  const copies = () => {
    const byText = new Map<string, { count: number; ids: Set<string> }>();
    for (const r of reader.ofType('chatbridge.message.received')) {
      const text = (JSON.parse(r.value ?? '{}') as { message?: { text?: string } }).message?.text ?? '';
      const seen = byText.get(text) ?? { count: 0, ids: new Set<string>() };
      seen.count++;
      seen.ids.add(r.headers.ce_id);
      byText.set(text, seen);
    }
    return byText;
  };
  const records = () => reader.ofType('chatbridge.message.received').length;
  const metric = async (name: string, labels: Record<string, string> = {}) => metricValue(await (await fetch(`${bridge.url}/metrics`)).text(), name, labels);

  it(`a window of ${MAX_ENTRIES} ids after ${MESSAGES} messages: recent replays suppressed, forgotten ones published again under their id, the window at its bound`, async () => {
    for (let i = 0; i < MESSAGES; i++) {
      send(i);
      if (i % 200 === 199) await new Promise<void>((r) => setImmediate(r));
    }
    await reader.waitFor('every message in Kafka', () => copies().size >= MESSAGES, 60_000);
    expect(await metric('chatbridge_dedupe_entries')).toBe(MAX_ENTRIES);

    // The upstream replays its oldest messages (long forgotten) and its newest (still in the window), then one more.
    const t0 = performance.now();
    for (let i = 0; i < REPLAYED; i++) send(i);
    for (let i = MESSAGES - REPLAYED; i < MESSAGES; i++) send(i);
    send(MESSAGES, 'after the replays');
    await reader.waitFor('the next message', () => copies().has('after the replays'), 20_000);
    const nextMs = Math.round(performance.now() - t0);
    // The frames went through the intake in order, and an event is counted in when it is published: every replay was
    // published or suppressed before the next message, so the count is final now.
    const published = await metric('chatbridge_events_in_total', { type: 'chatbridge.message.received' });
    expect(published).toBe(MESSAGES + 1 + REPLAYED);
    await reader.waitFor('every published record read back', () => records() >= published, 20_000);

    const byText = copies();
    expect([...byText].filter(([, c]) => c.ids.size !== 1)).toEqual([]); // every copy of a message carries its one ce_id
    const countOf = (i: number) => byText.get(`m-${i}`)?.count;
    const oldest = Array.from({ length: REPLAYED }, (_, i) => countOf(i));
    const newest = Array.from({ length: REPLAYED }, (_, i) => countOf(MESSAGES - REPLAYED + i));
    expect(new Set(oldest)).toEqual(new Set([2])); // forgotten: published again
    expect(new Set(newest)).toEqual(new Set([1])); // remembered: suppressed
    expect(records()).toBe(MESSAGES + 1 + REPLAYED);
    const suppressed = await metric('chatbridge_events_deduplicated_total');
    expect(suppressed).toBe(REPLAYED);
    expect(await metric('chatbridge_dedupe_entries')).toBe(MAX_ENTRIES);
    const healthz = await expectHealthy(bridge);
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('dedupe/window-at-bound', { up: !bridge.exit, healthzMs: Math.round(healthz), messages: MESSAGES, window: MAX_ENTRIES, replayedForgotten: REPLAYED, publishedAgain: oldest.filter((c) => c === 2).length, replayedRemembered: REPLAYED, suppressed, nextMessageMs: nextMs, missing: [...oldest, ...newest].filter((c) => !c).length, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB });
  }, 120_000);
});
