import { existsSync } from 'node:fs';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { messageEvent, newSecret, WebhookReceiver } from '../helpers/webhook-receiver';

/** docs/kafka.md with a real broker: dead letters go to `topics.deadLetter` with the reason in headers; topic creation is optional. */
describe('Kafka dead letters and topic creation (e2e)', () => {
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;
  let receiver: WebhookReceiver | undefined;

  afterEach(async () => {
    await bridge?.close();
    await reader?.stop();
    await receiver?.stop();
    bridge = undefined;
    reader = undefined;
    receiver = undefined;
  });

  it('dead-letters an undeliverable webhook event to topics.deadLetter with reason, origin and status in headers', async () => {
    const events = uniqueTopic('events');
    const dlq = uniqueTopic('dlq');
    receiver = new WebhookReceiver();
    await receiver.start();
    receiver.respond(() => ({ status: 400, body: '{"error":"unknown conversation"}' }));
    reader = new KafkaReader(sharedBrokers(), [dlq]);
    const started = startTestBridge({
      // A group of its own: endpoint ids repeat across specs running at the same time on the shared broker.
      kafka: { brokers: sharedBrokers(), topics: { events, deadLetter: dlq }, consumer: { webhookGroupPrefix: `${events}.webhook.` } },
      webhooks: [{ id: 'crm', url: receiver.url, secret: newSecret(), retrySchedule: [0, 50] }],
    });
    await reader.start();
    bridge = await started;
    await waitFor('kafka up', async () => (await bridge!.get('/readyz', null)).status === 200);

    const item = messageEvent('wa', '5511900000000@s.whatsapp.net', 'refused by the receiver');
    bridge.bridge.pipeline.publish(item);
    const [rec] = await reader.waitFor('dead letter in Kafka', (r) => r.length >= 1);
    expect(rec.headers).toMatchObject({ dlq_reason: 'webhook_rejected', dlq_origin: 'crm', dlq_status: '400', dlq_channelid: 'wa', ce_id: item.event.id });
    expect(rec.headers.dlq_error).toContain('unknown conversation');
    expect(rec.key).toBe(item.event.partitionkey);
    expect(JSON.parse(rec.value!)).toMatchObject({ id: item.event.id, type: 'chatbridge.message.received', data: { message: { text: 'refused by the receiver' } } });
    // It went to Kafka, so the file stays empty.
    expect(existsSync(bridge.deadLetterFile)).toBe(false);
  });

  it('only warns when the broker refuses topic creation (kafka.createTopics: true), and events still flow', async () => {
    const events = uniqueTopic('events');
    const lines: string[] = [];
    reader = new KafkaReader(sharedBrokers(), [events]);
    // Its own command group and topic: another test's bridge joining a shared group would log kafkajs rebalance errors.
    const kafka = { brokers: sharedBrokers(), clientId: uniqueTopic('dl-client'), topics: { events, commands: uniqueTopic('commands') }, createTopics: true };
    const started = startTestBridge({ kafka }, {}, { level: 'warn', lines });
    await reader.start();
    bridge = await started;
    // The test broker (librdkafka's mock cluster) does not implement CreateTopics, like a cluster that forbids it.
    await waitFor('warning logged', () => lines.some((l) => l.includes('could not create Kafka topics')));
    const item = messageEvent('wa', 'c1', 'after the refusal');
    bridge.bridge.pipeline.publish(item);
    await reader.waitFor('event delivered', (r) => r.some((x) => x.headers.ce_id === item.event.id));
    expect((await bridge.get('/readyz', null)).status).toBe(200);
    expect(lines.filter((l) => JSON.parse(l).level === 'error' || JSON.parse(l).level === 'fatal')).toEqual([]);
  });
});
