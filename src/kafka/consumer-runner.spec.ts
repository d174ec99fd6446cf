import { EventEmitter } from 'node:events';
import type { Kafka, KafkaMessage } from 'kafkajs';
import pino from 'pino';
import { BridgeError } from '../common/errors';
import { Metrics } from '../health/metrics';
import type { DeadLetter, DeadLetters } from '../pipeline/dead-letters';
import { ConsumerRunner, type ConsumerRunnerOptions, type RecordHandler } from './consumer-runner';

const TOPIC = 'chatbridge.commands';

/**
 * A kafkajs consumer reduced to what the runner uses, driven by the test: `deliver` hands the records of one
 * partition from its position as kafkajs would (a batch; resolved offsets move the position, `seek` moves it back,
 * a paused partition is not fetched).
 */
class FakeConsumer extends EventEmitter {
  readonly events = { CRASH: 'crash', GROUP_JOIN: 'join', HEARTBEAT: 'heartbeat', REBALANCING: 'rebalancing' };
  eachBatch?: (payload: unknown) => Promise<void>;
  readonly paused = new Set<number>();
  readonly position = new Map<number, number>();
  readonly committed: Array<{ partition: number; offset: string }> = [];
  disconnected = false;
  /** True once `run` began; it resolves (the group joined) when `joined` does. */
  joining = false;

  /** True once `connect` began. */
  connecting = false;

  constructor(
    readonly groupId: string,
    private readonly failConnect: boolean,
    private readonly joined?: Promise<void>,
    private readonly reached?: Promise<void>,
  ) {
    super();
  }

  async connect(): Promise<void> {
    this.connecting = true;
    await this.reached;
    if (this.failConnect) throw new Error('connect ECONNREFUSED');
  }
  async subscribe(): Promise<void> {}
  async run(cfg: { eachBatch: (payload: unknown) => Promise<void> }): Promise<void> {
    this.joining = true;
    await this.joined;
    this.eachBatch = cfg.eachBatch;
  }
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
  pause(topics: Array<{ partitions?: number[] }>): void {
    for (const p of topics[0].partitions ?? []) this.paused.add(p);
  }
  resume(topics: Array<{ partitions?: number[] }>): void {
    for (const p of topics[0].partitions ?? []) this.paused.delete(p);
  }
  seek({ partition, offset }: { partition: number; offset: string }): void {
    this.position.set(partition, Number(offset));
  }

  /** One fetch of `partition` (nothing while paused); the position moves to one past the last resolved offset. */
  async deliver(partition: number, log: KafkaMessage[]): Promise<void> {
    if (this.paused.has(partition) || !this.eachBatch) return;
    const from = this.position.get(partition) ?? 0;
    const messages = log.filter((m) => Number(m.offset) >= from);
    if (!messages.length) return;
    let resolved: number | undefined;
    await this.eachBatch({
      batch: { topic: TOPIC, partition, messages, highWatermark: String(log.length) },
      resolveOffset: (o: string) => (resolved = Number(o)),
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => false,
      commitOffsetsIfNecessary: async (o: { topics: Array<{ partitions: Array<{ partition: number; offset: string }> }> }) => {
        this.committed.push(...o.topics[0].partitions);
      },
    });
    // A seek during the batch wins over what was resolved, as in kafkajs.
    if (!this.paused.has(partition) && resolved !== undefined) this.position.set(partition, resolved + 1);
  }
}

function record(offset: number, value: string): KafkaMessage {
  return { offset: String(offset), key: Buffer.from('wa'), value: Buffer.from(value), headers: { trace: Buffer.from('t1') }, timestamp: '0', attributes: 0 } as KafkaMessage;
}

async function until(what: string, check: () => boolean, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ConsumerRunner', () => {
  let consumers: FakeConsumer[];
  let failConnects: number;
  let groupJoined: Promise<void> | undefined;
  let brokerReached: Promise<void> | undefined;
  let letters: DeadLetter[];
  let metrics: Metrics;
  let runner: ConsumerRunner | undefined;
  const kafka = { consumer: (cfg: { groupId: string }) => {
    const c = new FakeConsumer(cfg.groupId, failConnects-- > 0, groupJoined, brokerReached);
    consumers.push(c);
    return c;
  }, admin: () => { throw new Error('no admin in unit tests'); } } as unknown as Kafka;
  const deadLetters = { write: async (item: DeadLetter) => void letters.push(item) } as unknown as DeadLetters;
  let groups = 0;

  function make(handler: RecordHandler, extra: Partial<ConsumerRunnerOptions> = {}, withDeadLetters = true): ConsumerRunner {
    runner = new ConsumerRunner(kafka, {
      name: 'test consumer', origin: 'kafka-commands', topic: TOPIC, groupId: () => `g${++groups}`, settings: {},
      fromBeginning: () => true, poisonMaxTries: 3, commit: true, ensureTopic: false, ...extra,
    }, handler, { log: pino({ level: 'silent' }), metrics, deadLetters: withDeadLetters ? deadLetters : undefined });
    return runner;
  }

  /** Fetches partition 0 of the newest consumer until `done`, as kafkajs keeps fetching. */
  async function drive(log: KafkaMessage[], done: () => boolean): Promise<void> {
    const end = Date.now() + 15_000;
    while (!done()) {
      if (Date.now() > end) throw new Error('timed out waiting for the records to be handled');
      await consumers.at(-1)?.deliver(0, log);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  const poisonCount = async () => (await metrics.refused.get()).values.find((v) => v.labels.reason === 'poison_record' && v.labels.origin === 'consumer')?.value ?? 0;

  beforeEach(() => {
    consumers = [];
    failConnects = 0;
    groupJoined = undefined;
    brokerReached = undefined;
    letters = [];
    metrics = new Metrics({ defaultMetrics: false });
  });
  afterEach(async () => {
    await runner?.stop(100);
    runner = undefined;
  });

  it('dead-letters a record whose handler keeps throwing after poisonMaxTries, whole, and moves the partition on', async () => {
    const tries = new Map<string, number>();
    const handled: string[] = [];
    make((m) => {
      tries.set(m.offset, (tries.get(m.offset) ?? 0) + 1);
      if (m.value?.toString() === 'poison') throw new RangeError('Maximum call stack size exceeded');
      handled.push(m.offset);
    }).start();
    await until('started', () => consumers[0]?.eachBatch !== undefined);
    const log = [record(0, 'ok'), record(1, 'poison'), record(2, 'ok')];
    await drive(log, () => handled.includes('2'));

    expect(tries.get('1')).toBe(3);
    expect(handled).toEqual(['0', '2']);
    expect(letters).toEqual([{
      reason: 'poison_record', origin: 'kafka-commands', error: 'Maximum call stack size exceeded', attempts: 3,
      record: { topic: TOPIC, partition: 0, offset: '1', key: Buffer.from('wa').toString('base64'), value: Buffer.from('poison').toString('base64'), headers: { trace: 't1' } },
    }]);
    expect(await poisonCount()).toBe(1);
    // Each record counted once as read, the dead-lettered one included, none per failed try.
    expect((await metrics.kafkaRecordsRead.get()).values).toEqual([{ labels: { reader: 'test consumer' }, value: 3 }]);
    // Committed past the poison record only once it was dead-lettered.
    expect(consumers[0].committed.map((c) => c.offset)).toEqual(['1', '3']);
  });

  it('offers a declared-retriable refusal again as often as it lasts, never dead-lettering it', async () => {
    let refusals = 0;
    const handled: string[] = [];
    make((m) => {
      if (m.offset === '0' && refusals < 4) {
        refusals++;
        throw new BridgeError('channel_busy', 'busy', { retriable: true });
      }
      handled.push(m.offset);
    }, { poisonMaxTries: 1 }).start();
    await until('started', () => consumers[0]?.eachBatch !== undefined);
    await drive([record(0, 'a'), record(1, 'b')], () => handled.length === 2);
    expect(refusals).toBe(4);
    expect(handled).toEqual(['0', '1']);
    expect(letters).toEqual([]);
    expect(await poisonCount()).toBe(0);
  });

  it('pauses the failing partition at the record while it waits (other partitions are fetched meanwhile)', async () => {
    make(() => {
      throw new Error('boom');
    }, { poisonMaxTries: 3 }).start();
    await until('started', () => consumers[0]?.eachBatch !== undefined);
    await consumers[0].deliver(0, [record(0, 'x'), record(1, 'y')]);
    expect(consumers[0].paused).toEqual(new Set([0]));
    expect(consumers[0].position.get(0)).toBe(0);
    expect(consumers[0].committed).toEqual([]);
    await until('resumed after the backoff', () => !consumers[0].paused.has(0));
  });

  it('without a dead-letter store, writes the poison record whole to the log and moves on', async () => {
    const lines: string[] = [];
    const handled: string[] = [];
    runner = new ConsumerRunner(kafka, {
      name: 'state topic follower', origin: 'state topic follower', topic: TOPIC, groupId: () => 'g', settings: {},
      fromBeginning: () => true, poisonMaxTries: 2, commit: false, ensureTopic: false,
    }, (m) => {
      if (m.offset === '0') throw new TypeError('cannot read properties of undefined');
      handled.push(m.offset);
    }, { log: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }) });
    runner.start();
    await until('started', () => consumers[0]?.eachBatch !== undefined);
    await drive([record(0, 'bad'), record(1, 'ok')], () => handled.includes('1'));
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; deadLetter?: DeadLetter }).find((l) => l.deadLetter);
    expect(logged?.deadLetter).toMatchObject({ reason: 'poison_record', record: { offset: '0', value: Buffer.from('bad').toString('base64') } });
    expect(consumers[0].committed).toEqual([]);
  });

  it('a handler that does not take the record now stops the batch there, unresolved and uncommitted', async () => {
    let calls = 0;
    make(() => {
      calls++;
      return false;
    }).start();
    await until('started', () => consumers[0]?.eachBatch !== undefined);
    await consumers[0].deliver(0, [record(0, 'a'), record(1, 'b')]);
    expect(calls).toBe(1);
    expect(consumers[0].committed).toEqual([]);
  });

  it('retries a start that fails with backoff, with a fresh consumer each time, telling the group is unreachable', async () => {
    failConnects = 2;
    let unreachable = 0;
    make(() => undefined, { onUnreachable: () => unreachable++ }).start();
    await until('started on the third consumer', () => consumers[2]?.eachBatch !== undefined);
    expect(consumers.map((c) => c.groupId)).toEqual([`g${groups - 2}`, `g${groups - 1}`, `g${groups}`]);
    expect(consumers[0].disconnected && consumers[1].disconnected).toBe(true);
    expect(runner?.running).toBe(true);
    expect(unreachable).toBe(2);
  });

  it('starts over after a crash kafkajs does not restart from; not after one it restarts, nor after stop', async () => {
    make(() => undefined).start();
    await until('started', () => consumers[0]?.eachBatch !== undefined);
    consumers[0].emit('crash', { payload: { error: new Error('retriable'), restart: true } });
    await new Promise((r) => setTimeout(r, 50));
    expect(consumers).toHaveLength(1);
    consumers[0].emit('crash', { payload: { error: new Error('fatal'), restart: false } });
    await until('a new consumer started', () => consumers[1]?.eachBatch !== undefined);
    await runner?.stop(100);
    expect(consumers[1].disconnected).toBe(true);
    expect(runner?.running).toBe(false);
    consumers[1].emit('crash', { payload: { error: new Error('fatal'), restart: false } });
    await new Promise((r) => setTimeout(r, 700));
    expect(consumers).toHaveLength(2);
  });

  it('stop during a restart backoff ends it and starts nothing more', async () => {
    failConnects = 100;
    make(() => undefined).start();
    await until('first failure', () => consumers.length === 1);
    await runner?.stop(100);
    const seen = consumers.length;
    await new Promise((r) => setTimeout(r, 700));
    expect(consumers).toHaveLength(seen);
  });

  it('stop during the group join leaves the consumer to the start, which disconnects it once joined (stop waits, bounded)', async () => {
    let join!: () => void;
    groupJoined = new Promise<void>((resolve) => (join = resolve));
    make(() => undefined).start();
    await until('joining', () => consumers[0]?.joining);
    // Past its deadline, stop returns with the join still under way, and the consumer still connected under it.
    await runner?.stop(50);
    expect(consumers[0].disconnected).toBe(false);
    join();
    await until('disconnected once joined', () => consumers[0].disconnected);
    expect(runner?.running).toBe(false);

    groupJoined = new Promise<void>((resolve) => (join = resolve));
    make(() => undefined).start();
    await until('joining', () => consumers[1]?.joining);
    setTimeout(join, 50);
    // Within its deadline, stop returns once the consumer is disconnected.
    await runner?.stop(5000);
    expect(consumers[1].disconnected).toBe(true);
  });

  it('stop while the start still connects (Kafka unreachable) returns at once; the start then ends itself without joining', async () => {
    let reach!: () => void;
    brokerReached = new Promise<void>((resolve) => (reach = resolve));
    make(() => undefined).start();
    await until('connecting', () => consumers[0]?.connecting);
    // A shutdown does not spend its time on a connect that may take kafkajs's whole retry schedule: stop resolves
    // while the connect is still blocked (it never resolves until `reach`).
    await runner?.stop(60_000);
    expect(consumers[0].disconnected).toBe(false);
    reach();
    await until('disconnected by the start', () => consumers[0].disconnected);
    expect(consumers[0].joining).toBe(false);
    expect(consumers).toHaveLength(1);
  });

  it('passes the group events on (assignment of its topic, heartbeats, rebalances)', async () => {
    const joins: Array<[number[], string]> = [];
    let beats = 0;
    let rebalances = 0;
    make(() => undefined, { onGroupJoin: (p, protocol) => joins.push([p, protocol]), onHeartbeat: () => beats++, onRebalancing: () => rebalances++ }).start();
    await until('started', () => consumers[0]?.eachBatch !== undefined);
    consumers[0].emit('join', { payload: { memberAssignment: { [TOPIC]: [0, 2], other: [1] }, groupProtocol: 'ChatbridgeSticky' } });
    consumers[0].emit('heartbeat', {});
    consumers[0].emit('rebalancing', {});
    expect(joins).toEqual([[[0, 2], 'ChatbridgeSticky']]);
    expect([beats, rebalances]).toEqual([1, 1]);
  });
});
