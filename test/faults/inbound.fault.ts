import { metricValue } from '../helpers/bridge-harness';
import type { BridgeProcess } from '../helpers/bridge-process';
import { evolutionPost, flood, HeldPost, within } from '../helpers/inbound-post';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { expectHealthy, healthzMs, HEALTHZ_WITHIN_MS, report, rssMiB, startBuiltBridge, until } from './harness';

/**
 * Hostile inbound posts against the built bridge (events to Kafka from the test broker), one ZapThinker channel in
 * webhook mode with inbound token auth: a flood of unauthenticated 1 MB posts is refused without reading the bodies
 * (memory flat), and posts beyond the channel's `inbound.maxInFlight` are answered 503 for the upstream to retry,
 * never dropped silently.
 */
describe('fault rows: inbound posts', () => {
  const TOKEN = 'inbound-token-0123456789';
  /**
   * RSS growth allowed during the 200 MB flood. Each body is read and discarded after its 401 (a lingering close),
   * never kept; Node's HTTP parser copies each piece it reads, and V8 frees those copies once some 64 MiB of them
   * accumulated, whatever the flood's size, and the allocator keeps some of what was freed: 72-94 MiB of growth in
   * six runs. Bodies buffered before auth grew it by 110-146 MiB; in a bare Node server a flood 4x as large did not
   * grow it further.
   */
  const FLOOD_GROWTH_BOUND_MIB = 128;
  const RSS_BOUND_MIB = 300;
  const MAX_IN_FLIGHT = 16;
  const topics = { events: uniqueTopic('events'), deadLetter: uniqueTopic('dlq') };
  let bridge: BridgeProcess;
  let reader: KafkaReader;
  let seq = 0;

  beforeAll(async () => {
    reader = new KafkaReader(sharedBrokers(), [topics.events]);
    await reader.start();
    bridge = await startBuiltBridge('faults-inbound', {
      kafka: { brokers: sharedBrokers(), topics },
      // Off, so that every post of the flood reaches the inbound gate (on, the loopback address would get 429 after 20 401s).
      api: { authFailures: { maxFailures: 0 } },
      channels: [{ id: 'wa', provider: 'zapthinker', mode: 'webhook', inbound: { token: TOKEN, maxInFlight: MAX_IN_FLIGHT }, zapthinker: { url: 'http://127.0.0.1:9', instance: 'sales', apiKey: 'key-sales' } }],
    });
  }, 90_000);
  afterAll(async () => {
    await reader?.stop();
    await bridge?.kill();
  });

  const inbound = () => `${bridge.url}/v1/inbound/wa`;
  const auth = { 'x-chatbridge-token': TOKEN };
  const nextId = () => `FAULT${String(++seq).padStart(11, '0')}`;
  /** Message ids of the message events published to Kafka. */
  const publishedIds = () => reader.ofType('chatbridge.message.received').map((r) => (JSON.parse(r.value ?? '{}') as { message: { id: string } }).message.id);
  const metric = async (name: string, labels: Record<string, string>) => metricValue(await (await fetch(`${bridge.url}/metrics`)).text(), name, labels);
  async function postValid(id: string): Promise<number> {
    const res = await fetch(inbound(), { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: evolutionPost('sales', id, 'valid') });
    await res.text();
    return res.status;
  }
  /**
   * Samples RSS and /healthz while `work` runs: peak RSS, one /healthz once `underWay` says the work is under way,
   * and the worst of the probes taken every 50 ms meanwhile; each within HEALTHZ_WITHIN_MS.
   */
  async function watch<T>(work: Promise<T>, underWay: () => Promise<boolean>): Promise<{ result: T; peakMiB: number; duringMs: number; worstMs: number; probes: number }> {
    let peakMiB = rssMiB(bridge.pid);
    let worstMs = 0;
    let probes = 0;
    let running = true;
    const rss = setInterval(() => (peakMiB = Math.max(peakMiB, rssMiB(bridge.pid))), 20);
    const sampler = (async () => {
      while (running) {
        worstMs = Math.max(worstMs, await healthzMs(bridge));
        probes++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await until('the flood under way', underWay, 30_000);
      const duringMs = await expectHealthy(bridge);
      const result = await work;
      running = false;
      await sampler;
      expect(worstMs).toBeLessThan(HEALTHZ_WITHIN_MS);
      return { result, peakMiB, duringMs: Math.round(duringMs), worstMs: Math.round(worstMs), probes };
    } finally {
      running = false;
      clearInterval(rss);
      await sampler;
    }
  }

  it('200 concurrent unauthenticated 1 MB posts: every one 401 without its body read, memory flat; the next valid post is published', async () => {
    // Warm up the route first, so the baseline includes what any first post allocates.
    const warm = nextId();
    expect(await postValid(warm)).toBe(200);
    await until('warm-up event published', () => publishedIds().includes(warm));
    const before = rssMiB(bridge.pid);

    const refusedSoFar = () => metric('chatbridge_inbound_requests_total', { channel: 'wa', outcome: 'unauthorized' });
    const refusedBefore = await refusedSoFar();
    const { result: statuses, peakMiB, duringMs, worstMs, probes } = await watch(flood(inbound(), 200, 1024 * 1024, { 'content-type': 'application/json' }), async () => (await refusedSoFar()) > refusedBefore);
    const after = rssMiB(bridge.pid);
    const by = (s: number) => statuses.filter((x) => x === s).length;

    // Every client reads its 401, none a reset: the bridge closes each connection lingering, reading and discarding
    // what the client still writes; its own count shows all 200 refused as unauthenticated.
    expect(statuses.filter((s) => s !== 401)).toEqual([]);
    const healthAfter = await expectHealthy(bridge);
    expect(peakMiB - before).toBeLessThan(FLOOD_GROWTH_BOUND_MIB);
    expect(after).toBeLessThan(RSS_BOUND_MIB);
    expect((await refusedSoFar()) - refusedBefore).toBe(200);

    const next = nextId();
    expect(await postValid(next)).toBe(200);
    await until('the valid post after the flood published', () => publishedIds().includes(next));
    report('inbound 200 unauthenticated 1 MB posts', {
      answered401: by(401), rssBeforeMiB: before, rssPeakMiB: peakMiB, rssAfterMiB: after, growthBoundMiB: FLOOD_GROWTH_BOUND_MIB,
      healthzMsDuring: duringMs, healthzMsAfter: Math.round(healthAfter), [`healthzWorstMsOf${probes}`]: worstMs, nextPublished: true,
    });
  });

  it('50 concurrent authenticated posts beyond maxInFlight: the excess answered 503 with Retry-After and counted, the rest accepted, every event published once after retries', async () => {
    const before = rssMiB(bridge.pid);
    const busyBefore = await metric('chatbridge_inbound_requests_total', { channel: 'wa', outcome: 'busy' });
    const ids = Array.from({ length: 50 }, nextId);
    const bodies = ids.map((id) => evolutionPost('sales', id, 'concurrent'));
    // Each body is sent in two parts, the second only once every post was answered or is being read.
    const held = bodies.map((b) => new HeldPost(inbound(), auth, b.slice(0, 32)));
    const answeredEarly = new Map<number, Awaited<HeldPost['answer']>>();
    held.forEach((h, i) => void h.answer.then((a) => answeredEarly.set(i, a), () => undefined));
    const inFlight = () => metric('chatbridge_inbound_in_flight', { channel: 'wa' });
    const allIn = async () => answeredEarly.size + (await inFlight()) === 50 && answeredEarly.size > 0;
    const { peakMiB, duringMs, worstMs, probes } = await watch(until('every post answered 503 or being read', allIn), allIn);

    const refused = [...answeredEarly.entries()];
    expect(refused.filter(([, a]) => a.status !== 503 || a.headers['retry-after'] !== '1').map(([, a]) => a)).toEqual([]);
    expect(await inFlight()).toBe(MAX_IN_FLIGHT);
    expect(refused).toHaveLength(50 - MAX_IN_FLIGHT);
    const accepted = await Promise.all(held.map((h, i) => (answeredEarly.has(i) ? undefined : within(`post ${i}`, h.finish(bodies[i].slice(32))))));
    for (const h of held) h.abort();
    expect(accepted.filter((a) => a !== undefined).map((a) => a!.status)).toEqual(Array(MAX_IN_FLIGHT).fill(200));

    // The upstream retries each 503 after Retry-After, as many times as it takes.
    let retries = 0;
    for (const [i] of refused) {
      for (;;) {
        retries++;
        const status = await postValid(ids[i]);
        if (status === 200) break;
        expect(status).toBe(503);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    await until('all 50 events published', () => ids.every((id) => publishedIds().includes(id)));
    expect(ids.map((id) => publishedIds().filter((p) => p === id).length)).toEqual(Array(50).fill(1));
    const busy = (await metric('chatbridge_inbound_requests_total', { channel: 'wa', outcome: 'busy' })) - busyBefore;
    const retry503 = retries - refused.length;
    expect(busy).toBe(refused.length + retry503);
    expect(await metric('chatbridge_refused_total', { origin: 'inbound', reason: 'in_flight' })).toBe(busy);
    const healthAfter = await expectHealthy(bridge);
    const after = rssMiB(bridge.pid);
    expect(after).toBeLessThan(RSS_BOUND_MIB);
    report('inbound 50 concurrent posts, maxInFlight 16', {
      acceptedAtOnce: MAX_IN_FLIGHT, answered503: refused.length, busyCounted: busy, retries, retriesAnswered503: retry503, published: 50,
      rssBeforeMiB: before, rssPeakMiB: peakMiB, rssAfterMiB: after, healthzMsDuring: duringMs, healthzMsAfter: Math.round(healthAfter), [`healthzWorstMsOf${probes}`]: worstMs,
    });
  });
});
