import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { Socket } from 'socket.io-client';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { connectRawClient, deepCommandJson, rawJson } from '../helpers/deep-json';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';

/**
 * Command size and depth limits on every door (real HTTP, a real socket.io client, the test broker): a command nested
 * 5,000 deep is a 400 naming the field and `commands.maxDepth` (never a 500, never a Kafka record offered again
 * forever), one over `api.maxBodyBytes` a 413, and the normal command after each is sent upstream.
 */
describe('command limits on every door (e2e)', () => {
  const CONTACT = '5511987654321';
  const MAX_BYTES = 64 * 1024;
  const DEPTH_DETAIL = 'metadata: nested deeper than 32 levels (commands.maxDepth; the command itself is level 1)';
  let zap: ZapThinkerSimulator;
  let bridge: TestBridge;
  let socket: Socket;
  let producer: Producer;
  let reader: KafkaReader;
  const topics = { events: uniqueTopic('events'), commands: uniqueTopic('commands'), deadLetter: uniqueTopic('dlq'), commandLedger: uniqueTopic('ledger') };

  beforeAll(async () => {
    zap = new ZapThinkerSimulator({ instances: { sales: { token: 'zap-token-0123' } } });
    await zap.start();
    zap.touch('sales');
    reader = new KafkaReader(sharedBrokers(), [topics.deadLetter]);
    const readerStarted = reader.start();
    bridge = await startTestBridge({
      kafka: { brokers: sharedBrokers(), topics, consumer: { commandGroup: `limits-${randomUUID()}`, maxWaitTimeMs: 100, sessionTimeoutMs: 6000 } },
      api: { maxBodyBytes: MAX_BYTES, rateLimit: { perSecond: 1000, burst: 1000 } },
      channels: [{ id: 'wa', provider: 'zapthinker', zapthinker: { url: zap.url.replace(/^http/, 'ws'), instance: 'sales', apiKey: 'zap-token-0123' } }],
    });
    await readerStarted;
    await waitFor('wa connected', async () => ((await bridge.get('/v1/channels/wa')).body as { state: string }).state === 'connected', 15_000);
    socket = await connectRawClient(bridge.url, TEST_TOKEN);
    producer = new Kafka({ clientId: 'limits-spec', brokers: sharedBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
  }, 40_000);

  afterAll(async () => {
    socket?.close();
    await producer?.disconnect();
    await reader?.stop();
    await bridge?.close();
    await zap.stop();
  });

  const send = (text: string) => ({ commandId: randomUUID(), type: 'message.send', conversationId: CONTACT, text });
  const post = async (text: string) => {
    const res = await fetch(`${bridge.url}/v1/channels/wa/commands`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: text });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const sentTexts = () => zap.requests.filter((r) => r.path === '/message/sendText/sales').map((r) => (r.body as { text: string }).text);
  const deadLetters = () => reader.records.filter((r) => r.topic === topics.deadLetter);

  it('HTTP: a command nested 5,000 deep is a 400 naming the field and the limit, one over api.maxBodyBytes a 413; the next one is sent', async () => {
    const deep = await post(deepCommandJson(send('deep'), 5000));
    expect(deep).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message: 'invalid command', details: [DEPTH_DETAIL] } });
    const big = await post(JSON.stringify(send('x'.repeat(MAX_BYTES))));
    expect(big).toEqual({ status: 413, body: { statusCode: 413, error: 'Payload Too Large', message: `request body larger than the API limit of ${MAX_BYTES} bytes (api.maxBodyBytes)` } });

    expect(await post(JSON.stringify(send('after the deep one (http)')))).toMatchObject({ status: 202, body: { status: 'accepted' } });
    await waitFor('the http command upstream', () => sentTexts().includes('after the deep one (http)'), 15_000);
    expect(sentTexts()).not.toContain('deep');
  });

  it('socket.io: the same refusals are acked with the error JSON (400 with the field, 413 command_too_large); the next one is sent', async () => {
    const deep = await socket.timeout(5000).emitWithAck('command', rawJson(deepCommandJson({ ...send('deep'), channelId: 'wa' }, 5000)));
    expect(deep).toEqual({ error: { statusCode: 400, error: 'Bad Request', message: 'invalid command', details: [DEPTH_DETAIL] } });
    const big = await socket.timeout(5000).emitWithAck('command', { ...send('x'.repeat(MAX_BYTES)), channelId: 'wa' });
    expect(big).toEqual({ error: { statusCode: 413, error: 'Payload Too Large', message: `command larger than the API limit of ${MAX_BYTES} bytes (api.maxBodyBytes)` } });

    expect(await socket.timeout(5000).emitWithAck('command', { ...send('after the deep one (socket.io)'), channelId: 'wa' })).toMatchObject({ status: 'accepted' });
    await waitFor('the socket.io command upstream', () => sentTexts().includes('after the deep one (socket.io)'), 15_000);
    expect(sentTexts()).not.toContain('deep');
  });

  it('Kafka: the deep record is dead-lettered (400) and the too large one (413), once each, and the record behind them on the partition runs', async () => {
    const deepRecord = deepCommandJson(send('deep'), 5000);
    await producer.send({
      topic: topics.commands,
      messages: [
        { key: 'wa', value: deepRecord },
        { key: 'wa', value: JSON.stringify(send('y'.repeat(MAX_BYTES))) },
        { key: 'wa', value: JSON.stringify(send('after the deep one (kafka)')) },
      ],
    });
    await waitFor('the kafka command upstream', () => sentTexts().includes('after the deep one (kafka)'), 20_000);
    await reader.waitFor('two dead letters', () => deadLetters().length >= 2);
    const dead = deadLetters().sort((a, b) => Number(a.offset) - Number(b.offset));
    expect(dead.map((d) => d.headers)).toEqual([
      expect.objectContaining({ dlq_reason: 'invalid_command', dlq_origin: 'kafka-commands', dlq_status: '400', dlq_error: `invalid_command: invalid command (${DEPTH_DETAIL})` }),
      expect.objectContaining({ dlq_reason: 'invalid_command', dlq_origin: 'kafka-commands', dlq_status: '413', dlq_error: `command_too_large: command larger than the API limit of ${MAX_BYTES} bytes (api.maxBodyBytes)` }),
    ]);
    // The original value travels with the dead letter, whole.
    expect(dead[0].value).toBe(deepRecord);
    const metrics = (await bridge.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_kafka_commands_total', { outcome: 'retried' })).toBe(0);
    expect(metricValue(metrics, 'chatbridge_refused_total', { origin: 'command', reason: 'too_deep' })).toBe(3);
    expect(metricValue(metrics, 'chatbridge_refused_total', { origin: 'command', reason: 'too_large' })).toBe(2);
    expect(sentTexts()).not.toContain('deep');
  });
});
