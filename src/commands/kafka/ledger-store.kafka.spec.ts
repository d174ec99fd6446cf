import type { Kafka, ProducerRecord } from 'kafkajs';
import { createRootLogger } from '../../common/logger';
import type { CommandRecord, CommandStatus } from '../command.types';
import { KafkaLedgerStore } from './ledger-store.kafka';

/** A kafkajs producer double: every `send` is recorded and waits until the test acknowledges or fails it. */
class FakeProducer {
  readonly sends: Array<{ record: ProducerRecord; ack: () => void; fail: (err: Error) => void }> = [];

  connect = async (): Promise<void> => undefined;
  disconnect = async (): Promise<void> => undefined;
  send = (record: ProducerRecord): Promise<void> => new Promise<void>((resolve, reject) => {
    this.sends.push({ record, ack: resolve, fail: reject });
  });

  /** The (key, status) of each record of send `i`. */
  records(i: number): Array<[string, CommandStatus]> {
    return this.sends[i].record.messages.map((m) => [String(m.key), (JSON.parse(String(m.value)) as CommandRecord).status]);
  }
}

const record = (commandId: string, status: CommandStatus = 'accepted'): CommandRecord => ({
  commandId, channelId: 'wa', type: 'message.send', status, attempts: status === 'accepted' ? 0 : 1, fingerprint: 'ab12', door: 'http',
  acceptedAt: '2024-05-01T10:00:00.000Z', updatedAt: '2024-05-01T10:00:00.000Z',
});

/** Lets the store's scheduled flush (setImmediate) and the promise chains after it run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('KafkaLedgerStore group commit (fake producer)', () => {
  let producer: FakeProducer;
  let store: KafkaLedgerStore;

  beforeEach(() => {
    producer = new FakeProducer();
    const kafka = { producer: () => producer } as unknown as Kafka;
    store = new KafkaLedgerStore(kafka, { topic: 'ledger', group: 'g', loadTimeoutMs: 1000, writeTimeoutMs: 60_000, consumer: {} as never }, createRootLogger('silent', 2));
  });

  afterEach(async () => {
    await store.stop();
  });

  it('sends the writes of many callers in one produce request (acks -1) and resolves each once it is acknowledged', async () => {
    const settled: string[] = [];
    const writes = ['c-1', 'c-2', 'c-3', 'c-4'].map((id) => store.write(record(id)).then(() => void settled.push(id)));
    await turn();
    expect(producer.sends).toHaveLength(1);
    expect(producer.sends[0].record).toMatchObject({ topic: 'ledger', acks: -1 });
    expect(producer.records(0)).toEqual([['c-1', 'accepted'], ['c-2', 'accepted'], ['c-3', 'accepted'], ['c-4', 'accepted']]);
    expect(settled).toEqual([]); // nobody is answered before Kafka acknowledged

    producer.sends[0].ack();
    await Promise.all(writes);
    expect(settled).toEqual(['c-1', 'c-2', 'c-3', 'c-4']);
  });

  it('keeps one request in flight: writes made meanwhile wait and go together in the next one, in the order written', async () => {
    const first = store.write(record('c-1'));
    await turn();
    expect(producer.sends).toHaveLength(1);

    let laterSettled = false;
    const later = Promise.all([
      store.write(record('c-2')), store.write(record('c-1', 'sending')), store.write(record('c-2', 'sending')), store.write(record('c-1', 'sent')),
    ]).then(() => (laterSettled = true));
    await turn();
    expect(producer.sends).toHaveLength(1); // still waiting for the first acknowledgement

    producer.sends[0].ack();
    await first;
    await turn();
    expect(producer.sends).toHaveLength(2);
    expect(producer.records(1)).toEqual([['c-2', 'accepted'], ['c-1', 'sending'], ['c-2', 'sending'], ['c-1', 'sent']]);
    expect(laterSettled).toBe(false);
    producer.sends[1].ack();
    await later;
  });

  it('fails every write of a batch the producer refused, each with ledger_unavailable, and goes on with the next batch', async () => {
    const a = store.write(record('c-1'));
    const b = store.write(record('c-2'));
    await turn();
    const c = store.write(record('c-3')); // waits for the next request
    producer.sends[0].fail(new Error('NOT_ENOUGH_REPLICAS'));
    for (const write of [a, b]) await expect(write).rejects.toMatchObject({ code: 'ledger_unavailable', retriable: true, message: expect.stringContaining('NOT_ENOUGH_REPLICAS') });

    await turn();
    expect(producer.sends).toHaveLength(2);
    expect(producer.records(1)).toEqual([['c-3', 'accepted']]);
    producer.sends[1].ack();
    await expect(c).resolves.toBeUndefined();
  });

  it('refuses a write at once while 10,000 records already wait for Kafka, and takes writes again once they went', async () => {
    const inFlight = store.write(record('flying'));
    await turn();
    const waiting = Array.from({ length: 10_000 }, (_, i) => store.write(record(`w-${i}`)));
    await expect(store.write(record('one-too-many'))).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.stringContaining('10000 records are already waiting') });

    producer.sends[0].ack();
    await inFlight;
    for (let i = 1; i <= 20; i++) {
      await turn();
      expect(producer.sends[i].record.messages).toHaveLength(500); // at most 500 records per request
      producer.sends[i].ack();
    }
    await Promise.all(waiting);
    const next = store.write(record('after'));
    await turn();
    producer.sends[21].ack();
    await expect(next).resolves.toBeUndefined();
  });

  describe('with lingerMs', () => {
    const lingering = (lingerMs: number, writeTimeoutMs = 60_000) => new KafkaLedgerStore({ producer: () => producer } as unknown as Kafka, { topic: 'ledger', group: 'g', loadTimeoutMs: 1000, writeTimeoutMs, lingerMs, consumer: {} as never }, createRootLogger('silent', 2));

    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
    afterEach(() => jest.useRealTimers());

    let paced: KafkaLedgerStore;
    afterEach(async () => {
      await paced.stop();
    });

    /** Writes `id`, lets the store send it, and acknowledges it: the pacer's clock starts at that send. */
    async function sentAndAcked(id: string): Promise<void> {
      const first = paced.write(record(id));
      await turn();
      producer.sends.at(-1)!.ack();
      await first;
    }

    it('starts the next request lingerMs after the previous one started; writes made meanwhile go in it', async () => {
      paced = lingering(5);
      await sentAndAcked('c-1');
      expect(producer.sends).toHaveLength(1); // nothing started within 5 ms before it: the first went at once
      const early = [paced.write(record('c-2')), paced.write(record('c-3'))];
      await turn();
      jest.advanceTimersByTime(4);
      await turn();
      expect(producer.sends).toHaveLength(1);
      const meanwhile = paced.write(record('c-4')); // while the request waits
      jest.advanceTimersByTime(1);
      await turn();
      expect(producer.sends).toHaveLength(2);
      expect(producer.records(1)).toEqual([['c-2', 'accepted'], ['c-3', 'accepted'], ['c-4', 'accepted']]);
      producer.sends[1].ack();
      await Promise.all([...early, meanwhile]);
    });

    it('sends a full batch (500 records) at once, without waiting, also when it fills during a wait', async () => {
      paced = lingering(100);
      await sentAndAcked('c-0');
      const full = Array.from({ length: 500 }, (_, i) => paced.write(record(`f-${i}`)));
      await turn();
      expect(producer.sends).toHaveLength(2);
      expect(producer.sends[1].record.messages).toHaveLength(500);
      producer.sends[1].ack();
      await Promise.all(full);

      // One write starts a wait (the last request started just now); the batch fills meanwhile and goes at once.
      const filling = [paced.write(record('g-0'))];
      await turn();
      expect(producer.sends).toHaveLength(2);
      for (let i = 1; i < 500; i++) filling.push(paced.write(record(`g-${i}`)));
      await turn();
      expect(producer.sends).toHaveLength(3);
      expect(producer.sends[2].record.messages).toHaveLength(500);
      producer.sends[2].ack();
      await Promise.all(filling);
    });

    it('sends nothing for a write that timed out while waiting, and no empty request; the next write is not held for it', async () => {
      paced = lingering(100, 50);
      await sentAndAcked('c-1');
      const late = paced.write(record('c-2'));
      await turn();
      jest.advanceTimersByTime(50);
      await expect(late).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.not.stringContaining('may still be stored') });
      jest.advanceTimersByTime(60);
      await turn();
      expect(producer.sends).toHaveLength(1);
      // No request started at the end of that wait, so a write now (over 100 ms after the last one) goes at once.
      const next = paced.write(record('c-3'));
      await turn();
      expect(producer.sends).toHaveLength(2);
      producer.sends[1].ack();
      await next;
    });

    it('stop ends a wait at once: the waiting write is refused, nothing is sent', async () => {
      paced = lingering(100);
      await sentAndAcked('c-1');
      const timers = jest.getTimerCount(); // the logger's own
      const waiting = paced.write(record('c-2'));
      await turn();
      await paced.stop();
      await expect(waiting).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.stringContaining('shutting down') });
      await turn();
      expect(producer.sends).toHaveLength(1);
      expect(jest.getTimerCount()).toBe(timers); // neither the wait's timer nor a write's deadline is left running
    });
  });

  it('rejects a write not acknowledged within writeTimeoutMs, saying when the record may still be stored', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate'] });
    try {
      const kafka = { producer: () => producer } as unknown as Kafka;
      const slow = new KafkaLedgerStore(kafka, { topic: 'ledger', group: 'g', loadTimeoutMs: 1000, writeTimeoutMs: 500, consumer: {} as never }, createRootLogger('silent', 2));
      const flying = slow.write(record('c-1'));
      await turn();
      const queued = slow.write(record('c-2'));
      jest.advanceTimersByTime(500);
      await expect(flying).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.stringContaining('may still be stored') });
      await expect(queued).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.not.stringContaining('may still be stored') });
      await slow.stop();
    } finally {
      jest.useRealTimers();
    }
  });
});
