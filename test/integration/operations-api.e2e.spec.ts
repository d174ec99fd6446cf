import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { messageEvent, newSecret, ReceiverPool, type WebhookReceiver } from '../helpers/webhook-receiver';
import type { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startZapThinkerPair, zapChannel } from '../helpers/zapthinker-pair';

/* The operations API (docs/api.md): POST /v1/channels/:id/reconnect, GET /v1/webhooks/:id/dead-letters, replay dryRun. */

async function call(bridge: TestBridge, method: string, path: string, body?: unknown, token: string | null = TEST_TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${bridge.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('POST /v1/channels/:id/reconnect (e2e)', () => {
  let zsim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;

  beforeEach(async () => {
    zsim = await startZapThinkerPair();
  });
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await zsim.stop();
  });

  const zap = (instance: string, extra: Record<string, unknown> = {}) => zapChannel(zsim, instance, extra);

  it('drops the upstream socket and connects again at once; 404 for an unknown channel, 409 in webhook mode, 401 without a token', async () => {
    bridge = await startTestBridge({ channels: [zap('sales'), zap('support', { inbound: { token: 'inbound-token-0123456789' } })] });
    await zsim.waitForClients('sales', 1);
    await waitFor('connected', async () => ((await bridge!.get('/v1/channels/wa-sales')).body as { state: string }).state === 'connected');
    const handshakes = () => zsim.handshakes.filter((h) => h.apikey === 'tok-sales' && h.accepted).length;
    const before = handshakes();

    const answer = await call(bridge, 'POST', '/v1/channels/wa-sales/reconnect');
    expect(answer).toMatchObject({ status: 202, body: { id: 'wa-sales', state: 'reconnecting', reconnects: 1, held: true } });
    await waitFor('a new upstream connection', () => handshakes() > before);
    const after = await waitFor('connected again', async () => {
      const s = (await bridge!.get('/v1/channels/wa-sales')).body as Record<string, unknown>;
      return s.state === 'connected' && s;
    });
    expect(after).toMatchObject({ reconnects: 1 });
    // The other channel kept its connection.
    expect((await bridge.get('/v1/channels/wa-support')).body).toMatchObject({ state: 'connected', reconnects: 0 });

    expect(await call(bridge, 'POST', '/v1/channels/nope/reconnect')).toEqual({ status: 404, body: { statusCode: 404, error: 'Not Found', message: 'no channel with id "nope"' } });
    expect((await call(bridge, 'PUT', '/v1/channels/wa-support/mode', { mode: 'webhook' })).status).toBe(200);
    expect(await call(bridge, 'POST', '/v1/channels/wa-support/reconnect')).toEqual({
      status: 409, body: { statusCode: 409, error: 'Conflict', message: 'channel wa-support has no upstream socket to reconnect here: it is in webhook mode' },
    });
    expect((await call(bridge, 'POST', '/v1/channels/wa-sales/reconnect', undefined, null)).status).toBe(401);
  });
});

describe('webhook dead letters: GET /v1/webhooks/:id/dead-letters and replay dryRun (e2e)', () => {
  const receivers = new ReceiverPool();
  let bridge: TestBridge | undefined;

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await receivers.stopAll();
  });

  /** A receiver answering 400 (dead-lettered at once, `webhook_rejected`). */
  async function rejecting(): Promise<WebhookReceiver> {
    const r = await receivers.start();
    r.respond(() => ({ status: 400, body: 'no' }));
    return r;
  }
  const hook = (id: string, r: WebhookReceiver) => ({ id, url: r.url, secret: newSecret(), retrySchedule: [0, 50] });
  const publish = (text: string) => {
    const item = messageEvent('wa', 'A', text);
    bridge!.bridge.pipeline.publish(item);
    return item.event;
  };
  const fileLetters = (origin: string) => (existsSync(bridge!.deadLetterFile) ? readFileSync(bridge!.deadLetterFile, 'utf8').split('\n').filter((l) => l.includes(`"origin":"${origin}"`)) : []);
  const page = (id: string, query = '') => call(bridge!, 'GET', `/v1/webhooks/${id}/dead-letters${query}`);

  it('lists the file dead letters oldest first, a page at a time; a dry run says what a replay would send and sends nothing', async () => {
    const crm = await rejecting();
    const erp = await rejecting();
    bridge = await startTestBridge({ webhooks: [hook('crm', crm), hook('erp', erp)] });
    const sent = ['d1', 'd2', 'd3'].map(publish);
    await waitFor('3 dead letters of each endpoint', () => fileLetters('crm').length === 3 && fileLetters('erp').length === 3);
    appendFileSync(bridge.deadLetterFile, '{"at":"2025-06-05T14:00:00Z","origin":"crm","event":{"id":42}}\n');

    const first = await page('crm', '?limit=2');
    expect(first.status).toBe(200);
    const letter = (id: string) => ({ id, type: 'chatbridge.message.received', at: expect.stringMatching(/^\d{4}-.*Z$/), reason: 'webhook_rejected', attempts: 1, lastStatus: 400, error: expect.any(String), source: 'file' });
    expect(first.body).toEqual({ endpoint: 'crm', deadLetters: [letter(sent[0].id), letter(sent[1].id)], nextCursor: expect.any(String), skippedMalformed: 1 });
    const second = await page('crm', `?limit=2&cursor=${first.body.nextCursor as string}`);
    expect(second).toEqual({ status: 200, body: { endpoint: 'crm', deadLetters: [letter(sent[2].id)], skippedMalformed: 1 } });
    expect((await page('crm')).body.deadLetters).toHaveLength(3);

    expect(await page('crm', '?limit=0&colour=blue')).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message: 'invalid dead-letter query', details: ['colour: unknown key', 'limit: must not be less than 1'] } });
    expect((await page('crm', '?cursor=bm90LWEtY3Vyc29y')).body).toMatchObject({ statusCode: 400, details: ["cursor: must be a page's nextCursor"] });
    expect((await page('nope')).status).toBe(404);
    expect((await call(bridge, 'GET', '/v1/webhooks/crm/dead-letters', undefined, null)).status).toBe(401);

    const requests = crm.requests.length;
    const dry = await call(bridge, 'POST', '/v1/webhooks/crm/replay', { ids: [sent[0].id, sent[2].id], dryRun: true });
    expect(dry).toEqual({ status: 200, body: {
      endpoint: 'crm', matched: 2, replayed: 0, skippedMalformed: 1, sources: { file: 2, kafka: 0 }, dryRun: true,
      wouldReplay: [sent[0], sent[2]].map((e) => ({ id: e.id, type: 'chatbridge.message.received' })),
    } });
    expect((await call(bridge, 'POST', '/v1/webhooks/crm/replay', { ids: [sent[0].id], dryRun: 'yes' })).body).toMatchObject({ statusCode: 400, details: ['dryRun: must be a boolean value'] });
    await new Promise((r) => setTimeout(r, 200));
    expect(crm.requests).toHaveLength(requests);
    expect(fileLetters('crm')).toHaveLength(4);
  });

  it('lists dead letters of the Kafka topic with their dlq_ headers', async () => {
    const crm = await rejecting();
    const events = uniqueTopic('events');
    bridge = await startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events, deadLetter: uniqueTopic('dlq') }, consumer: { webhookGroupPrefix: `${events}.webhook.` } }, webhooks: [hook('crm', crm)] });
    await waitFor('kafka up', async () => (await bridge!.get('/readyz', null)).status === 200);
    const e = publish('k1');
    const listed = await waitFor('the dead letter in the topic', async () => {
      const r = await page('crm');
      return (r.body.deadLetters as unknown[]).length === 1 && r.body;
    }, 20_000);
    expect(listed).toEqual({ endpoint: 'crm', skippedMalformed: 0, deadLetters: [{ id: e.id, type: 'chatbridge.message.received', at: expect.any(String), reason: 'webhook_rejected', attempts: 1, lastStatus: 400, error: expect.any(String), source: 'kafka' }] });
  });
});
