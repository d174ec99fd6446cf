import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { SharedState } from '../../src/cluster/shared-state';
import { encodeModeRecord, type ModeRecord } from '../../src/channels/mode-store';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { waitFor } from '../helpers/bridge-harness';

const TOPIC = 'ss.state';
const CONSUMER = { maxWaitTimeMs: 100, sessionTimeoutMs: 10_000 };

/**
 * The state topic as every replica follows it (cluster mode), against the test broker: spread-conversation records
 * written at one replica reach the others; a replica starting later reads the history before it counts as ready;
 * mode records arrive as the history's latest per channel, then one by one; writes survive a broker outage.
 */
describe('SharedState: the state topic followed by every replica', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  const states: SharedState[] = [];

  const start = (name: string): SharedState => {
    const s = new SharedState(kafka, { topic: TOPIC, group: `shared-${name}`, consumer: CONSUMER as never }, pino({ level: 'silent' }));
    states.push(s);
    s.start();
    return s;
  };

  beforeAll(async () => {
    broker = await startTestBroker({ brokers: 1, topics: [{ name: TOPIC, partitions: 1 }] });
    kafka = new Kafka({ brokers: broker.bootstrap, clientId: 'shared-state-test', logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    // History: two switches of one channel, one of another, and a record that is neither kind of key.
    await producer.send({ topic: TOPIC, messages: [
      { key: 'wa', value: encodeModeRecord('webhook') }, { key: 'hub', value: encodeModeRecord('webhook') },
      { key: 'wa', value: encodeModeRecord('socket') }, { key: 'wa/unknown/x', value: '{}' },
    ] });
    await producer.disconnect();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(states.map((s) => s.stop(1000)));
    await broker?.stop();
  });

  it('shares conversation records and mode switches between replicas, history first', async () => {
    const a = start('a');
    const modesA: Array<[string, ModeRecord | null]> = [];
    a.onMode((id, r) => modesA.push([id, r]));
    expect(await a.ready(20_000)).toBe(true);
    // The history arrives folded: the latest record per channel, once.
    await waitFor('history modes', () => modesA.length === 2 || undefined, 5000);
    expect(modesA.map(([id, r]) => [id, r?.mode])).toEqual([['wa', 'socket'], ['hub', 'webhook']]);

    const site = a.registry('site');
    const seenAtA: Array<[string, unknown]> = [];
    site.watch((id, v) => seenAtA.push([id, v]));
    site.save('v-1', { chatId: 'c-1' });
    site.save('v-2', { chatId: 'c-2' });
    site.save('v-1', { chatId: 'c-1', since: '2026-01-01T00:00:00.000Z' });
    // A replica's own writes come back through the topic.
    await waitFor('own records back', () => site.all().get('v-1') && (site.all().get('v-1') as { since?: string }).since ? true : undefined, 10_000);
    expect([...site.all()]).toEqual([['v-1', { chatId: 'c-1', since: '2026-01-01T00:00:00.000Z' }], ['v-2', { chatId: 'c-2' }]]);

    // A replica starting now is ready only once it has read all that, and then sees new records live.
    const b = start('b');
    expect(await b.ready(20_000)).toBe(true);
    const siteAtB = b.registry('site');
    expect([...siteAtB.all()].sort()).toEqual([...site.all()].sort());
    expect(b.registry('other').all().size).toBe(0);
    const live: Array<[string, unknown]> = [];
    siteAtB.watch((id, v) => live.push([id, v]));
    site.save('v-2', null);
    await waitFor('removal seen at b', () => live.some(([id, v]) => id === 'v-2' && v === null) || undefined, 10_000);
    expect(siteAtB.all().has('v-2')).toBe(false);

    // A mode record written now reaches every follower as it comes.
    const modesB: Array<[string, ModeRecord | null]> = [];
    b.onMode((id, r) => modesB.push([id, r]));
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: TOPIC, messages: [{ key: 'hub', value: null }, { key: 'wa', value: 'not json' }] });
    await producer.disconnect();
    await waitFor('tombstone at a and b', () => (modesA.some(([id, r]) => id === 'hub' && r === null) && modesB.some(([id, r]) => id === 'hub' && r === null)) || undefined, 10_000);
    expect(modesA.filter(([id]) => id === 'wa')).toHaveLength(1); // the malformed record is skipped, not delivered
  }, 60_000);

  it('retries a conversation write the broker refused until it lands', async () => {
    const c = start('c');
    expect(await c.ready(20_000)).toBe(true);
    const reg = c.registry('retry');
    await broker.down();
    reg.save('v-9', { chatId: 'c-9' });
    // Longer than the producer's own retries: the write fails and SharedState tries it again with backoff.
    await new Promise((r) => setTimeout(r, 4000));
    await broker.up();
    const d = start('d');
    await waitFor('the record after the outage', () => d.registry('retry').all().has('v-9') || undefined, 40_000, 200);
    expect(d.registry('retry').all().get('v-9')).toEqual({ chatId: 'c-9' });
  }, 90_000);
});
