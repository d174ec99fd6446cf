import { existsSync, readFileSync } from 'node:fs';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { messageEvent, newSecret, ReceiverPool, texts, verify, WebhookReceiver } from '../helpers/webhook-receiver';

/** Outbound webhooks: ordering per key, isolation between endpoints, breaker, bounds, shutdown, end to end. */
describe('outbound webhooks: ordering, isolation and lifecycle (e2e)', () => {
  let bridge: TestBridge | undefined;
  const receivers = new ReceiverPool();

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await receivers.stopAll();
  });

  const receiver = () => receivers.start();

  const hook = (id: string, r: WebhookReceiver, extra: Record<string, unknown> = {}) => ({ id, url: r.url, secret: newSecret(), retrySchedule: [0, 50, 100, 150], ...extra });
  const publish = (conversationId: string, text: string) => bridge!.bridge.pipeline.publish(messageEvent('wa', conversationId, text));
  const endpoint = async (id: string) => ((await bridge!.get('/v1/webhooks')).body as { webhooks: Array<Record<string, unknown>> }).webhooks.find((w) => w.id === id)!;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  function deadLetters(): Array<Record<string, unknown>> {
    if (!bridge || !existsSync(bridge.deadLetterFile)) return [];
    return readFileSync(bridge.deadLetterFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  it('keeps each key in order under retries: a failing event holds back only its own key', async () => {
    const r = await receiver();
    let a1Failures = 0;
    r.respond((req) => (req.event.data.message?.text === 'A1' && ++a1Failures <= 2 ? { status: 500 } : { delayMs: 10 }));
    bridge = await startTestBridge({ webhooks: [hook('ordered', r, { retrySchedule: [0, 150, 150, 150] })] });
    for (const t of ['A1', 'A2', 'A3']) publish('A', t);
    for (const t of ['B1', 'B2', 'B3']) publish('B', t);
    await waitFor('retrying state', async () => (await endpoint('ordered')).state === 'retrying');
    const delivered = await r.waitForDelivered(6);

    const at = (t: string) => delivered.find((q) => q.event.data.message?.text === t)!.at;
    expect(texts(delivered.filter((q) => q.event.partitionkey === 'wa:A'))).toEqual(['A1', 'A2', 'A3']);
    expect(texts(delivered.filter((q) => q.event.partitionkey === 'wa:B'))).toEqual(['B1', 'B2', 'B3']);
    // B flowed while A1 was retrying; A2 was not even tried before A1 got through.
    expect(at('B3')).toBeLessThan(at('A1'));
    const firstA2 = r.requests.find((q) => q.event.data.message?.text === 'A2')!;
    expect(firstA2.at).toBeGreaterThanOrEqual(at('A1'));
    expect(r.requests.filter((q) => q.event.data.message?.text === 'A1')).toHaveLength(3);
    expect(await endpoint('ordered')).toMatchObject({ state: 'active', pending: 0 });
  });

  it('one endpoint hanging or down does not hold back another', async () => {
    const hanging = await receiver();
    hanging.respond(() => ({ hang: true }));
    const refused = await receiver();
    await refused.stop();
    const healthy = await receiver();
    bridge = await startTestBridge({
      shutdownGraceMs: 300,
      webhooks: [hook('hanging', hanging, { timeoutMs: 10_000, concurrency: 1 }), hook('refused', refused), hook('healthy', healthy)],
    });
    const t0 = Date.now();
    for (let i = 0; i < 30; i++) publish(`c${i % 5}`, `m${i}`);
    await healthy.waitForDelivered(30, 3000);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(hanging.requests).toHaveLength(1);
    expect(await endpoint('hanging')).toMatchObject({ pending: 30, inFlight: 1 });
  });

  it('opens the circuit breaker on persistent failures, probes instead of hammering, and recovers by itself', async () => {
    const r = await receiver();
    let healthy = false;
    r.respond(() => (healthy ? undefined : { status: 500 }));
    bridge = await startTestBridge({ webhooks: [hook('shaky', r, { retrySchedule: [0, ...Array(29).fill(20)], circuitBreaker: { failures: 3, halfOpenAfterMs: 400 } })] });
    for (let i = 0; i < 4; i++) publish(`k${i}`, `e${i}`);
    await waitFor('circuit open', async () => (await endpoint('shaky')).state === 'circuit_open');
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_webhook_circuit_open', { endpoint: 'shaky' })).toBe(1);
    // Attempts already in flight when it opened may still land; after that, only probes, one at a time.
    await sleep(100);
    const quiet = r.requests.length;
    await r.waitForRequests(quiet + 2, 3000);
    const [probe1, probe2] = r.requests.slice(quiet);
    expect(probe1.at - r.requests[quiet - 1].at).toBeGreaterThanOrEqual(250);
    expect(probe2.at - probe1.at).toBeGreaterThanOrEqual(350);
    expect((await endpoint('shaky')).state).toBe('circuit_open');

    healthy = true;
    await r.waitForDelivered(4, 3000);
    await waitFor('closed', async () => (await endpoint('shaky')).state === 'active');
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_webhook_circuit_open', { endpoint: 'shaky' })).toBe(0);
    expect(r.requests.length).toBeLessThan(quiet + 8);
  });

  it('bounds what is pending per endpoint: beyond maxPending events are dead-lettered, not dropped', async () => {
    const r = await receiver();
    r.respond(() => ({ hang: true }));
    bridge = await startTestBridge({ shutdownGraceMs: 200, webhooks: [hook('small', r, { maxPending: 3, concurrency: 1, timeoutMs: 10_000 })] });
    for (let i = 0; i < 5; i++) publish('k', `p${i}`);
    const full = deadLetters();
    expect(full.map((d) => d.reason)).toEqual(['webhook_queue_full', 'webhook_queue_full']);
    expect(full[0]).toMatchObject({ origin: 'small', error: 'webhook queue full (3 events)' });
    expect(await endpoint('small')).toMatchObject({ pending: 3 });
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_webhook_pending', { endpoint: 'small' })).toBe(3);
  });

  it('at shutdown, writes what is still pending (waiting to retry, queued, in flight) to the dead-letter file', async () => {
    const failing = await receiver();
    failing.respond(() => ({ status: 500 }));
    const hanging = await receiver();
    hanging.respond(() => ({ hang: true }));
    bridge = await startTestBridge({
      shutdownGraceMs: 400,
      webhooks: [hook('failing', failing, { retrySchedule: [0, 60_000] }), hook('hanging', hanging, { timeoutMs: 30_000, concurrency: 1 })],
    });
    for (const t of ['s1', 's2', 's3']) publish('k', t);
    publish('other', 's4');
    await failing.waitForRequests(2);
    await hanging.waitForRequests(1);
    const t0 = Date.now();
    await bridge.close();
    const took = Date.now() - t0;
    const letters = deadLetters();
    bridge = undefined;
    expect(took).toBeLessThan(2000);
    const byOrigin = (o: string) => letters.filter((d) => d.origin === o);
    expect(byOrigin('failing').map((d) => d.reason)).toEqual(['shutdown', 'shutdown', 'shutdown', 'shutdown']);
    expect(byOrigin('hanging').map((d) => d.reason)).toEqual(['shutdown', 'shutdown', 'shutdown', 'shutdown']);
    expect(byOrigin('failing').filter((d) => d.attempts === 1)).toHaveLength(2);
  });

  it('end to end: ZapThinker simulator → bridge → signed webhook, filtered by type', async () => {
    const sim = new ZapThinkerSimulator({ instances: { sales: { token: 'zap-secret-key' } } });
    await sim.start();
    sim.touch('sales');
    try {
      const r = await receiver();
      const cfg = hook('crm', r, { types: ['chatbridge.message.*'], channels: ['wa-sales'] });
      bridge = await startTestBridge({ channels: [{ id: 'wa-sales', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'sales', apiKey: 'zap-secret-key' } }], webhooks: [cfg] });
      await sim.waitForClients('sales', 1);
      const sent = sim.sendMessage('sales', { remoteJid: '5511988887777', text: 'hello webhook', timestamp: 1717604327 });
      const [req] = await r.waitForDelivered(1);
      expect(verify(cfg.secret, req)).toMatchObject({
        specversion: '1.0',
        type: 'chatbridge.message.received',
        source: '/chatbridge/zapthinker/wa-sales',
        subject: '5511988887777@s.whatsapp.net',
        partitionkey: 'wa-sales:5511988887777@s.whatsapp.net',
        data: { message: { id: sent.key.id, text: 'hello webhook', direction: 'inbound' } },
      });
      // A replay of the same upstream message is deduplicated before it reaches the webhook.
      sim.emit('sales', 'messages.upsert', { ...sent });
      await sleep(200);
      expect(r.requests).toHaveLength(1);
      expect(bridge.stdoutEvents()).toEqual([]);
      expect(r.requests.map((q) => q.event.type)).not.toContain('chatbridge.channel.status');
    } finally {
      await bridge?.close();
      bridge = undefined;
      await sim.stop();
    }
  });
});
