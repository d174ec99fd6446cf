import pino from 'pino';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { BridgeError } from '../../src/common/errors';
import { scanDeadLetterTopic } from '../../src/sinks/webhook/webhook.replay.sources';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { messageEvent, newSecret, ReceiverPool, texts, verify, WebhookReceiver, type ReceivedRequest } from '../helpers/webhook-receiver';

type Letter = { at: string; reason: string; origin: string; event: { id: string; data: { message: { text: string } } } };

/** POST /v1/webhooks/:id/replay against real receivers: dead letters from the file and from the Kafka topic. */
describe('webhook replay from dead letters (e2e)', () => {
  let bridge: TestBridge | undefined;
  const receivers = new ReceiverPool();

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await receivers.stopAll();
  });

  /** A receiver that rejects with `status` (400: dead-lettered at once) until `accept()`. */
  async function receiver(status = 400): Promise<WebhookReceiver & { accept(): void; reject(s: number): void }> {
    const r = await receivers.start();
    let answer: number | undefined = status;
    r.respond(() => (answer ? { status: answer, body: 'not now' } : undefined));
    return Object.assign(r, { accept: () => (answer = undefined), reject: (s: number) => (answer = s) });
  }

  const hook = (id: string, r: WebhookReceiver) => ({ id, url: r.url, secret: newSecret(), retrySchedule: [0, 50] });
  const publish = (conversation: string, text: string) => {
    const item = messageEvent('wa', conversation, text);
    bridge!.bridge.pipeline.publish(item);
    return item.event;
  };
  async function replay(id: string, body?: unknown, token: string | null = TEST_TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${bridge!.url}/v1/webhooks/${id}/replay`, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  function letters(origin?: string): Letter[] {
    if (!bridge || !existsSync(bridge.deadLetterFile)) return [];
    const all = readFileSync(bridge.deadLetterFile, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
      try {
        const letter = JSON.parse(l) as Letter;
        return letter.event ? [letter] : [];
      } catch {
        return [];
      }
    });
    return origin ? all.filter((l) => l.origin === origin) : all;
  }
  /** The webhook-id of the first attempt of the event carrying `text`. */
  const firstAttempt = (r: WebhookReceiver, text: string) => r.requests.find((q) => q.event.data.message?.text === text)!.headers['webhook-id'];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('replays from the dead-letter file by ids and by time range: exactly those events, signed, with their original webhook-id, once each', async () => {
    const crm = await receiver();
    const erp = await receiver();
    const crmHook = hook('crm', crm);
    bridge = await startTestBridge({ webhooks: [crmHook, hook('erp', erp)] });
    const [a1, a2] = [publish('A', 'a1'), publish('B', 'a2'), publish('A', 'a3')];
    await waitFor('3 dead letters of crm', () => letters('crm').length === 3);
    await sleep(20);
    const mid = new Date().toISOString();
    await sleep(20);
    const [b1] = [publish('A', 'b1'), publish('A', 'b2')];
    await waitFor('5 dead letters of each endpoint', () => letters('crm').length === 5 && letters('erp').length === 5);
    expect(letters('crm').map((l) => l.reason)).toEqual(Array(5).fill('webhook_rejected'));
    // A second dead letter of a2 (as after a failed earlier replay) and two lines nobody can read.
    appendFileSync(bridge.deadLetterFile, `${JSON.stringify(letters('crm').find((l) => l.event.id === a2.id))}\n{"at":"2025-06-05T14:00:00Z","orig\n${JSON.stringify({ at: 'never', origin: 'crm' })}\n`);
    crm.accept();
    const before = crm.requests.length;

    const byIds = await replay('crm', { ids: [a2.id, b1.id, 'f'.repeat(32)] });
    expect(byIds).toEqual({ status: 200, body: { endpoint: 'crm', matched: 2, replayed: 2, skippedMalformed: 2, sources: { file: 3, kafka: 0 } } });
    const got = (await crm.waitForDelivered(2)).slice(-2);
    await sleep(100);
    expect(crm.requests).toHaveLength(before + 2);
    expect(texts(got).sort()).toEqual(['a2', 'b1']);
    for (const req of got) {
      expect(verify(crmHook.secret, req)).toMatchObject({ id: req.event.id, type: 'chatbridge.message.received' });
      expect(req.headers['webhook-id']).toBe(firstAttempt(crm, req.event.data.message!.text!));
    }

    const byTime = await replay('crm', { from: mid });
    expect(byTime.body).toEqual({ endpoint: 'crm', matched: 2, replayed: 2, skippedMalformed: 2, sources: { file: 2, kafka: 0 } });
    expect(texts((await crm.waitForDelivered(4)).slice(-2))).toEqual(['b1', 'b2']);

    const oldest = await replay('crm', { to: mid, limit: 2 });
    const a3At = letters('crm').find((l) => l.event.data.message.text === 'a3')!.at;
    expect(oldest.body).toEqual({ endpoint: 'crm', matched: 3, replayed: 2, skippedMalformed: 2, sources: { file: 4, kafka: 0 }, truncated: true, resumeFrom: a3At });
    const last: ReceivedRequest[] = (await crm.waitForDelivered(6)).slice(-2);
    expect(last.map((q) => q.event.id).sort()).toEqual([a1.id, a2.id].sort());

    // Only crm's receiver was called; the dead letters stay (an append-only record); the metric counts the replays.
    expect(erp.requests).toHaveLength(5);
    expect(letters('crm')).toHaveLength(6);
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_webhook_replayed_total', { endpoint: 'crm' })).toBe(6);
  });

  it('dead-letters a replayed event that fails again, and refuses with 409 while the endpoint is disabled', async () => {
    const r = await receiver(410);
    bridge = await startTestBridge({ webhooks: [hook('gone', r)] });
    const e = publish('A', 'bounced');
    await waitFor('disabled and dead-lettered', () => letters('gone').some((l) => l.reason === 'endpoint_disabled'));

    const refused = await replay('gone', { ids: [e.id] });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ statusCode: 409, error: 'Conflict' });
    expect(refused.body.message).toContain('POST /v1/webhooks/gone/enable');
    expect(r.requests).toHaveLength(1);

    expect((await fetch(`${bridge.url}/v1/webhooks/gone/enable`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}` } })).status).toBe(200);
    r.reject(400);
    expect((await replay('gone', { ids: [e.id] })).body).toMatchObject({ matched: 1, replayed: 1 });
    await waitFor('dead-lettered again', () => letters('gone').filter((l) => l.event.id === e.id).length === 2);
    expect(letters('gone').map((l) => l.reason)).toEqual(['endpoint_disabled', 'webhook_rejected']);

    r.accept();
    expect((await replay('gone', { ids: [e.id] })).body).toMatchObject({ matched: 1, replayed: 1, sources: { file: 2, kafka: 0 } });
    const [ok] = await r.waitForDelivered(1);
    expect(ok.headers['webhook-id']).toBe(r.requests[0].headers['webhook-id']);
  });

  it('answers 401 without a token, 404 for an unknown endpoint and 400 with details for a request that selects nothing or is invalid', async () => {
    const r = await receiver();
    bridge = await startTestBridge({ webhooks: [hook('crm', r)] });
    expect((await replay('crm', { ids: ['a'] }, null)).status).toBe(401);
    expect(await replay('nope', { ids: ['a'] })).toEqual({ status: 404, body: { statusCode: 404, error: 'Not Found', message: 'no webhook endpoint with id "nope"' } });
    const empty = await replay('crm');
    expect(empty.status).toBe(400);
    expect(empty.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: 'invalid replay request' });
    expect((empty.body.details as string[])[0]).toMatch(/from, to or ids/);
    expect((await replay('crm', {})).body.details).toEqual(['(body): give at least one of from, to or ids (replaying every dead letter at once is not allowed)']);
    const bad = await replay('crm', { from: 'last tuesday', ids: [], all: true });
    expect(bad.status).toBe(400);
    expect((bad.body.details as string[]).sort()).toEqual(['all: unknown key', 'from: must be an ISO 8601 time with a zone, e.g. 2025-06-05T14:00:00Z', 'ids: should not be empty']);
    expect(r.requests).toHaveLength(0);
  });

  it('replays from the Kafka dead-letter topic, an event also found in the file once', async () => {
    const crm = await receiver();
    const erp = await receiver();
    const crmHook = hook('crm', crm);
    const events = uniqueTopic('events');
    // A group of its own: endpoint ids repeat across specs running at the same time on the shared broker.
    bridge = await startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events, deadLetter: uniqueTopic('dlq') }, consumer: { webhookGroupPrefix: `${events}.webhook.` } }, webhooks: [crmHook, hook('erp', erp)] });
    await waitFor('kafka up', async () => (await bridge!.get('/readyz', null)).status === 200);
    const t0 = new Date(Date.now() - 1000).toISOString();
    const [k1, k2, k3] = [publish('A', 'k1'), publish('B', 'k2'), publish('A', 'k3')];
    const inKafka = async () => metricValue((await bridge!.get('/metrics')).text, 'chatbridge_dead_letters_total', { target: 'kafka', reason: 'webhook_rejected' });
    await waitFor('6 dead letters in the topic', async () => (await inKafka()) === 6, 20_000);
    expect(letters()).toEqual([]);
    // The same dead letter in the file too (as when the topic write had failed over to it).
    appendFileSync(bridge.deadLetterFile, `${JSON.stringify({ at: new Date().toISOString(), reason: 'webhook_rejected', origin: 'crm', channelId: 'wa', event: k2, attempts: 1, status: 400 })}\n`);
    crm.accept();

    const all = await replay('crm', { from: t0 });
    expect(all).toEqual({ status: 200, body: { endpoint: 'crm', matched: 3, replayed: 3, skippedMalformed: 0, sources: { file: 1, kafka: 3 } } });
    const got = (await crm.waitForDelivered(3)).slice(-3);
    expect(got.map((q) => q.event.id).sort()).toEqual([k1.id, k2.id, k3.id].sort());
    expect(texts(got.filter((q) => q.event.partitionkey === 'wa:A'))).toEqual(['k1', 'k3']);
    for (const req of got) {
      expect(() => verify(crmHook.secret, req)).not.toThrow();
      expect(req.headers['webhook-id']).toBe(firstAttempt(crm, req.event.data.message!.text!));
    }

    expect((await replay('crm', { ids: [k3.id] })).body).toEqual({ endpoint: 'crm', matched: 1, replayed: 1, skippedMalformed: 0, sources: { file: 0, kafka: 1 } });
    await crm.waitForDelivered(4);
    await sleep(100);
    expect(crm.requests).toHaveLength(7);
    expect(erp.requests).toHaveLength(3);
  });

  it('fails a replay whose dead-letter topic cannot be read with a clear error: refused at once, or silent past its bound', async () => {
    const scan = (port: number) => {
      const kafka = new Kafka({ clientId: 'replay-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100 } });
      return scanDeadLetterTopic(kafka, 'chatbridge.dlq', () => undefined, 1500, pino({ level: 'silent' })).then(() => undefined, (e: unknown) => e);
    };
    const refused = await scan(await closedPort());
    expect(refused).toBeInstanceOf(BridgeError);
    expect(refused).toMatchObject({ code: 'dlq_unreadable', message: expect.stringMatching(/^cannot read the dead-letter topic "chatbridge\.dlq": Connection error: connect ECONNREFUSED 127\.0\.0\.1:\d+$/) });

    // A broker that accepts connections and never answers.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const t0 = Date.now();
      const hung = await scan((silent.address() as { port: number }).port);
      expect(hung).toMatchObject({ code: 'dlq_unreadable', message: 'could not read the dead-letter topic "chatbridge.dlq" within 1500 ms (is Kafka reachable?)' });
      expect(Date.now() - t0).toBeLessThan(8000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
