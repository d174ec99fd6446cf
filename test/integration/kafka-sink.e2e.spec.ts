import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaJSProtocolError, type Kafka, type Message, type Producer, type ProducerRecord } from 'kafkajs';
import pino from 'pino';
import { KafkaConfig, KafkaProducerConfig, KafkaTopicsConfig } from '../../src/config/config.schema';
import type { AnyCanonicalEvent } from '../../src/envelope/envelope';
import { Metrics } from '../../src/health/metrics';
import { DeadLetters } from '../../src/pipeline/dead-letters';
import { createKafka } from '../../src/kafka/client';
import { KafkaSink, MAX_QUEUED_TEXT_HEAP, STRING_HEADER } from '../../src/sinks/kafka/kafka.sink';
import { recordBytes } from '../../src/sinks/kafka/record-queue';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { metricValue, waitFor } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { messageEvent } from '../helpers/webhook-receiver';

const log = pino({ level: 'silent' });

/** One produce call as the producer double saw it, and how it ended. */
interface SendCall {
  messages: Message[];
  outcome: 'pending' | 'sent' | 'refused' | 'failed';
  /** When the sink called send (performance.now()). */
  at: number;
}

/**
 * The real kafkajs client, whose producer is wrapped: every send is recorded, and `fail(messages)` may return an
 * error to throw instead of sending (a broker's answer the test broker cannot give).
 */
function wrappedKafka(brokers: string[], producer: Partial<KafkaProducerConfig>, fail: (messages: Message[], call: number) => Error | undefined = () => undefined) {
  const cfg = Object.assign(new KafkaConfig(), {
    brokers,
    connectionTimeoutMs: 1000,
    topics: Object.assign(new KafkaTopicsConfig(), { events: uniqueTopic('sink-events'), deadLetter: uniqueTopic('sink-dlq') }),
    producer: Object.assign(new KafkaProducerConfig(), { retryMaxDelayMs: 100, ...producer }),
  });
  const real = createKafka(cfg, log);
  const calls: SendCall[] = [];
  const kafka = {
    admin: () => real.admin(),
    producer: (opts: Parameters<Kafka['producer']>[0]): Producer => {
      const p = real.producer(opts);
      const send = async (record: ProducerRecord) => {
        const call: SendCall = { messages: record.messages, outcome: 'pending', at: performance.now() };
        calls.push(call);
        const err = record.topic === cfg.topics.events ? fail(record.messages, calls.length) : undefined;
        if (err) {
          call.outcome = err instanceof KafkaJSProtocolError && err.type === 'MESSAGE_TOO_LARGE' ? 'refused' : 'failed';
          throw err;
        }
        const out = await p.send(record);
        call.outcome = 'sent';
        return out;
      };
      return { ...p, send };
    },
  } as unknown as Kafka;
  return { cfg, kafka, calls };
}

/** A kafkajs protocol error as kafkajs builds it from a produce response's error code. */
function protocolError(type: string, code: number, retriable: boolean): KafkaJSProtocolError {
  return new KafkaJSProtocolError(Object.assign(new Error(`The broker answered ${type}`), { type, code, retriable }));
}

const idOf = (m: Message) => String(m.headers?.ce_id);
const textOf = (value: string | null) => (JSON.parse(value ?? 'null') as { message: { text: string } }).message.text;

describe('Kafka sink (real test broker)', () => {
  let sink: KafkaSink | undefined;
  let reader: KafkaReader | undefined;
  let broker: TestBroker | undefined;
  let blackhole: Server | undefined;
  let dir = '';
  let metrics: Metrics;
  let deadLetters: DeadLetters;

  const deadLines = () => {
    const file = join(dir, 'dlq.jsonl');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { reason: string; origin: string; error?: string; event: AnyCanonicalEvent }) : [];
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kafka-sink-'));
    metrics = new Metrics({ defaultMetrics: false });
    deadLetters = new DeadLetters(join(dir, 'dlq.jsonl'), metrics, log);
  });

  afterEach(async () => {
    await sink?.stop(0);
    await reader?.stop();
    await broker?.stop();
    await new Promise((r) => (blackhole ? blackhole.close(r) : r(undefined)));
    sink = reader = broker = blackhole = undefined;
  });

  it('isolates the one record the broker refuses (MESSAGE_TOO_LARGE): dead-lettered whole to the file, the others sent in order', async () => {
    // The test broker enforces no message.max.bytes, so a producer double refuses exactly one record the way a
    // real broker does: a kafkajs protocol error of type MESSAGE_TOO_LARGE for any batch that holds it.
    const items = Array.from({ length: 20 }, (_, i) => messageEvent('wa', 'c1', `m${i}`));
    const poison = items[7].event.id;
    const { cfg, kafka, calls } = wrappedKafka(sharedBrokers(), {}, (messages) => (messages.some((m) => idOf(m) === poison) ? protocolError('MESSAGE_TOO_LARGE', 10, false) : undefined));
    reader = new KafkaReader(sharedBrokers(), [cfg.topics.events]);
    await reader.start();
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    deadLetters.useTarget(sink);
    // Queued before the producer connects, so the first batch holds all twenty.
    for (const item of items) sink.publish(item);
    await sink.start();
    await reader.waitFor('19 records', (r) => r.length >= 19);

    expect(reader.records.map((r) => textOf(r.value))).toEqual(items.filter((_, i) => i !== 7).map((_, i, a) => textOf(JSON.stringify(a[i].event.data))));
    const dead = deadLines();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ reason: 'kafka_record_refused', origin: 'kafka', event: { id: poison, type: 'chatbridge.message.received', data: items[7].event.data } });
    expect(dead[0].error).toContain('MESSAGE_TOO_LARGE');
    // Halving: every refused batch held the poison, the last one it alone, in about log2(20) steps.
    const refused = calls.filter((c) => c.outcome === 'refused');
    expect(refused[0].messages).toHaveLength(20);
    expect(refused.at(-1)!.messages.map(idOf)).toEqual([poison]);
    expect(refused.length).toBeLessThanOrEqual(6);
    expect(metricValue(await metrics.registry.metrics(), 'chatbridge_refused_total', { origin: 'kafka', reason: 'kafka_record_refused' })).toBe(1);

    // The next event flows.
    const next = messageEvent('wa', 'c1', 'after');
    sink.publish(next);
    await reader.waitFor('the next event', (r) => r.some((x) => x.headers.ce_id === next.event.id));
    expect(deadLines()).toHaveLength(1);
  });

  it('keeps and retries the head batch on any other error (not a refusal of records): nothing dead-lettered', async () => {
    const items = Array.from({ length: 10 }, (_, i) => messageEvent('wa', 'c2', `r${i}`));
    const { cfg, kafka, calls } = wrappedKafka(sharedBrokers(), {}, (_m, call) => (call <= 2 ? protocolError('NOT_ENOUGH_REPLICAS', 19, true) : undefined));
    reader = new KafkaReader(sharedBrokers(), [cfg.topics.events]);
    await reader.start();
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    for (const item of items) sink.publish(item);
    await sink.start();
    await reader.waitFor('10 records', (r) => r.length >= 10);
    expect(reader.records.map((r) => r.headers.ce_id)).toEqual(items.map((i) => i.event.id));
    expect(calls.slice(0, 3).map((c) => [c.outcome, c.messages.length])).toEqual([['failed', 10], ['failed', 10], ['sent', 10]]);
    expect(deadLines()).toHaveLength(0);
  });

  it('spaces its produce requests lingerMs apart while batches are not full: events arriving meanwhile share one, all delivered in order', async () => {
    const lingerMs = 40;
    const { cfg, kafka, calls } = wrappedKafka(sharedBrokers(), { lingerMs });
    reader = new KafkaReader(sharedBrokers(), [cfg.topics.events]);
    await reader.start();
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    await sink.start();
    await waitFor('the sink connected', () => sink!.ready());
    // 30 events 4 ms apart: without the linger, about one request each (the test broker answers in about 1 ms).
    const items = Array.from({ length: 30 }, (_, i) => messageEvent('wa', 'c-linger', `l${i}`));
    for (const item of items) {
      sink.publish(item);
      await new Promise((r) => setTimeout(r, 4));
    }
    await reader.waitFor('30 records', (r) => r.length >= 30);
    expect(reader.records.map((r) => r.headers.ce_id)).toEqual(items.map((i) => i.event.id));
    const sent = calls.filter((c) => c.outcome === 'sent');
    expect(sent.reduce((n, c) => n + c.messages.length, 0)).toBe(30);
    // Each request started lingerMs after the previous one at the earliest (less 1 ms: Node's timers count whole milliseconds).
    for (let i = 1; i < sent.length; i++) expect(sent[i].at - sent[i - 1].at).toBeGreaterThanOrEqual(lingerMs - 1);
    expect(sent.some((c) => c.messages.length > 1)).toBe(true);
  });

  it('bounds each produce request by maxBatchBytes; a record larger than it goes alone', async () => {
    const maxBatchBytes = 20_000;
    const items = Array.from({ length: 12 }, (_, i) => messageEvent('wa', 'c3', `${i}:`.padEnd(i === 5 ? 30_000 : 3000, 'x')));
    const { cfg, kafka, calls } = wrappedKafka(sharedBrokers(), { maxBatchBytes });
    reader = new KafkaReader(sharedBrokers(), [cfg.topics.events]);
    await reader.start();
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    for (const item of items) sink.publish(item);
    await sink.start();
    await reader.waitFor('12 records', (r) => r.length >= 12);
    expect(reader.records.map((r) => r.headers.ce_id)).toEqual(items.map((i) => i.event.id));
    const sent = calls.filter((c) => c.outcome === 'sent');
    expect(sent.length).toBeGreaterThan(2);
    for (const c of sent) {
      const bytes = c.messages.reduce((n, m) => n + recordBytes(m), 0);
      if (c.messages.length > 1) expect(bytes).toBeLessThanOrEqual(maxBatchBytes);
    }
    expect(sent.find((c) => c.messages.some((m) => idOf(m) === items[5].event.id))!.messages).toHaveLength(1);
  });

  it('keeps queued values as strings up to its heap bound, then as UTF-8 outside the heap: every record reads back the same, in order', async () => {
    // Values of about 300,000 characters (the text is in the event twice): 20 ASCII ones, counted at a byte per
    // character, then ones with an emoji, two-byte strings counted at two, so the bound is passed by about the 66th.
    const ascii = Array.from({ length: 20 }, (_, i) => messageEvent('wa', 'c7', `${i} ascii `.padEnd(150_000, 'a')));
    const wide = Array.from({ length: 60 }, (_, i) => messageEvent('wa', 'c7', `${i} ção 😀 `.padEnd(150_000, 'z')));
    const items = [...ascii, ...wide];
    const { cfg, kafka, calls } = wrappedKafka(sharedBrokers(), {});
    reader = new KafkaReader(sharedBrokers(), [cfg.topics.events]);
    await reader.start();
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    // Queued before the producer connects: all of them at once.
    for (const item of items) sink.publish(item);
    await sink.start();
    await reader.waitFor(`${items.length} records`, (r) => r.length >= items.length, 60_000);

    const sent = calls.filter((c) => c.outcome === 'sent').flatMap((c) => c.messages);
    expect(sent.map(idOf)).toEqual(items.map((i) => i.event.id));
    // A prefix as strings, filling the bound as counted (ASCII once, the rest twice), and every later one a Buffer.
    const strings = sent.findIndex((m) => typeof m.value !== 'string');
    const heapOf = (m: Message) => STRING_HEADER + ((m.value as string).length === Buffer.byteLength(m.value as string) ? 1 : 2) * (m.value as string).length;
    const held = sent.slice(0, strings).reduce((n, m) => n + heapOf(m), 0);
    expect(held).toBeLessThanOrEqual(MAX_QUEUED_TEXT_HEAP);
    expect(held + heapOf({ value: JSON.stringify(wide[0].event.data) })).toBeGreaterThan(MAX_QUEUED_TEXT_HEAP);
    expect(strings).toBeGreaterThan(ascii.length + 40);
    expect(sent.slice(strings).every((m) => Buffer.isBuffer(m.value))).toBe(true);
    // Either way the broker holds the event's data, byte for byte.
    expect(reader.records.map((r) => r.headers.ce_id)).toEqual(items.map((i) => i.event.id));
    for (const [i, r] of reader.records.entries()) expect(r.value).toBe(JSON.stringify(items[i].event.data));
    expect(deadLines()).toHaveLength(0);
  });

  it('holds at most maxQueueBytes while Kafka is unreachable; past it queue_full to the file, the rest at shutdown: every event in the file once', async () => {
    blackhole = createServer((s) => s.destroy());
    await new Promise<void>((r) => blackhole!.listen(0, '127.0.0.1', r));
    const port = (blackhole.address() as { port: number }).port;
    const maxQueueBytes = 1_048_576;
    const { cfg, kafka } = wrappedKafka([`127.0.0.1:${port}`], { maxQueueBytes, maxQueue: 10_000 });
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    await sink.start();
    // Each about 200 KB (the text is in the event twice): five fit in 1 MiB, the rest do not.
    const items = Array.from({ length: 12 }, (_, i) => messageEvent('wa', 'c4', `${i}:`.padEnd(100_000, 'y')));
    for (const item of items) sink.publish(item);
    expect(sink.depth()).toBe(5);
    const full = deadLines();
    expect(full.map((d) => d.reason)).toEqual(Array(7).fill('queue_full'));
    expect(full[0].error).toBe(`kafka queue full (${maxQueueBytes} bytes)`);
    expect(full.map((d) => d.event.id)).toEqual(items.slice(5).map((i) => i.event.id));

    await sink.stop(0);
    sink = undefined;
    const all = deadLines();
    expect(all.filter((d) => d.reason === 'shutdown').map((d) => d.event.id)).toEqual(items.slice(0, 5).map((i) => i.event.id));
    expect(new Set(all.map((d) => d.event.id)).size).toBe(12);
    // Read back whole: the record's value is the event's data.
    expect(all[0].event).toEqual(JSON.parse(JSON.stringify(items[5].event)));
  });

  it('in structured mode, what is still queued at shutdown reaches the file as the same events', async () => {
    blackhole = createServer((s) => s.destroy());
    await new Promise<void>((r) => blackhole!.listen(0, '127.0.0.1', r));
    const port = (blackhole.address() as { port: number }).port;
    const { cfg, kafka } = wrappedKafka([`127.0.0.1:${port}`], { cloudEventsMode: 'structured' });
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    await sink.start();
    const items = Array.from({ length: 3 }, (_, i) => messageEvent('wa', 'c6', `q${i}`));
    for (const item of items) sink.publish(item);
    await sink.stop(0);
    sink = undefined;
    expect(deadLines().map((d) => [d.reason, d.event])).toEqual(items.map((i) => ['shutdown', JSON.parse(JSON.stringify(i.event))]));
  });

  it('on stop, does not wait for a send the broker never answers: the batch in flight and the rest go to the file', async () => {
    broker = await startTestBroker({ brokers: 1 });
    const { cfg, kafka, calls } = wrappedKafka(broker.bootstrap, {});
    reader = new KafkaReader(broker.bootstrap, [cfg.topics.events]);
    await reader.start();
    sink = new KafkaSink(kafka, cfg, deadLetters, metrics, log);
    await sink.start();
    const first = messageEvent('wa', 'c5', 'before');
    sink.publish(first);
    await reader.waitFor('the first record', (r) => r.length >= 1);
    await reader.stop();
    reader = undefined;
    // From now on the broker answers after 20 s: the next produce request stays in flight.
    await broker.setRtt(20_000);
    const items = Array.from({ length: 50 }, (_, i) => messageEvent('wa', 'c5', `s${i}`));
    for (const item of items) sink.publish(item);
    await waitFor('a send in flight', () => calls.some((c) => c.outcome === 'pending' && c.messages.length > 0));
    const inFlight = calls.find((c) => c.outcome === 'pending')!;

    await sink.stop(300);
    sink = undefined;
    // Stop returned while the broker still had not answered.
    expect(inFlight.outcome).toBe('pending');
    const dead = deadLines();
    expect(dead.map((d) => d.event.id)).toEqual(items.map((i) => i.event.id));
    expect(new Set(dead.map((d) => d.reason))).toEqual(new Set(['shutdown']));
    expect(inFlight.messages.map(idOf).every((id) => dead.some((d) => d.event.id === id))).toBe(true);
  });
});
