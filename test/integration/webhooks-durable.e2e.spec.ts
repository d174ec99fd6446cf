import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { toKafkaMessage } from '../../src/sinks/kafka/kafka.record';
import { startTestBroker } from '../kafka/test-broker';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { messageEvent, newSecret, ReceiverPool, texts, verify, WebhookReceiver } from '../helpers/webhook-receiver';

const ROOT = join(__dirname, '..', '..');
const TS_NODE = require.resolve('ts-node/dist/bin');
/** Test-broker friendly consumer settings: short empty fetches, a dead member leaves the group quickly. */
const CONSUMER = { maxWaitTimeMs: 100, sessionTimeoutMs: 6000, commitIntervalMs: 50 };

/** docs/webhooks.md: with Kafka, pending webhook deliveries survive a restart; nothing is lost, repeats keep their webhook-id. */
describe('durable webhook delivery from the events topic (e2e, test broker)', () => {
  let producer: Producer;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;
  const receivers = new ReceiverPool();
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    producer = new Kafka({ clientId: 'durable-spec', brokers: sharedBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
  });

  afterAll(async () => {
    await producer.disconnect();
  });

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await bridge?.close();
    bridge = undefined;
    await reader?.stop();
    reader = undefined;
    await receivers.stopAll();
  });

  const receiver = () => receivers.start();

  const kafka = (events: string, extra: Record<string, unknown> = {}) => ({ brokers: sharedBrokers(), topics: { events, deadLetter: `${events}-dlq` }, consumer: { ...CONSUMER, webhookGroupPrefix: `g-${randomUUID()}.` }, ...extra });
  const deliveredIds = (r: WebhookReceiver) => new Set(r.delivered().map((q) => q.event.id));
  const letters = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { reason: string; origin: string }) : []);

  it('a bridge killed (SIGKILL) mid-retry loses nothing: the restarted one delivers every event, same webhook-id, in order per key', async () => {
    const events = uniqueTopic('durable-events');
    const dir = mkdtempSync(join(tmpdir(), 'durable-'));
    const secret = newSecret();
    const r = await receiver();
    let healthy = false;
    r.respond(() => (healthy ? { status: 204 } : { status: 503 }));
    const config = {
      kafka: { ...kafka(events), consumer: { ...CONSUMER, webhookGroupPrefix: `kill-${randomUUID()}.` } },
      webhooks: [{ id: 'crm', url: r.url, secret, startFrom: 'earliest', retrySchedule: [0, ...Array(60).fill(250)], circuitBreaker: { failures: 10_000 } }],
      deadLetter: { file: join(dir, 'dl.jsonl') },
      stateDir: join(dir, 'state'),
    };
    const file = join(dir, 'chatbridge.json');
    writeFileSync(file, JSON.stringify(config));

    const sent = ['A', 'B', 'C'].flatMap((k) => [1, 2, 3, 4].map((n) => messageEvent('wa', k, `${k}${n}`)));
    await producer.send({ topic: events, acks: -1, messages: sent.map((s) => toKafkaMessage(s.event)) });

    const first = startProcess(file);
    // Every key's head is being retried (503), none delivered: the bridge is mid-retry.
    await waitFor('each key head retried twice', () => ['A1', 'B1', 'C1'].every((t) => r.requests.filter((q) => q.event.data.message?.text === t).length >= 2), 30_000);
    first.kill('SIGKILL');
    await new Promise((res) => first.once('exit', res));
    const attemptsBeforeKill = r.requests.length;
    expect(r.delivered()).toHaveLength(0);

    healthy = true;
    const second = startProcess(file);
    await waitFor('every event delivered after the restart', () => sent.every((s) => deliveredIds(r).has(s.event.id)), 40_000);
    const delivered = r.delivered();
    for (const k of ['A', 'B', 'C']) expect(texts(delivered.filter((q) => q.event.partitionkey === `wa:${k}`))).toEqual([1, 2, 3, 4].map((n) => `${k}${n}`));
    for (const q of delivered) expect(verify(secret, q)).toBeTruthy();
    // The heads tried before the kill were re-sent with the same webhook-id (= CloudEvent id).
    const before = r.requests.slice(0, attemptsBeforeKill);
    for (const q of before) expect(q.headers['webhook-id']).toBe(q.event.id);
    expect(new Set(before.map((q) => q.headers['webhook-id']))).toEqual(new Set(delivered.filter((q) => ['A1', 'B1', 'C1'].includes(q.event.data.message?.text ?? '')).map((q) => q.headers['webhook-id'])));
    expect(letters(config.deadLetter.file)).toEqual([]);

    second.kill('SIGTERM');
    const code = await new Promise((res) => second.once('exit', (c) => res(c)));
    expect(code).toBe(0);
  }, 90_000);

  it('a graceful stop leaves undelivered events in Kafka (no dead-letter file); the next start delivers them', async () => {
    const events = uniqueTopic('durable-events');
    const r = await receiver();
    let healthy = false;
    r.respond(() => (healthy ? undefined : { status: 500 }));
    const raw = { kafka: kafka(events), webhooks: [{ id: 'crm', url: r.url, secret: newSecret(), retrySchedule: [0, ...Array(60).fill(100)], circuitBreaker: { failures: 10_000 } }], shutdownGraceMs: 300 };
    bridge = await startTestBridge(raw);
    const sent = [1, 2, 3, 4, 5].map((n) => messageEvent('wa', `c${n % 2}`, `g${n}`));
    for (const s of sent) bridge.bridge.pipeline.publish(s);
    await r.waitForRequests(3, 15_000);
    const firstFile = bridge.deadLetterFile;
    await bridge.close();
    bridge = undefined;
    expect(letters(firstFile)).toEqual([]);

    healthy = true;
    bridge = await startTestBridge(raw);
    await waitFor('all five delivered after the restart', () => sent.every((s) => deliveredIds(r).has(s.event.id)), 20_000);
    expect(texts(r.delivered().filter((q) => q.event.partitionkey === 'wa:c1'))).toEqual(['g1', 'g3', 'g5']);
  }, 60_000);

  it('a full endpoint pauses its consumer instead of dead-lettering (events wait in Kafka), then catches up in order', async () => {
    const events = uniqueTopic('durable-events');
    const r = await receiver();
    let healthy = false;
    r.respond(() => (healthy ? undefined : { status: 503 }));
    bridge = await startTestBridge({ kafka: kafka(events), webhooks: [{ id: 'small', url: r.url, secret: newSecret(), maxPending: 3, concurrency: 2, retrySchedule: [0, ...Array(60).fill(50)], circuitBreaker: { failures: 10_000 } }] });
    const sent = Array.from({ length: 40 }, (_, i) => messageEvent('wa', `k${i % 10}`, `p${i}`));
    for (const s of sent) bridge.bridge.pipeline.publish(s);
    await r.waitForRequests(10, 15_000);
    const pending: number[] = [];
    for (let i = 0; i < 10; i++) {
      pending.push(metricValue((await bridge.get('/metrics')).text, 'chatbridge_webhook_pending', { endpoint: 'small' }));
      await new Promise((res) => setTimeout(res, 30));
    }
    expect(Math.max(...pending)).toBe(3); // full, and never beyond the bound
    healthy = true;
    await waitFor('all 40 delivered', () => sent.every((s) => deliveredIds(r).has(s.event.id)), 20_000);
    for (let k = 0; k < 10; k++) {
      expect(texts(r.delivered().filter((q) => q.event.partitionkey === `wa:k${k}`))).toEqual([0, 1, 2, 3].map((n) => `p${k + n * 10}`));
    }
    expect(letters(bridge.deadLetterFile)).toEqual([]);
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_dead_letters_total')).toBe(0);
  }, 60_000);

  it('a new endpoint starts at the end of the topic (startFrom latest) or backfills (earliest); a foreign record is dead-lettered, not a blocker', async () => {
    const events = uniqueTopic('durable-events');
    const old = [1, 2, 3].map((n) => messageEvent('wa', 'old', `old${n}`));
    await producer.send({ topic: events, acks: -1, messages: old.map((s) => toKafkaMessage(s.event)) });
    const late = await receiver();
    const backfill = await receiver();
    reader = new KafkaReader(sharedBrokers(), [`${events}-dlq`]);
    await reader.start();
    bridge = await startTestBridge({
      kafka: kafka(events),
      webhooks: [
        { id: 'late', url: late.url, secret: newSecret() },
        { id: 'backfill', url: backfill.url, secret: newSecret(), startFrom: 'earliest' },
      ],
    });
    await producer.send({ topic: events, messages: [{ key: 'x', value: 'not an event', headers: { foo: 'bar' } }] });
    const fresh = [1, 2].map((n) => messageEvent('wa', 'new', `new${n}`));
    for (const s of fresh) bridge.bridge.pipeline.publish(s);

    await waitFor('backfill got old and new', () => [...old, ...fresh].every((s) => deliveredIds(backfill).has(s.event.id)), 20_000);
    await waitFor('late got the new ones', () => fresh.every((s) => deliveredIds(late).has(s.event.id)), 20_000);
    const dlq = await reader.waitFor('the foreign record dead-lettered for each endpoint', (recs) => recs.filter((x) => x.headers.dlq_reason === 'undecodable_record').length >= 2);
    expect(dlq.filter((x) => x.headers.dlq_reason === 'undecodable_record').map((x) => x.headers.dlq_origin).sort()).toEqual(['backfill', 'late']);
    expect(dlq[0].headers.dlq_error).toContain('not a chatbridge event record');
    expect(texts(late.delivered())).toEqual(['new1', 'new2']);
    expect(texts(backfill.delivered().filter((q) => q.event.partitionkey === 'wa:old'))).toEqual(['old1', 'old2', 'old3']);
    expect(texts(backfill.delivered().filter((q) => q.event.partitionkey === 'wa:new'))).toEqual(['new1', 'new2']);
  }, 60_000);

  it('a bridge writing structured mode (kafka.producer.cloudEventsMode) delivers its records and the binary ones written before, the same events', async () => {
    const events = uniqueTopic('durable-structured');
    const before = [1, 2].map((n) => messageEvent('wa', 'm', `bin${n}`));
    await producer.send({ topic: events, acks: -1, messages: before.map((s) => toKafkaMessage(s.event)) });
    const r = await receiver();
    reader = new KafkaReader(sharedBrokers(), [events]);
    await reader.start();
    bridge = await startTestBridge({ kafka: kafka(events, { producer: { cloudEventsMode: 'structured' } }), webhooks: [{ id: 'crm', url: r.url, secret: newSecret(), startFrom: 'earliest' }] });
    const after = [1, 2].map((n) => messageEvent('wa', 'm', `str${n}`));
    for (const s of after) bridge.bridge.pipeline.publish(s);

    await waitFor('all four delivered', () => [...before, ...after].every((s) => deliveredIds(r).has(s.event.id)), 20_000);
    expect(texts(r.delivered())).toEqual(['bin1', 'bin2', 'str1', 'str2']);
    expect(r.delivered().map((q) => q.event)).toEqual([...before, ...after].map((s) => JSON.parse(JSON.stringify(s.event))));
    const written = await reader.waitFor('the structured records', (recs) => recs.length >= 4);
    expect(written.slice(2).map((x) => x.headers)).toEqual([{ 'content-type': 'application/cloudevents+json' }, { 'content-type': 'application/cloudevents+json' }]);
    expect(JSON.parse(written[2].value ?? 'null')).toEqual(JSON.parse(JSON.stringify(after[0].event)));
  }, 60_000);

  it('a new endpoint on an events topic that does not exist yet delivers what is published right after start (before its group has joined)', async () => {
    const events = uniqueTopic('durable-fresh');
    const r = await receiver();
    bridge = await startTestBridge({ kafka: kafka(events), webhooks: [{ id: 'crm', url: r.url, secret: newSecret() }] });
    const sent = [1, 2].map((n) => messageEvent('wa', 'c', `f${n}`));
    for (const s of sent) bridge.bridge.pipeline.publish(s);
    await waitFor('both delivered', () => sent.every((s) => deliveredIds(r).has(s.event.id)), 20_000);
  }, 40_000);

  it('Kafka unreachable when the bridge starts: the endpoint\'s consumer keeps trying, then delivers everything (a new group starts from the oldest event rather than risk a gap)', async () => {
    const broker = await startTestBroker({ brokers: 1, topics: [{ name: 'events', partitions: 4 }] });
    try {
      await broker.down();
      const r = await receiver();
      bridge = await startTestBridge({
        kafka: { brokers: broker.bootstrap, topics: { events: 'events', deadLetter: 'dlq' }, connectionTimeoutMs: 300, consumer: CONSUMER },
        webhooks: [{ id: 'crm', url: r.url, secret: newSecret() }],
      });
      const sent = [1, 2, 3].map((n) => messageEvent('wa', 'c', `u${n}`));
      for (const s of sent) bridge.bridge.pipeline.publish(s);
      await new Promise((res) => setTimeout(res, 1500));
      expect(r.requests).toHaveLength(0);
      await broker.up();
      await waitFor('delivered after Kafka came back', () => sent.every((s) => deliveredIds(r).has(s.event.id)), 30_000);
      expect(texts(r.delivered())).toEqual(['u1', 'u2', 'u3']);
    } finally {
      await bridge?.close();
      bridge = undefined;
      await broker.stop();
    }
  }, 60_000);

  /** Runs the real entry point (`src/main.ts`) as its own process with a config file. */
  function startProcess(configFile: string): ChildProcess {
    const child = spawn(process.execPath, [TS_NODE, '--transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, CHATBRIDGE_CONFIG: configFile, PORT: '0', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', CHATBRIDGE_API_TOKENS: 'durable-spec-token' },
      stdio: ['ignore', process.env.TEST_LOG_LEVEL ? 'inherit' : 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  }
});

