import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { plainToInstance } from 'class-transformer';
import { createEvent, type PipelineEvent } from '../../envelope/envelope';
import { Metrics } from '../../health/metrics';
import { DeadLetters } from '../../pipeline/dead-letters';
import { WebhookConfig } from './webhook.config';
import { WebhookEndpoint } from './webhook.endpoint';
import type { ResponseFacts } from './webhook.policy';
import type { WebhookRequest, WebhookTransport } from './webhook.transport';

const silent = pino({ level: 'silent' });
const SECRET = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;

/** A transport whose answers the test controls: each call waits for `answer` to settle it. */
class FakeTransport implements WebhookTransport {
  readonly calls: Array<{ req: WebhookRequest; at: number; text: string; settle: (r: ResponseFacts | Error) => void }> = [];
  auto?: (text: string) => ResponseFacts | Error;
  closed = false;

  post(req: WebhookRequest): Promise<ResponseFacts> {
    return new Promise((resolve, reject) => {
      const text = (JSON.parse(req.body) as { data: { message: { text: string } } }).data.message.text;
      const settle = (r: ResponseFacts | Error) => (r instanceof Error ? reject(r) : resolve(r));
      this.calls.push({ req, at: Date.now(), text, settle });
      req.signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { code: 'UND_ERR_ABORTED' })));
      const auto = this.auto?.(text);
      if (auto) setImmediate(() => settle(auto));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function event(key: string, text: string): PipelineEvent {
  const { event: e, stableId } = createEvent({
    type: 'chatbridge.message.received', channelId: 'wa', provider: 'zapthinker', conversationId: key,
    data: { channel: { id: 'wa', provider: 'zapthinker' }, conversation: { id: key }, message: { direction: 'inbound', text }, upstream: { event: 'x', payload: null } },
  });
  return { event: e, stableId, receivedAt: performance.now() };
}

function setup(cfg: Record<string, unknown> = {}, opts: { durable?: boolean } = {}) {
  const file = join(mkdtempSync(join(tmpdir(), 'wh-endpoint-')), 'dl.jsonl');
  const metrics = new Metrics({ defaultMetrics: false });
  const transport = new FakeTransport();
  const config = plainToInstance(WebhookConfig, { id: 'ep', url: 'http://127.0.0.1:9/hook', secret: SECRET, retrySchedule: [0, 30, 30], ...cfg }, { exposeDefaultValues: true });
  const endpoint = new WebhookEndpoint(config, transport, new DeadLetters(file, metrics, silent), metrics, silent, { random: () => 1, ...opts });
  const letters = () => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string; origin: string; attempts: number }) : []);
  return { endpoint, transport, letters, metrics };
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
/** Polls `done` every 10 ms, for 5 s at most (the assertions after it say what was missing). */
async function waitFor(done: () => boolean): Promise<void> {
  for (const start = Date.now(); !done() && Date.now() - start < 5000; ) await tick(10);
}

describe('WebhookEndpoint (fake transport)', () => {
  it('runs at most `concurrency` keys at once, one event per key, and fills freed slots at once', async () => {
    const { endpoint, transport } = setup({ concurrency: 2 });
    for (const k of ['a', 'b', 'c']) for (const n of [1, 2]) endpoint.submit(event(k, `${k}${n}`));
    expect(transport.calls.map((c) => c.text)).toEqual(['a1', 'b1']);
    expect(endpoint.snapshot()).toMatchObject({ pending: 6, inFlight: 2, state: 'active' });
    transport.calls[0].settle({ status: 200 });
    await tick();
    expect(transport.calls.map((c) => c.text)).toEqual(['a1', 'b1', 'c1']);
    transport.calls[1].settle({ status: 200 });
    await tick();
    expect(transport.calls.map((c) => c.text)).toEqual(['a1', 'b1', 'c1', 'a2']);
    await endpoint.stop(0);
  });

  it('serializes an event at its first attempt: one JSON cannot write is dead-lettered (sink_threw), never posted, and its key goes on', async () => {
    const { endpoint, transport, letters, metrics } = setup();
    transport.auto = () => ({ status: 200 });
    const bad = event('a', 'bad');
    (bad.event.data as unknown as { count: bigint }).count = 1n;
    endpoint.submit(bad);
    endpoint.submit(event('a', 'next'));
    await tick(20);
    expect(transport.calls.map((c) => c.text)).toEqual(['next']);
    expect(letters()).toMatchObject([{ reason: 'sink_threw', origin: 'webhooks' }]);
    const refused = (await metrics.refused.get()).values.filter((v) => v.labels.origin === 'sink' && v.labels.reason === 'sink_threw');
    expect(refused.map((v) => v.value)).toEqual([1]);
    expect(endpoint.snapshot()).toMatchObject({ pending: 0, state: 'active' });
    await endpoint.stop(0);
  });

  it('shows `retrying` while an event waits for its retry and dead-letters it after the last scheduled attempt', async () => {
    const { endpoint, transport, letters } = setup();
    transport.auto = () => ({ status: 500, excerpt: 'boom' });
    endpoint.submit(event('a', 'x'));
    await tick(5);
    expect(endpoint.snapshot()).toMatchObject({ state: 'retrying', lastStatus: 500, lastError: 'HTTP 500: boom' });
    // The schedule's two retries come within tens of ms; a busy machine can take longer, so wait for them (bounded).
    await waitFor(() => transport.calls.length >= 3 && letters().length > 0);
    expect(transport.calls).toHaveLength(3);
    expect(letters()).toEqual([expect.objectContaining({ reason: 'webhook_retries_exhausted', attempts: 3, status: 500, error: 'HTTP 500: boom' })]);
    expect(endpoint.snapshot()).toMatchObject({ state: 'active', pending: 0 });
    await endpoint.stop(0);
  });

  it('`enable` closes an open circuit breaker at once', async () => {
    const { endpoint, transport } = setup({ retrySchedule: [0, 10, 10, 10, 10], circuitBreaker: { failures: 2, halfOpenAfterMs: 60_000 } });
    transport.auto = () => ({ status: 503 });
    endpoint.submit(event('a', 'a'));
    endpoint.submit(event('b', 'b'));
    await tick(5);
    expect(endpoint.snapshot().state).toBe('circuit_open');
    await tick(50);
    expect(transport.calls).toHaveLength(2);
    transport.auto = () => ({ status: 204 });
    endpoint.enable();
    await tick(5);
    expect(endpoint.snapshot()).toMatchObject({ state: 'active', pending: 0, lastStatus: 204 });
    await endpoint.stop(0);
  });

  it('limits the start rate to ratePerSecond', async () => {
    const { endpoint, transport } = setup({ ratePerSecond: 20, concurrency: 50 });
    transport.auto = () => ({ status: 200 });
    for (let i = 0; i < 24; i++) endpoint.submit(event(`k${i}`, `m${i}`));
    await tick(5);
    expect(transport.calls).toHaveLength(20);
    await tick(230);
    expect(transport.calls).toHaveLength(24);
    expect(transport.calls[23].at - transport.calls[0].at).toBeGreaterThanOrEqual(150);
    await endpoint.stop(0);
  });

  it('stop aborts what is in flight at the deadline and dead-letters everything held, once each', async () => {
    const { endpoint, transport, letters } = setup({ concurrency: 1 });
    for (const t of ['s1', 's2', 's3']) endpoint.submit(event('k', t));
    const t0 = Date.now();
    await endpoint.stop(100);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    expect(letters().map((l) => l.reason)).toEqual(['shutdown', 'shutdown', 'shutdown']);
    expect(transport.calls).toHaveLength(1);
    expect(transport.closed).toBe(true);
    endpoint.submit(event('k', 'late'));
    expect(letters()).toHaveLength(4);
    expect(endpoint.pending).toBe(0);
  });

  it('stop returns at once when nothing can move before the deadline', async () => {
    const { endpoint, transport, letters } = setup({ retrySchedule: [0, 60_000] });
    transport.auto = () => Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    endpoint.submit(event('k', 'r1'));
    await tick(5);
    const t0 = Date.now();
    await endpoint.stop(10_000);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(letters()).toEqual([expect.objectContaining({ reason: 'shutdown', attempts: 1 })]);
  });

  it('tells each submitter once how its event ended: delivered, or dead-lettered only after the letter is written', async () => {
    const { endpoint, transport, letters } = setup({ retrySchedule: [0] });
    transport.auto = (text) => (text === 'bad' ? { status: 400, excerpt: 'no' } : { status: 204 });
    const outcomes: Array<[string, string]> = [];
    endpoint.submit(event('a', 'good'), (o) => outcomes.push(['good', o]));
    endpoint.submit(event('b', 'bad'), (o) => {
      outcomes.push(['bad', o]);
      expect(letters().map((l) => l.reason)).toEqual(['webhook_rejected']); // written before the submitter hears of it
    });
    await tick(10);
    expect(outcomes.sort()).toEqual([['bad', 'dead_lettered'], ['good', 'delivered']]);
    await endpoint.stop(0);
  });

  it('with a durable source: waits for capacity instead of dead-lettering, and releases what is held at shutdown without a dead letter', async () => {
    const { endpoint, transport, letters } = setup({ maxPending: 2, concurrency: 1 }, { durable: true });
    const outcomes: string[] = [];
    endpoint.submit(event('k', 'd1'), (o) => outcomes.push(`d1:${o}`));
    endpoint.submit(event('k', 'd2'), (o) => outcomes.push(`d2:${o}`));
    expect(endpoint.hasCapacity()).toBe(false);
    let freed = false;
    const waiting = endpoint.whenCapacity().then(() => (freed = true));
    await tick(5);
    expect(freed).toBe(false);
    transport.calls[0].settle({ status: 200 });
    await waiting;
    expect(outcomes).toEqual(['d1:delivered']);
    await endpoint.stop(50); // d2 in flight, aborted at the deadline
    expect(outcomes).toEqual(['d1:delivered', 'd2:released']);
    expect(letters()).toEqual([]);
    endpoint.submit(event('k', 'late'), (o) => outcomes.push(`late:${o}`));
    expect(outcomes).toContain('late:released');
    expect(letters()).toEqual([]);
  });
});
