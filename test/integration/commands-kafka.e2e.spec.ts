import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { createRootLogger } from '../../src/common/logger';
import type { CommandRecord } from '../../src/commands/command.types';
import { KafkaLedgerStore } from '../../src/commands/kafka/ledger-store.kafka';
import { KafkaConsumerConfig } from '../../src/config/config.schema';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';

/**
 * The Kafka door of the command gateway (records of `topics.commands` → the upstream, once) and the command ledger
 * in its compacted topic (idempotency across restarts), against the shared test broker and the Watchers simulator.
 */
describe('Kafka command door and ledger (e2e)', () => {
  const ROOM = '144444';
  const BOT = 'bot-1';
  let sim: WatchersSimulator;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;
  let producer: Producer | undefined;

  beforeEach(async () => {
    sim = new WatchersSimulator({ bots: [BOT] });
    await sim.start();
  });

  afterEach(async () => {
    await bridge?.close();
    await reader?.stop();
    await producer?.disconnect();
    await sim.stop();
    bridge = undefined;
    reader = undefined;
    producer = undefined;
  });

  const topicsOf = () => ({ events: uniqueTopic('events'), commands: uniqueTopic('commands'), deadLetter: uniqueTopic('dlq'), commandLedger: uniqueTopic('ledger') });
  const configOf = (topics: ReturnType<typeof topicsOf>) => ({
    kafka: { brokers: sharedBrokers(), topics, consumer: { commandGroup: `commands-${randomUUID()}`, maxWaitTimeMs: 100, sessionTimeoutMs: 6000 } },
    channels: [{ id: 'bot-eu', provider: 'watchers', watchers: { url: sim.url, bearer: sim.bearerFor(BOT), apiKey: sim.apiKey, userId: BOT, rooms: [ROOM], connectTimeoutMs: 2000 } }],
  });
  const send = (commandId: string, text: string) => ({ commandId, type: 'message.send', conversationId: ROOM, text });
  const produce = async (topic: string, ...records: Array<{ key: string | null; value: string }>) => {
    producer ??= new Kafka({ clientId: 'test-commands', brokers: sharedBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: records });
  };
  const sends = () => sim.emitsOf('external/send').map((e) => e.payload);
  const resultsOf = (records: ReadRecord[], commandId: string) =>
    records.filter((r) => r.headers.ce_type === 'chatbridge.command.result').map((r) => (JSON.parse(r.value!) as { command: { commandId: string; status: string } }).command).filter((c) => c.commandId === commandId);
  const metrics = async () => (await bridge!.get('/metrics')).text;

  it('executes a command record once, dead-letters bad records without blocking, and a restarted group does not execute it again', async () => {
    const topics = topicsOf();
    const config = configOf(topics);
    reader = new KafkaReader(sharedBrokers(), [topics.events, topics.deadLetter]);
    const readerStarted = reader.start();
    bridge = await startTestBridge(config);
    await readerStarted;

    const commandOne = JSON.stringify(send('k-1', 'Hello from Kafka'));
    // One channel key, one partition: the good record is read after the three bad ones.
    await produce(topics.commands,
      { key: 'bot-eu', value: 'send "hi" to 144444' },
      { key: 'bot-eu', value: JSON.stringify({ ...send('k-bad', 'x'), channelId: 'bot-us' }) },
      { key: 'bot-eu', value: JSON.stringify({ commandId: 'k-typing', type: 'typing', conversationId: ROOM }) },
      { key: 'bot-eu', value: commandOne });

    await sim.waitUntil('the external/send of k-1', () => sends().length >= 1, 20_000);
    expect(sends()).toEqual([{ roomId: ROOM, apiKey: sim.apiKey, userId: BOT, text: 'Hello from Kafka' }]);
    await reader.waitFor('the sent result of k-1', (r) => resultsOf(r, 'k-1').length >= 1);
    expect(resultsOf(reader.records, 'k-1')).toEqual([expect.objectContaining({ commandId: 'k-1', status: 'sent', attempts: 1 })]);
    expect((await bridge.get('/v1/commands/k-1')).body).toMatchObject({ commandId: 'k-1', channelId: 'bot-eu', status: 'sent', attempts: 1 });

    const dlq = await reader.waitFor('three dead-lettered records', (r) => r.filter((x) => x.topic === topics.deadLetter).length >= 3);
    const dead = dlq.filter((x) => x.topic === topics.deadLetter).sort((a, b) => Number(a.offset) - Number(b.offset));
    expect(dead.map((d) => d.headers)).toEqual([
      expect.objectContaining({ dlq_reason: 'invalid_command', dlq_origin: 'kafka-commands', dlq_channelid: 'bot-eu', dlq_status: '400', dlq_error: expect.stringContaining('value is not JSON') }),
      expect.objectContaining({ dlq_reason: 'invalid_command', dlq_status: '400', dlq_error: expect.stringContaining('channelId: "bot-us" differs from the channel of the request ("bot-eu")') }),
      expect.objectContaining({ dlq_reason: 'invalid_command', dlq_status: '422', dlq_error: expect.stringContaining('provider watchers (channel bot-eu) does not support command type "typing"') }),
    ]);
    // The original record travels with it, so it can be fixed and produced again.
    expect(dead[0].value).toBe('send "hi" to 144444');
    expect(dead[0].key).toBe('bot-eu');
    expect(dead[0].headers).toMatchObject({ dlq_topic: topics.commands, dlq_partition: expect.stringMatching(/^\d+$/), dlq_offset: expect.stringMatching(/^\d+$/) });
    expect(metricValue(await metrics(), 'chatbridge_kafka_commands_total', { outcome: 'accepted' })).toBe(1);
    expect(metricValue(await metrics(), 'chatbridge_kafka_commands_total', { outcome: 'invalid' })).toBe(3);
    await bridge.close();

    // Same group, same ledger topic, fresh process state: nothing already committed is read again, and the
    // re-produced k-1 is answered from the ledger. k-2 after it shows the door has read past it.
    bridge = await startTestBridge(config);
    await produce(topics.commands, { key: 'bot-eu', value: commandOne }, { key: 'bot-eu', value: JSON.stringify(send('k-2', 'Second')) });
    await reader.waitFor('the sent result of k-2', (r) => resultsOf(r, 'k-2').length >= 1, 30_000);
    expect(sends().map((s) => (s as { text: string }).text)).toEqual(['Hello from Kafka', 'Second']);
    const text = await metrics();
    expect(metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'duplicate' })).toBe(1);
    expect(metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'accepted' })).toBe(1);
    expect(metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'invalid' })).toBe(0);
    expect(resultsOf(reader.records, 'k-1')).toHaveLength(1);
  }, 60_000);

  it('a record refused for now (channel busy, 503) stays in Kafka and is executed once the channel has room', async () => {
    const topics = topicsOf();
    const base = configOf(topics);
    const config = { ...base, commands: { maxPendingPerChannel: 1, echoTimeoutMs: 1000 }, channels: [{ ...base.channels[0], watchers: { ...base.channels[0].watchers, ackTimeoutMs: 1000 } }] };
    reader = new KafkaReader(sharedBrokers(), [topics.events, topics.deadLetter]);
    const readerStarted = reader.start();
    bridge = await startTestBridge(config);
    await readerStarted;
    // b-1 is posted but never acked: it holds the channel's only slot until its echo settles it.
    sim.withholdNextSendAcks(1);
    await produce(topics.commands, { key: 'bot-eu', value: JSON.stringify(send('b-1', 'First')) }, { key: 'bot-eu', value: JSON.stringify(send('b-2', 'Second')) });

    await reader.waitFor('the result of b-2', (r) => resultsOf(r, 'b-2').length >= 1, 30_000);
    expect(resultsOf(reader.records, 'b-2')).toEqual([expect.objectContaining({ status: 'sent', attempts: 1 })]);
    expect(sends().map((s) => (s as { text: string }).text)).toEqual(['First', 'Second']);
    const text = await metrics();
    expect(metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'retried' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'accepted' })).toBe(2);
    expect(metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'invalid' })).toBe(0);
    expect(reader.records.filter((r) => r.topic === topics.deadLetter)).toEqual([]);
  }, 40_000);

  it('a command accepted by one bridge is a duplicate with its stored result for the next one, and its id cannot be reused', async () => {
    const config = configOf(topicsOf());
    bridge = await startTestBridge(config);
    expect(await bridge.bridge.commands.submit(send('s-1', 'Once only'), { door: 'http', channelId: 'bot-eu' })).toEqual({ commandId: 's-1', channelId: 'bot-eu', status: 'accepted', duplicate: false });
    await waitFor('s-1 sent', () => bridge!.bridge.commands.get('s-1')?.status === 'sent');
    await bridge.close();

    bridge = await startTestBridge(config);
    // The ledger is the configured topic: s-1's sent record is there, and the restarted bridge answers from it.
    reader = new KafkaReader(sharedBrokers(), [config.kafka.topics.commandLedger]);
    await reader.start();
    await reader.waitFor('the sent record of s-1 in the ledger topic', (r) => r.some((x) => x.key === 's-1' && x.value !== null && (JSON.parse(x.value) as { status?: string }).status === 'sent'));
    expect(await bridge.bridge.commands.submit(send('s-1', 'Once only'), { door: 'socket.io', channelId: 'bot-eu' })).toEqual({ commandId: 's-1', channelId: 'bot-eu', status: 'sent', duplicate: true });
    expect(bridge.bridge.commands.get('s-1')).toMatchObject({ status: 'sent', attempts: 1 });
    await expect(bridge.bridge.commands.submit(send('s-1', 'Another text'), { door: 'http', channelId: 'bot-eu' })).rejects.toMatchObject({ code: 'id_conflict', status: 409 });
    expect(sends()).toEqual([{ roomId: ROOM, apiKey: sim.apiKey, userId: BOT, text: 'Once only' }]);
  }, 40_000);
});

describe('KafkaLedgerStore (e2e, test broker)', () => {
  const stores: KafkaLedgerStore[] = [];
  let broker: TestBroker | undefined;
  let producer: Producer | undefined;

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
    await producer?.disconnect();
    await broker?.stop();
    producer = undefined;
    broker = undefined;
  });

  const at = '2024-05-01T10:00:00.000Z';
  const record = (commandId: string, status: CommandRecord['status'] = 'accepted'): CommandRecord => ({
    commandId, channelId: 'bot-eu', type: 'message.send', status, attempts: status === 'accepted' ? 0 : 1, fingerprint: 'f1', door: 'kafka', acceptedAt: at, updatedAt: at,
  });
  const storeOn = (brokers: string[], topic: string, lines: string[] = [], timeouts = { loadTimeoutMs: 10_000, writeTimeoutMs: 5000 }) => {
    const kafka = new Kafka({ clientId: 'ledger-test', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 500, requestTimeout: 1000, retry: { retries: 1 } });
    const consumer = Object.assign(new KafkaConsumerConfig(), { maxWaitTimeMs: 100, sessionTimeoutMs: 6000 });
    const log = createRootLogger('warn', { write: (line: string) => void lines.push(line) });
    const store = new KafkaLedgerStore(kafka, { topic, group: `ledger-test-${randomUUID()}`, consumer, ...timeouts }, log);
    stores.push(store);
    return store;
  };

  it('loads what was written (last state per command), skips malformed records with a warning, and follows other writers', async () => {
    const topic = uniqueTopic('ledger');
    const writer = storeOn(sharedBrokers(), topic);
    await writer.write(record('c-1'));
    await writer.write(record('c-1', 'sent'));
    producer = new Kafka({ clientId: 'ledger-test', brokers: sharedBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'c-bad', value: 'not json' }, { key: 'c-other', value: JSON.stringify(record('c-2')) }, { key: 'c-gone', value: null }] });

    const lines: string[] = [];
    const reader = storeOn(sharedBrokers(), topic, lines);
    const loaded: CommandRecord[] = [];
    await reader.load((r) => loaded.push(r));
    expect(loaded).toEqual([record('c-1'), record('c-1', 'sent')]);
    expect(lines.some((l) => l.includes('2 malformed record(s) of the command ledger skipped'))).toBe(true);
    expect(lines.some((l) => l.includes('ledger record c-other skipped: commandId: \\"c-2\\" differs from the record key \\"c-other\\"'))).toBe(true);

    // It goes on following: another writer's record reaches the same callback.
    await writer.write(record('c-3'));
    await waitFor('the follower to see c-3', () => loaded.some((r) => r.commandId === 'c-3'), 20_000);
  }, 30_000);

  it('a write Kafka does not acknowledge is rejected within its bound; writes work again when Kafka is back', async () => {
    broker = await startTestBroker({ brokers: 1, topics: [{ name: 'ledger', partitions: 1 }] });
    const store = storeOn(broker.bootstrap, 'ledger', [], { loadTimeoutMs: 2000, writeTimeoutMs: 1500 });
    await store.write(record('c-1'));
    await broker.setRtt(4000);
    await expect(store.write(record('c-slow'))).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.stringContaining('not acknowledged within 1500 ms') });
    await broker.setRtt(0);
    await broker.down();
    await expect(store.write(record('c-2'))).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.stringContaining('command ledger (topic ledger) write failed') });
    await expect(store.load(() => undefined)).rejects.toMatchObject({ code: 'topic_unreadable' });
    await broker.up();
    await waitFor('a write to pass again', () => store.write(record('c-3')).then(() => true, () => false), 15_000, 200);
  }, 30_000);
});
