import type { Kafka, Producer, ProducerRecord } from 'kafkajs';
import pino from 'pino';
import { CommandForwarder, FORWARDED_HEADER } from '../../src/cluster/command-forwarder';
import { KafkaConfig, KafkaTopicsConfig } from '../../src/config/config.schema';
import { createKafka } from '../../src/kafka/client';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';

/**
 * The command forwarder on the test broker: commands forwarded together share one send (group commit: a produce
 * request per partition leader) instead of one awaited send each, and every one lands keyed, in order per key, marked as forwarded.
 */
describe('CommandForwarder (real test broker)', () => {
  let forwarder: CommandForwarder | undefined;
  let reader: KafkaReader | undefined;

  afterEach(async () => {
    await forwarder?.stop();
    await reader?.stop();
    forwarder = reader = undefined;
  });

  /** The real client, its producers' sends recorded (how many records each request carried). */
  function countedKafka(): { kafka: Kafka; sends: number[] } {
    const cfg = Object.assign(new KafkaConfig(), { brokers: sharedBrokers(), connectionTimeoutMs: 1000, topics: new KafkaTopicsConfig() });
    const real = createKafka(cfg, pino({ level: 'silent' }));
    const sends: number[] = [];
    const kafka = {
      producer: (opts: Parameters<Kafka['producer']>[0]): Producer => {
        const p = real.producer(opts);
        return { ...p, send: (record: ProducerRecord) => (sends.push(record.messages.length), p.send(record)) };
      },
    } as unknown as Kafka;
    return { kafka, sends };
  }

  it('sends the commands forwarded in one turn in one send; each lands keyed, in order per key, with its door', async () => {
    const topic = uniqueTopic('fw-group');
    const { kafka, sends } = countedKafka();
    forwarder = new CommandForwarder(kafka, topic, 10_000);
    reader = new KafkaReader(sharedBrokers(), [topic]);
    await reader.start();

    const keys = ['wa', 'wa/c-2', 'tg', 'ss'];
    const forwards = Array.from({ length: 40 }, (_, i) => forwarder!.forward(keys[i % 4], keys[i % 4].split('/')[0], { commandId: `fw-${i}`, type: 'message.send', conversationId: 'c-1', text: `n${i}` }, i % 2 ? 'http' : 'socket.io'));
    await Promise.all(forwards);
    expect(sends).toEqual([40]);

    await reader.waitFor('40 forwarded commands', (r) => r.length >= 40);
    for (const key of keys) {
      const mine = reader.records.filter((r) => r.key === key);
      expect(mine.map((r) => (JSON.parse(r.value ?? '{}') as { commandId: string }).commandId)).toEqual(Array.from({ length: 10 }, (_, j) => `fw-${keys.indexOf(key) + 4 * j}`));
      expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
    }
    expect(reader.records.find((r) => r.key === 'wa')).toMatchObject({ headers: { [FORWARDED_HEADER]: 'socket.io' }, value: expect.stringContaining('"channelId":"wa"') });
    expect(reader.records.find((r) => r.key === 'wa/c-2')).toMatchObject({ headers: { [FORWARDED_HEADER]: 'http' } });
  });
});
