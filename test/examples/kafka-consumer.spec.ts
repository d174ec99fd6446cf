import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { runConsumer, type ChatbridgeEvent, type RunningConsumer } from '../../examples/kafka-consumer/consumer';
import type { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { GIOVANNA, PEDRO, startZapThinker, textOf } from './zapthinker-channel';

/** examples/kafka-consumer against a bridge publishing to the shared test broker. */
describe('example: Kafka consumer (e2e)', () => {
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;
  let consumer: RunningConsumer | undefined;

  afterEach(async () => {
    await consumer?.stop();
    await bridge?.close();
    await reader?.stop();
    await sim?.stop();
    consumer = bridge = reader = undefined;
  });

  it('receives a conversation in order per key, retries a record whose processing failed, skips a record delivered twice, and commits what it processed', async () => {
    const started = await startZapThinker();
    sim = started.sim;
    const topic = uniqueTopic('example-events');
    const groupId = `example-consumer-${randomUUID()}`;
    // The reader makes sure the topic has its partitions before any group joins, and keeps the raw records.
    reader = new KafkaReader(sharedBrokers(), [topic]);
    await reader.start();
    bridge = await startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events: topic } }, channels: [started.channel] });
    await sim.waitForClients('sales', 1);

    const got: ChatbridgeEvent[] = [];
    const logged: string[] = [];
    // The first try of p2 fails (say, the database is down): it is not committed and comes again.
    let failed = 0;
    const handle = (e: ChatbridgeEvent) => {
      if (textOf(e.data) === 'p2' && failed++ === 0) throw new Error('database down');
      got.push(e);
    };
    // A short fetch wait, as the tests' own reader uses: the test broker answers a fetch late, not when records arrive.
    consumer = await runConsumer({ brokers: sharedBrokers(), topic, groupId, fromBeginning: true, consumer: { maxWaitTimeInMs: 100 }, handle, log: (l) => logged.push(l) });
    const messages = () => got.filter((e) => e.type.startsWith('chatbridge.message.'));
    const textsOf = (jid: string) => messages().filter((e) => e.subject === jid).map((e) => textOf(e.data));

    for (let i = 1; i <= 5; i++) {
      sim.sendMessage('sales', { remoteJid: GIOVANNA, text: `g${i}`, pushName: 'Giovanna' });
      sim.sendMessage('sales', { remoteJid: PEDRO, text: `p${i}`, pushName: 'Pedro' });
    }
    await waitFor('10 messages consumed', () => messages().length === 10, 20_000);
    expect(textsOf(GIOVANNA)).toEqual(['g1', 'g2', 'g3', 'g4', 'g5']);
    expect(textsOf(PEDRO)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect(failed).toBe(2);
    expect(messages().find((e) => e.subject === GIOVANNA)).toMatchObject({ specversion: '1.0', source: '/chatbridge/zapthinker/wa-sales', partitionkey: `wa-sales:${GIOVANNA}`, channelid: 'wa-sales', provider: 'zapthinker' });

    // The producer's at-least-once resend: the very same record (same ce_id) written again to its partition,
    // then the conversation goes on.
    const original = reader.records.find((r) => r.headers.ce_type === 'chatbridge.message.received' && textOf(JSON.parse(r.value!)) === 'g3')!;
    const kafka = new Kafka({ clientId: 'example-test', brokers: sharedBrokers(), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ partition: original.partition, key: original.key, value: original.value, headers: original.headers }] });
    await producer.disconnect();
    await reader.waitFor('the duplicate in the topic', (rs) => rs.filter((r) => r.headers.ce_id === original.headers.ce_id).length === 2);
    sim.sendMessage('sales', { remoteJid: GIOVANNA, text: 'g6', pushName: 'Giovanna' });

    // g6 is behind the duplicate in the same partition: once it is processed, the duplicate was seen and skipped.
    await waitFor('g6 consumed', () => textsOf(GIOVANNA).includes('g6'), 20_000);
    expect(textsOf(GIOVANNA)).toEqual(['g1', 'g2', 'g3', 'g4', 'g5', 'g6']);
    expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
    expect(logged).toContainEqual(expect.stringContaining(`duplicate ${original.headers.ce_id} skipped`));

    // Every record it processed (or skipped) is committed: the group's offsets reach the end of each partition.
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor('offsets committed up to the end', async () => {
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        const ends = await admin.fetchTopicOffsets(topic);
        return ends.every((end) => committed.partitions.find((p) => p.partition === end.partition)?.offset === end.high || end.high === '0');
      });
    } finally {
      await admin.disconnect();
    }
  });
});
