import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import type { BridgeProcess } from '../helpers/bridge-process';
import { evolutionPost } from '../helpers/inbound-post';
import { KafkaReader } from '../helpers/kafka-reader';
import { expectHealthy, report, rssMiB, startBuiltBridge } from './harness';

/**
 * Inbound webhook mode answers 2xx only once a post's events are in Kafka: against the built bridge and its own test
 * broker (taken down), a post made while Kafka is down is answered 503 (the upstream retries) and its retry after the
 * outage 200; posts made while the bridge stops are each either acknowledged and in Kafka, or refused.
 */
describe('fault suite: inbound posts and Kafka durability', () => {
  const TOKEN = 'inbound-token-0123456789';
  const EVENTS = 'faults-inbound-durable';
  const ACK_TIMEOUT_MS = 1500;
  let broker: TestBroker;
  let reader: KafkaReader;
  let bridge: BridgeProcess;
  let seq = 0;

  beforeEach(async () => {
    broker = await startTestBroker({ brokers: 1, topics: [{ name: EVENTS, partitions: 2 }] });
    reader = new KafkaReader(broker.bootstrap, [EVENTS]);
    await reader.start();
    bridge = await startBuiltBridge('inbound-durable', {
      kafka: { brokers: broker.bootstrap, topics: { events: EVENTS }, connectionTimeoutMs: 500, producer: { requestTimeoutMs: 1000, retryMaxDelayMs: 300 } },
      channels: [{ id: 'wa', provider: 'zapthinker', mode: 'webhook', inbound: { token: TOKEN, ackTimeoutMs: ACK_TIMEOUT_MS }, zapthinker: { url: 'http://127.0.0.1:9', instance: 'sales', apiKey: 'key-sales-0123456789' } }],
    });
  }, 90_000);

  afterEach(async () => {
    await bridge?.kill();
    await reader?.stop();
    await broker?.stop();
  });

  const nextId = () => `DURABLE${String(++seq).padStart(9, '0')}`;
  /** One Evolution post of message `id`: its status, or `closed` when the connection was refused or cut. */
  async function post(id: string): Promise<number | 'closed'> {
    try {
      const res = await fetch(`${bridge.url}/v1/inbound/wa`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-chatbridge-token': TOKEN }, body: evolutionPost('sales', id, `text ${id}`), signal: AbortSignal.timeout(15_000) });
      await res.text();
      return res.status;
    } catch {
      return 'closed';
    }
  }
  const idsInKafka = () => reader.ofType('chatbridge.message.received').map((r) => (JSON.parse(r.value ?? '{}') as { message: { id: string } }).message.id);

  it('Kafka down: a post is answered 503 after inbound.ackTimeoutMs, its retry after the outage 200, and the message is in Kafka once', async () => {
    const before = nextId();
    expect(await post(before)).toBe(200);
    await broker.down();
    const id = nextId();
    const t0 = performance.now();
    const during = await post(id);
    const answerMs = Math.round(performance.now() - t0);
    expect(during).toBe(503);
    expect(answerMs).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50);
    const healthz = await expectHealthy(bridge);
    await broker.up();
    // The upstream retries until it gets a 2xx.
    let retries = 0;
    let after: number | 'closed' = 503;
    while (after !== 200 && retries < 30) {
      retries++;
      after = await post(id);
    }
    expect(after).toBe(200);
    await reader.waitFor('the message in Kafka', () => idsInKafka().includes(id), 20_000);
    const copies = idsInKafka().filter((m) => m === id).length;
    expect(copies).toBe(1);
    report('inbound/kafka-down', { duringStatus: during, answerMs, ackTimeoutMs: ACK_TIMEOUT_MS, retriesTo200: retries, copiesInKafka: copies, lost: 0, healthzMs: Math.round(healthz), rssMiB: rssMiB(bridge.pid) });
  });

  it('posts during SIGTERM: each is either acknowledged and in Kafka, or refused (503 or connection closed)', async () => {
    const answers: Array<{ id: string; status: number | 'closed' }> = [];
    let posting = true;
    const poster = (async () => {
      while (posting) {
        const id = nextId();
        answers.push({ id, status: await post(id) });
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    const exit = bridge.signal('SIGTERM');
    const { code } = await exit;
    posting = false;
    await poster;
    const acknowledged = answers.filter((a) => a.status === 200);
    await reader.waitFor('every acknowledged post in Kafka', () => { const have = new Set(idsInKafka()); return acknowledged.every((a) => have.has(a.id)); }, 20_000).catch(() => undefined);
    const have = new Set(idsInKafka());
    const ackedNotInKafka = acknowledged.filter((a) => !have.has(a.id)).length;
    const refused = answers.filter((a) => a.status === 503 || a.status === 'closed').length;
    const other = answers.filter((a) => a.status !== 200 && a.status !== 503 && a.status !== 'closed');
    expect(code).toBe(0);
    expect(ackedNotInKafka).toBe(0);
    expect(other).toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(0);
    report('inbound/posts-during-sigterm', { posts: answers.length, acknowledged: acknowledged.length, ackedNotInKafka, refused, exitCode: code ?? 'signal' });
  });
});
