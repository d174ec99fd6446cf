import { Kafka, logLevel } from 'kafkajs';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { BridgeProcess, freePort } from '../helpers/bridge-process';
import { KafkaReader } from '../helpers/kafka-reader';
import { FAST_RECONNECT } from '../helpers/bridge-harness';
import { deadLetters, expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

/**
 * Kafka outages under built bridges in cluster mode (the chart's default with Kafka), with Watchers rooms — Watchers
 * keeps no history, so whatever arrives while no replica listens is lost for good. Every room gets one message a
 * second throughout; each row counts sent / in Kafka / lost / duplicated by id.
 */
const RSS_BOUND_MIB = 300;
const EVENTS = 'faults-outage-events';
const COMMANDS = 'faults-outage-commands';
/** Kafka protocol: the JoinGroup request's ApiKey, and a retriable error a coordinator answers while it cannot serve. */
const JOIN_GROUP = 11;
const COORDINATOR_NOT_AVAILABLE = 15;

describe('fault suite: Kafka outages', () => {
  let broker: TestBroker;
  let reader: KafkaReader;
  const watchers = new WatchersSimulator({ bots: ['bot-1'] });
  const bridges: BridgeProcess[] = [];
  const sent = new Map<string, string[]>();
  let ticker: NodeJS.Timeout | undefined;

  beforeEach(async () => {
    broker = await startTestBroker({ brokers: 1, topics: [{ name: COMMANDS, partitions: 6 }, { name: EVENTS, partitions: 4 }] });
    await watchers.start();
    reader = new KafkaReader(broker.bootstrap, [EVENTS]);
    await reader.start();
    sent.clear();
  });

  afterEach(async () => {
    clearInterval(ticker);
    await Promise.all(bridges.splice(0).map((b) => b.kill()));
    await reader.stop().catch(() => undefined);
    await watchers.stop();
    await broker.stop();
  });

  const rooms = (n: number) => Array.from({ length: n }, (_, i) => String(200_000 + i));
  const config = (roomIds: string[]) => ({
    kafka: {
      brokers: broker.bootstrap,
      topics: { events: EVENTS, commands: COMMANDS, state: 'faults-outage-state', commandLedger: 'faults-outage-ledger', deadLetter: 'faults-outage-dlq' },
      connectionTimeoutMs: 500,
      producer: { requestTimeoutMs: 1000, retryMaxDelayMs: 500 },
    },
    cluster: { enabled: true, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 10_000, handoverOverlapMs: 1000 },
    channels: roomIds.map((room) => ({ id: `room-${room}`, provider: 'watchers', watchers: { url: watchers.url, bearer: watchers.bearerFor('bot-1'), apiKey: watchers.apiKey, userId: 'bot-1', rooms: [room] } })),
  });

  /** One message a second into every room, each text unique and remembered. */
  function emitEverySecond(roomIds: string[]): void {
    let seq = 0;
    ticker = setInterval(() => {
      seq++;
      for (const room of roomIds) {
        const text = `${room}#${seq}`;
        watchers.userSays(room, 'user-1', text);
        sent.set(room, [...(sent.get(room) ?? []), text]);
      }
    }, 1000);
  }

  const textsInKafka = () => reader.ofType('chatbridge.message.received').map((r) => (JSON.parse(r.value ?? '{}') as { message: { text: string } }).message.text);
  const allSent = () => [...sent.values()].flat();

  /** Waits until every message sent is in Kafka; returns the row's counts. */
  async function tally(): Promise<{ sent: number; inKafka: number; lost: number; duplicatedById: number }> {
    const all = allSent();
    await reader.waitFor('every message sent in Kafka', () => { const have = new Set(textsInKafka()); return all.every((t) => have.has(t)); }, 60_000).catch(() => undefined);
    const have = new Set(textsInKafka());
    const ids = reader.ofType('chatbridge.message.received').map((r) => r.headers.ce_id);
    return { sent: all.length, inKafka: all.filter((t) => have.has(t)).length, lost: all.filter((t) => !have.has(t)).length, duplicatedById: ids.length - new Set(ids).size };
  }

  /**
   * Brings Kafka back, lets the rooms emit 5 s more, then waits until every message sent is in Kafka and asserts
   * none was lost and that each room has one listener again (the group settled, the overlap passed).
   */
  async function recover(roomIds: string[]): Promise<Awaited<ReturnType<typeof tally>>> {
    await broker.up();
    await new Promise((r) => setTimeout(r, 5000));
    clearInterval(ticker);
    const t = await tally();
    expect(t.lost).toBe(0);
    await listenersOneEach(roomIds);
    return t;
  }

  async function listenersOneEach(roomIds: string[]): Promise<void> {
    await until('one listener per room', () => roomIds.every((r) => watchers.listeners(r) === 1), 30_000);
  }

  it('one replica, Kafka down 30 s: the sockets stay, nothing is lost', async () => {
    const roomIds = rooms(2);
    bridges.push(await startBuiltBridge('outage-1', config(roomIds)));
    await listenersOneEach(roomIds);
    await bridges[0].waitForLog('channels assigned', (l) => l.msg === 'channels taken over', 30_000);
    emitEverySecond(roomIds);
    await new Promise((r) => setTimeout(r, 3000));
    await broker.down();
    let minListeners = Infinity;
    const watch = setInterval(() => (minListeners = Math.min(minListeners, ...roomIds.map((r) => watchers.listeners(r)))), 100);
    await new Promise((r) => setTimeout(r, 30_000));
    const healthz = await expectHealthy(bridges[0]);
    clearInterval(watch);
    const t = await recover(roomIds);
    expect(minListeners).toBe(1);
    const rss = rssMiB(bridges[0].pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('kafka-down-30s/1-replica', { ...t, minListenersDuringOutage: minListeners, healthzMs: Math.round(healthz), rssMiB: rss });
  });

  it('three replicas, Kafka down 30 s: nothing is lost; after the overlap no two replicas hold a room', async () => {
    const roomIds = rooms(6);
    const cfg = config(roomIds);
    const started = await Promise.all(['a', 'b', 'c'].map((n) => startBuiltBridge(`outage-3${n}`, cfg)));
    bridges.push(...started);
    await listenersOneEach(roomIds);
    emitEverySecond(roomIds);
    await new Promise((r) => setTimeout(r, 3000));
    await broker.down();
    await new Promise((r) => setTimeout(r, 30_000));
    for (const b of bridges) await expectHealthy(b);
    const t = await recover(roomIds);
    report('kafka-down-30s/3-replicas', { ...t, listenersPerRoomAfter: 1, rssMiB: Math.max(...bridges.map((b) => rssMiB(b.pid))) });
  });

  it('Kafka unreachable for 60 s at start, then back: every message sent meanwhile arrives', async () => {
    const roomIds = rooms(2);
    await broker.down();
    bridges.push(await startBuiltBridge('outage-start', config(roomIds)));
    await bridges[0].waitForLog('held without assignment', (l) => l.msg === 'no assignment from the Kafka group and Kafka unreachable: holding every channel until the group assigns them', 30_000);
    await listenersOneEach(roomIds);
    emitEverySecond(roomIds);
    await new Promise((r) => setTimeout(r, 45_000));
    const healthz = await expectHealthy(bridges[0]);
    const t = await recover(roomIds);
    report('kafka-unreachable-60s-at-start', { ...t, healthzMs: Math.round(healthz), rssMiB: rssMiB(bridges[0].pid) });
  });

  it('Kafka lost while start-up still reads the command ledger, then a hard stop: the events the open channel took are in the dead-letter file', async () => {
    // The channels open once the modes are read, while the command ledger may still be read. The ledger holds a
    // record, so reading it needs a consumer group, whose joins are refused here; Kafka then goes down, so the read
    // waits out its bound (5 x connectionTimeoutMs = 20 s) and start-up cannot settle before the SIGTERM's hard stop
    // at shutdownGraceMs + 5 s.
    const [room] = rooms(1);
    const { kafka, channels } = config([room]);
    // This row reads the dead-letter file, not Kafka; the refused group joins below would otherwise hit the reader's
    // group too and leave its consumer retrying after the test.
    await reader.stop();
    const producer = new Kafka({ clientId: 'faults-outage', brokers: broker.bootstrap, logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({ topic: kafka.topics.commandLedger, messages: [{ key: 'an-old-command', value: null }] });
    await producer.disconnect();
    await broker.pushRequestErrors(JOIN_GROUP, 1000, COORDINATOR_NOT_AVAILABLE);
    const b = new BridgeProcess('outage-hard-stop-start-up', {
      kafka: { ...kafka, connectionTimeoutMs: 4000 }, channels, reconnect: FAST_RECONNECT, shutdownGraceMs: 0,
    }, await freePort(), { entry: 'dist' });
    bridges.push(b);
    b.start(60_000).catch(() => undefined);
    await until('the channel listening', () => watchers.listeners(room) === 1, 30_000);
    await broker.down();
    const texts = Array.from({ length: 5 }, (_, i) => `${room}#start-up-${i}`);
    for (const text of texts) watchers.userSays(room, 'user-1', text);
    // Loopback: the channel has them within milliseconds; the Kafka sink holds them, Kafka being down.
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.logs.some((l) => l.msg === 'chatbridge started')).toBe(false);

    const t0 = performance.now();
    const exit = await b.signal('SIGTERM');
    const exitMs = Math.round(performance.now() - t0);
    expect(b.logs).toContainEqual(expect.objectContaining({ msg: 'shutting down: stopping as soon as start-up work settles', duringStartUp: true }));
    // Start-up had not settled: the hard stop ended the process.
    expect(b.logs.some((l) => l.msg === 'chatbridge started')).toBe(false);
    expect(b.logs).toContainEqual(expect.objectContaining({ msg: 'shutdown took longer than shutdownGraceMs + 5 s; exiting' }));
    expect(exit).toEqual({ code: 1, signal: null });
    const spilled = deadLetters(b).filter((d) => d.reason === 'shutdown').map((d) => (d.event as { data?: { message?: { text?: string } } }).data?.message?.text);
    expect(texts.filter((t) => !spilled.includes(t))).toEqual([]);
    report('kafka-lost-during-start-up-hard-stop', { sent: texts.length, inDeadLetterFile: texts.filter((t) => spilled.includes(t)).length, exitCode: exit.code ?? -1, exitMs });
  });
});
