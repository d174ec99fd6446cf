import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompressionTypes, Kafka, logLevel, type Producer } from 'kafkajs';
import { toKafkaMessage } from '../../src/sinks/kafka/kafka.record';
import type { BridgeProcess } from '../helpers/bridge-process';
import { metricValue } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { messageEvent, newSecret, ReceiverPool } from '../helpers/webhook-receiver';
import { expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

/**
 * Hostile records for the Kafka consumers (on the shared consumer runner), against the built bridge and the test
 * broker, through the webhook source of `topics.events` (the command door no longer has a record that makes its
 * handler throw: its parsing and validation are total):
 * (a) a poison record, one whose handling throws (a chatbridge event whose `data` is nested 20,000 deep: it parses,
 *     but serializing it for the webhook overflows the stack), costs its tries and one dead letter with the original
 *     record and where it was; the event after it on the same partition is delivered;
 * (b) one event the receiver answers 500 for a long time while 20,000 others flow: the partition's offset tracker
 *     stops at `kafka.consumer.webhookMaxOpenOffsets` (the partition pauses), memory stays flat, and everything is
 *     delivered once the stuck event goes through.
 */
describe('fault rows: Kafka consumers', () => {
  const RSS_BOUND_MIB = 300;
  /** Row (b) once the backlog behind the pause is delivered at once (see there). */
  const RSS_AFTER_BACKLOG_MIB = 400;
  const CONSUMER = { maxWaitTimeMs: 100, sessionTimeoutMs: 6000, commitIntervalMs: 100 };
  const receivers = new ReceiverPool();
  let producer: Producer;
  let bridge: BridgeProcess | undefined;
  let reader: KafkaReader | undefined;

  beforeAll(async () => {
    producer = new Kafka({ clientId: 'faults-consumers', brokers: sharedBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
  });

  afterEach(async () => {
    await bridge?.kill();
    bridge = undefined;
    await reader?.stop();
    reader = undefined;
    await receivers.stopAll();
  });

  afterAll(async () => {
    await producer.disconnect();
  });

  /** The process's V8 heap in use (MiB), from its own /metrics. */
  const heapMiB = async (b: BridgeProcess) => Math.round(metricValue(await (await fetch(`${b.url}/metrics`)).text(), 'nodejs_heap_size_used_bytes') / 1048576);

  const configOf = (events: string, deadLetter: string, url: string, webhook: Record<string, unknown> = {}, consumer: Record<string, unknown> = {}) => ({
    kafka: { brokers: sharedBrokers(), topics: { events, deadLetter }, consumer: { ...CONSUMER, webhookGroupPrefix: `faults-${randomUUID()}.`, ...consumer } },
    webhooks: [{ id: 'crm', url, secret: newSecret(), startFrom: 'earliest', circuitBreaker: { failures: 10_000 }, ...webhook }],
    deadLetter: { file: join(mkdtempSync(join(tmpdir(), 'faults-consumers-')), 'dead-letter.jsonl') },
  });

  it('(a) a record whose handler throws is dead-lettered whole after its tries; the next one on its partition is delivered', async () => {
    const events = uniqueTopic('events');
    const dlq = uniqueTopic('dlq');
    const receiver = await receivers.start();
    reader = new KafkaReader(sharedBrokers(), [dlq]);
    await reader.start();
    bridge = await startBuiltBridge('faults-consumers-poison', configOf(events, dlq, receiver.url));
    const rssBefore = rssMiB(bridge.pid);

    const LEVELS = 20_000;
    const poison = toKafkaMessage(messageEvent('wa', 'deep', 'poison').event);
    poison.value = `${'{"a":'.repeat(LEVELS)}1${'}'.repeat(LEVELS)}`;
    const poisonId = String(poison.headers?.ce_id);
    const next = messageEvent('wa', 'next', 'after the poison record');
    const t0 = performance.now();
    const [sent] = await producer.send({ topic: events, acks: -1, messages: [{ ...poison, partition: 0 }, { ...toKafkaMessage(next.event), partition: 0 }] });
    const poisonOffset = sent.baseOffset as string;

    await until('the event after the poison record delivered', () => receiver.delivered().some((r) => r.event.id === next.event.id), 30_000);
    const nextMs = Math.round(performance.now() - t0);
    const [letter] = await reader.waitFor('the poison record in the dead-letter topic', (r) => r.some((x) => x.headers.dlq_reason === 'poison_record'));
    expect(letter.headers).toMatchObject({ dlq_reason: 'poison_record', dlq_origin: 'crm', dlq_topic: events, dlq_partition: '0', dlq_offset: poisonOffset, dlq_attempts: '3', ce_id: poisonId });
    expect(letter.headers.dlq_error).toContain('Maximum call stack size exceeded');
    expect(letter.value).toBe(poison.value); // the original bytes
    const healthzMs = await expectHealthy(bridge);
    const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
    expect(metricValue(metrics, 'chatbridge_refused_total', { origin: 'consumer', reason: 'poison_record' })).toBe(1);
    expect(receiver.delivered().some((r) => r.event.id === poisonId)).toBe(false);
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('kafka poison record (webhook source, 20,000-deep event data)', { tries: letter.headers.dlq_attempts, dlqAt: `partition ${letter.headers.dlq_partition} offset ${letter.headers.dlq_offset}`, nextDeliveredMs: nextMs, healthzMs: Math.round(healthzMs), rssBeforeMiB: rssBefore, rssMiB: rss });
  }, 90_000);

  it('(b) one event failing 500 for a long time while 20,000 others flow: the partition pauses at the open-offset bound, memory stays flat', async () => {
    const events = uniqueTopic('events');
    const receiver = await receivers.start();
    const OTHERS = 20_000;
    const BOUND = 10_000; // kafka.consumer.webhookMaxOpenOffsets default
    const stuck = messageEvent('wa', 'stuck', 'answered 500 for a long time');
    let released = false;
    receiver.respond((req) => (req.event.id === stuck.event.id && !released ? { status: 500 } : { status: 204 }));
    // One retry every 20 s: the stuck event is in the endpoint's retry schedule, not failing fast.
    bridge = await startBuiltBridge('faults-consumers-open-offsets', configOf(events, uniqueTopic('dlq'), receiver.url, { retrySchedule: [0, ...Array(10).fill(20_000)] }));
    const rssBefore = rssMiB(bridge.pid);
    const heapBefore = await heapMiB(bridge);

    await producer.send({ topic: events, acks: -1, messages: [{ ...toKafkaMessage(stuck.event), partition: 0 }] });
    await until('the stuck event answered 500', () => receiver.requests.some((r) => r.event.id === stuck.event.id), 30_000);
    for (let i = 0; i < OTHERS; i += 1000) {
      // 50 conversations: other keys than the stuck one, so the endpoint's per-key lanes do not hold them back.
      const batch = Array.from({ length: 1000 }, (_, j) => ({ ...toKafkaMessage(messageEvent('wa', `c${(i + j) % 50}`, `n${i + j}`).event), partition: 0 }));
      // Gzipped: the test broker (librdkafka's mock cluster) keeps at most 5 MiB of record batches per partition
      // and deletes the oldest past it. Uncompressed, 20,000 events (~0.6 KB each since they carry ce_dataschema)
      // are ~12 MB, so the records behind the pause point were gone by the time the partition resumed (offset out
      // of range: the consumer reset to the log start and skipped them). Compressed they take a few hundred KB.
      await producer.send({ topic: events, acks: -1, compression: CompressionTypes.GZIP, messages: batch });
    }

    const paused = await until('the partition paused at the bound', () => bridge?.logs.find((l) => String(l.msg).startsWith('webhook partition paused')), 60_000);
    // The events taken before the pause (all but the stuck one) are delivered; then nothing more is fetched while the
    // stuck event retries.
    await until('the events taken before the pause delivered', () => receiver.delivered().length === BOUND - 1, 60_000);
    const rssPaused = rssMiB(bridge.pid);
    const heapPaused = await heapMiB(bridge);
    await new Promise((r) => setTimeout(r, 3000));
    const heldDelivered = receiver.delivered().length;
    expect(heldDelivered).toBe(BOUND - 1);
    expect(paused.open).toBe(BOUND);
    const rssHeld = rssMiB(bridge.pid);
    const healthzMs = await expectHealthy(bridge);

    released = true;
    await until('every event delivered once the stuck one went through', () => receiver.delivered().length >= OTHERS + 1, 120_000);
    expect(bridge.logs.some((l) => l.msg === 'webhook partition resumed')).toBe(true);
    const rssAfter = rssMiB(bridge.pid);
    const heapAfter = await heapMiB(bridge);
    // Flat while the partition waits: held for as long as the stuck event retries, memory does not grow.
    expect(Math.max(rssPaused, rssHeld)).toBeLessThan(RSS_BOUND_MIB);
    // Then the 10,000 events behind the pause are fetched and delivered at once: a transient peak (230-306 MiB RSS
    // on Node 24 on the 2-core machine, with 53-149 MiB of heap, depending on when the last collection ran), bounded
    // in turn, well under the chart's 512 MiB limit.
    expect(rssAfter).toBeLessThan(RSS_AFTER_BACKLOG_MIB);
    await expectHealthy(bridge);
    report('webhook event failing 500 while 20,000 others flow', {
      openAtPause: paused.open as number, deliveredWhilePaused: heldDelivered, deliveredAll: receiver.delivered().length, healthzMs: Math.round(healthzMs),
      rssBeforeMiB: rssBefore, rssPausedMiB: rssPaused, rssHeld3sMiB: rssHeld, rssAfterMiB: rssAfter, rssAfterBoundMiB: RSS_AFTER_BACKLOG_MIB, heapBeforeMiB: heapBefore, heapPausedMiB: heapPaused, heapAfterMiB: heapAfter,
    });
  }, 240_000);
});
