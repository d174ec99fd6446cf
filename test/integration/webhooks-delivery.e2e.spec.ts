import { existsSync, readFileSync } from 'node:fs';
import { createEvent } from '../../src/envelope/envelope';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { messageEvent, newSecret, ReceiverPool, texts, verify, WebhookReceiver } from '../helpers/webhook-receiver';

/** Outbound webhooks against real HTTP receivers on loopback: signing, and every row of the status table. */
describe('outbound webhooks: signing and the status policy (e2e)', () => {
  let bridge: TestBridge | undefined;
  const receivers = new ReceiverPool();

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await receivers.stopAll();
  });

  const receiver = (port?: number) => receivers.start(port);

  const FAST = [0, 50, 100, 150];
  const hook = (id: string, r: WebhookReceiver, extra: Record<string, unknown> = {}) => ({ id, url: r.url, secret: newSecret(), retrySchedule: FAST, ...extra });
  const publish = (channelId: string, conversationId: string, text: string) => bridge!.bridge.pipeline.publish(messageEvent(channelId, conversationId, text));

  function deadLetters(): Array<Record<string, unknown> & { event: { id: string } }> {
    if (!bridge || !existsSync(bridge.deadLetterFile)) return [];
    return readFileSync(bridge.deadLetterFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
  const webhooks = async () => ((await bridge!.get('/v1/webhooks')).body as { webhooks: Array<Record<string, unknown>> }).webhooks;
  const post = (path: string, token: string | null = TEST_TOKEN) => fetch(`${bridge!.url}${path}`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('POSTs the structured CloudEvent with Standard Webhooks headers that `standardwebhooks` verifies, also during a rotation', async () => {
    const plain = await receiver();
    const rotating = await receiver();
    const a = hook('plain', plain);
    const b = { ...hook('rotating', rotating), previousSecret: newSecret() };
    bridge = await startTestBridge({ webhooks: [a, b] });
    const sent = [publish('wa', 'c1', 'one'), publish('wa', 'c1', 'two'), publish('wa', 'c2', 'three')];
    expect(sent).toEqual([true, true, true]);

    const got = await plain.waitForDelivered(3);
    for (const req of got) {
      expect(req).toMatchObject({ method: 'POST', path: '/hook' });
      expect(req.headers['content-type']).toBe('application/cloudevents+json');
      expect(req.headers['webhook-id']).toBe(req.event.id);
      expect(Math.abs(Number(req.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
      expect(verify(a.secret, req)).toMatchObject({ specversion: '1.0', type: 'chatbridge.message.received', source: '/chatbridge/zapthinker/wa', channelid: 'wa', id: req.headers['webhook-id'] });
    }
    expect(texts(got).sort()).toEqual(['one', 'three', 'two']);
    for (const req of await rotating.waitForDelivered(3)) {
      expect(req.headers['webhook-signature'].split(' ')).toHaveLength(2);
      expect(() => verify(b.secret, req)).not.toThrow();
      expect(() => verify(b.previousSecret, req)).not.toThrow();
      expect(() => verify(a.secret, req)).toThrow();
    }

    // Webhooks configured and no Kafka: no stdout stream; readiness lists the webhook sink.
    expect(bridge.stdoutEvents()).toEqual([]);
    expect((await bridge.get('/readyz', null)).body).toMatchObject({ status: 'ready', sinks: [{ name: 'webhooks', ready: true, queued: 0 }] });
    await waitFor('lastDeliveredAt', async () => (await webhooks()).every((w) => w.lastDeliveredAt));
    expect(await webhooks()).toEqual([
      expect.objectContaining({ id: 'plain', url: plain.url, state: 'active', pending: 0, lastStatus: 204 }),
      expect.objectContaining({ id: 'rotating', state: 'active', pending: 0, lastStatus: 204 }),
    ]);
    expect(JSON.stringify(await webhooks())).not.toContain(a.secret.slice(6));
    const metrics = (await bridge.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_webhook_attempts_total', { endpoint: 'plain' })).toBe(3);
    expect(metricValue(metrics, 'chatbridge_webhook_delivered_total', { endpoint: 'plain' })).toBe(3);
    expect(metricValue(metrics, 'chatbridge_webhook_delivery_duration_seconds_count', { endpoint: 'plain' })).toBe(3);
    // Like the Kafka and stdout sinks: events acknowledged, one per endpoint that answered 2xx (3 events, 2 endpoints).
    expect(metricValue(metrics, 'chatbridge_events_out_total', { sink: 'webhooks', channel: 'wa', type: 'chatbridge.message.received' })).toBe(6);
    expect(metricValue(metrics, 'chatbridge_webhook_pending', { endpoint: 'plain' })).toBe(0);
    expect(metricValue(metrics, 'chatbridge_webhook_endpoint_disabled', { endpoint: 'plain' })).toBe(0);
  });

  it('retries 5xx, timeouts and dropped connections on the schedule with the same webhook-id and a fresh signature', async () => {
    const r = await receiver();
    const failures = new Map<string, number>();
    r.respond((req) => {
      const n = (failures.get(req.event.id) ?? 0) + 1;
      failures.set(req.event.id, n);
      const text = req.event.data.message?.text;
      if (n > 2) return undefined;
      if (text === '5xx') return { status: n === 1 ? 500 : 502, body: 'upstream broke' };
      if (text === 'timeout') return { hang: true };
      return { destroy: true };
    });
    const cfg = hook('flaky', r, { timeoutMs: 300 });
    bridge = await startTestBridge({ webhooks: [cfg] });
    publish('wa', 'a', '5xx');
    publish('wa', 'b', 'timeout');
    publish('wa', 'c', 'reset');
    const delivered = await r.waitForDelivered(3);
    expect(texts(delivered).sort()).toEqual(['5xx', 'reset', 'timeout']);
    for (const text of ['5xx', 'timeout', 'reset']) {
      const tries = r.requests.filter((q) => q.event.data.message?.text === text);
      expect(tries).toHaveLength(3);
      expect(new Set(tries.map((q) => q.headers['webhook-id'])).size).toBe(1);
      expect(new Set(tries.map((q) => q.body)).size).toBe(1); // serialized once, at the first attempt, signed again each time
      for (const q of tries) expect(() => verify(cfg.secret, q)).not.toThrow();
    }
    const metrics = (await bridge.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_webhook_failures_total', { endpoint: 'flaky', class: '5xx' })).toBe(2);
    expect(metricValue(metrics, 'chatbridge_webhook_failures_total', { endpoint: 'flaky', class: 'timeout' })).toBe(2);
    expect(metricValue(metrics, 'chatbridge_webhook_failures_total', { endpoint: 'flaky', class: 'network' })).toBe(2);
    expect(metricValue(metrics, 'chatbridge_webhook_attempts_total', { endpoint: 'flaky' })).toBe(9);
    expect(deadLetters()).toEqual([]);
  });

  it('retries a refused connection until the receiver is up, and dead-letters after the last retry', async () => {
    const probe = await receiver();
    const port = Number(new URL(probe.url).port);
    await probe.stop();
    const gone = await receiver();
    await gone.stop();
    bridge = await startTestBridge({
      webhooks: [
        { id: 'later', url: `http://127.0.0.1:${port}/hook`, secret: newSecret(), retrySchedule: [0, 100, 200, 300, 400, 500] },
        { id: 'never', url: gone.url, secret: newSecret(), retrySchedule: [0, 20, 20] },
      ],
    });
    publish('wa', 'a', 'refused first');
    await waitFor('a refused attempt', async () => metricValue((await bridge!.get('/metrics')).text, 'chatbridge_webhook_failures_total', { endpoint: 'later', class: 'network' }) >= 1);
    const up = await receiver(port);
    expect(texts(await up.waitForDelivered(1))).toEqual(['refused first']);

    const letter = await waitFor('dead letter', () => deadLetters().find((d) => d.origin === 'never'));
    expect(letter).toMatchObject({ reason: 'webhook_retries_exhausted', attempts: 3, channelId: 'wa', error: expect.stringContaining('ECONNREFUSED') });
  });

  it('dead-letters other 4xx at once with the status and a body excerpt, and the key goes on', async () => {
    const r = await receiver();
    r.respond((req) => (req.event.data.message?.text === 'bad' ? { status: 422, body: '{"error":"schema mismatch: field text"}' } : undefined));
    bridge = await startTestBridge({ webhooks: [hook('strict', r)] });
    const bad = messageEvent('wa', 'k', 'bad');
    bridge.bridge.pipeline.publish(bad);
    publish('wa', 'k', 'good');
    expect(texts(await r.waitForDelivered(1))).toEqual(['good']);
    const [letter] = await waitFor('dead letter', () => (deadLetters().length ? deadLetters() : undefined));
    expect(letter).toMatchObject({ reason: 'webhook_rejected', origin: 'strict', status: 422, attempts: 1, event: { id: bad.event.id } });
    expect(letter.error).toBe('HTTP 422: {"error":"schema mismatch: field text"}');
    await new Promise((res) => setTimeout(res, 250));
    expect(r.requests.filter((q) => q.event.id === bad.event.id)).toHaveLength(1);
    const metrics = (await bridge.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_webhook_failures_total', { endpoint: 'strict', class: '4xx' })).toBe(1);
    expect(metricValue(metrics, 'chatbridge_dead_letters_total', { target: 'file', reason: 'webhook_rejected' })).toBe(1);
  });

  it('never follows a redirect: 3xx is a failure, dead-lettered with its target', async () => {
    const r = await receiver();
    r.respond((req) => (req.path === '/hook' ? { status: 307, headers: { location: r.url.replace('/hook', '/moved?sig=x') } } : undefined));
    bridge = await startTestBridge({ webhooks: [hook('moved', r)] });
    publish('wa', 'k', 'redirected');
    const [letter] = await waitFor('dead letter', () => (deadLetters().length ? deadLetters() : undefined));
    expect(letter).toMatchObject({ reason: 'webhook_rejected', status: 307, error: `HTTP 307: redirect to ${r.url.replace('/hook', '/moved')} not followed` });
    await new Promise((res) => setTimeout(res, 200));
    expect(r.requests.map((q) => q.path)).toEqual(['/hook']);
  });

  it('honours retry-after on 429 (seconds) and 503 (HTTP date) instead of the schedule', async () => {
    const throttled = await receiver();
    const unavailable = await receiver();
    throttled.respond((req) => (req.n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : undefined));
    unavailable.respond((req) => (req.n === 1 ? { status: 503, headers: { 'retry-after': new Date(Date.now() + 2000).toUTCString() } } : undefined));
    // The schedule alone would retry after at most 50 ms.
    bridge = await startTestBridge({ webhooks: [hook('throttled', throttled, { retrySchedule: [0, 50, 5000] }), hook('unavailable', unavailable, { retrySchedule: [0, 50, 5000] })] });
    publish('wa', 'k', 'wait for me');
    const [first, second] = await throttled.waitForRequests(2, 5000);
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
    expect(second.at - first.at).toBeLessThan(1800);
    const [u1, u2] = await unavailable.waitForRequests(2, 5000);
    // An HTTP date has whole seconds: the wait is between 1 and 2 s.
    expect(u2.at - u1.at).toBeGreaterThanOrEqual(900);
    expect(u2.at - u1.at).toBeLessThan(2600);
    await throttled.waitForDelivered(1);
    await unavailable.waitForDelivered(1);
  });

  it('410 disables the endpoint: no more attempts, pending events dead-lettered, visible in the API, metrics and a chatbridge.webhook.status event; enable resumes', async () => {
    const r = await receiver();
    r.respond((req) => (req.n === 1 ? { status: 410, delayMs: 100, body: 'gone' } : undefined));
    const ops = await receiver();
    bridge = await startTestBridge({ webhooks: [hook('old', r, { concurrency: 1 }), hook('ops', ops, { types: ['chatbridge.webhook.status'] })] });
    for (const t of ['g1', 'g2', 'g3']) publish('wa', 'k', t);
    await waitFor('disabled', async () => (await webhooks())[0].state === 'disabled');
    publish('wa', 'k', 'g4');
    const letters = await waitFor('4 dead letters', () => (deadLetters().length === 4 ? deadLetters() : undefined));
    expect(letters.map((l) => l.reason)).toEqual(['endpoint_disabled', 'endpoint_disabled', 'endpoint_disabled', 'endpoint_disabled']);
    expect(letters[0]).toMatchObject({ origin: 'old', status: 410, error: 'HTTP 410: gone', attempts: 1 });
    expect(r.requests).toHaveLength(1);
    expect((await webhooks())[0]).toMatchObject({ id: 'old', state: 'disabled', pending: 0, lastStatus: 410, disabledAt: expect.any(String) });
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_webhook_endpoint_disabled', { endpoint: 'old' })).toBe(1);
    // The other endpoints hear of it (the disabled one never gets its own status event).
    const [disabled] = await ops.waitForDelivered(1);
    expect(JSON.parse(disabled.body)).toMatchObject({
      type: 'chatbridge.webhook.status', source: '/chatbridge/webhooks/old', partitionkey: 'webhooks:old',
      data: { webhook: { id: 'old', url: r.url }, status: { state: 'disabled', previous: 'active', reason: 'gone', httpStatus: 410 } },
    });
    expect(JSON.parse(disabled.body)).not.toHaveProperty('channelid');

    expect((await post('/v1/webhooks/old/enable', null)).status).toBe(401);
    expect((await post('/v1/webhooks/nope/enable')).status).toBe(404);
    const enabled = await post('/v1/webhooks/old/enable');
    expect(enabled.status).toBe(200);
    expect(await enabled.json()).toMatchObject({ id: 'old', state: 'active' });
    publish('wa', 'k', 'g5');
    expect(texts(await r.waitForDelivered(1))).toEqual(['g5']);
    const [, reenabled] = await ops.waitForDelivered(2);
    expect(JSON.parse(reenabled.body)).toMatchObject({ type: 'chatbridge.webhook.status', data: { status: { state: 'active', previous: 'disabled', reason: 'enabled' } } });
    expect(r.requests.some((q) => q.event.type === 'chatbridge.webhook.status')).toBe(false);
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_webhook_endpoint_disabled', { endpoint: 'old' })).toBe(0);
  });

  it('sends each endpoint only the types and channels it subscribed to', async () => {
    const narrow = await receiver();
    const wide = await receiver();
    bridge = await startTestBridge({ webhooks: [hook('narrow', narrow, { types: ['chatbridge.message.*'], channels: ['wa-a'] }), hook('wide', wide)] });
    publish('wa-a', 'k', 'a');
    publish('wa-b', 'k', 'b');
    const note = createEvent({ type: 'chatbridge.notification', channelId: 'wa-a', provider: 'zapthinker', data: { channel: { id: 'wa-a', provider: 'zapthinker' }, notification: { message: 'n' }, upstream: { event: 'x', payload: null } } });
    bridge.bridge.pipeline.publish({ ...note, receivedAt: performance.now() });
    await wide.waitForDelivered(3);
    await new Promise((res) => setTimeout(res, 150));
    expect(texts(narrow.delivered())).toEqual(['a']);
    expect(wide.delivered().map((q) => q.event.type).sort()).toEqual(['chatbridge.message.received', 'chatbridge.message.received', 'chatbridge.notification']);
  });
});
