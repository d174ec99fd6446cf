import { PartitionAssigners, type Cluster, type Logger } from 'kafkajs';
import pino from 'pino';
import { ClusterConfig, KafkaConsumerConfig } from '../config/config.schema';
import { ClusterMembership } from './membership';
import { decodeHeld, STICKY_ASSIGNER } from './sticky-assigner';

/** Ownership reduced to what the membership tells it, recorded in order. */
class FakeOwnership {
  readonly calls: string[] = [];
  held: number[] = [];
  assign(partitions: readonly number[], count: number): void {
    this.calls.push(`assign ${partitions.join(',')}/${count}`);
  }
  alive(): void {
    this.calls.push('alive');
  }
  unreachable(): void {
    this.calls.push('unreachable');
  }
  rebalancing(): void {
    this.calls.push('rebalancing');
  }
  assignedPartitions(): number[] {
    return this.held;
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ClusterMembership', () => {
  const settings = Object.assign(new ClusterConfig(), { sessionTimeoutMs: 9000, heartbeatIntervalMs: 700, rebalanceTimeoutMs: 12_000 });
  let ownership: FakeOwnership;
  let counts: Array<() => Promise<number>>;
  let membership: ClusterMembership;

  beforeEach(() => {
    ownership = new FakeOwnership();
    // Each call of partitionCount takes the next answer; the last one repeats.
    counts = [];
    const partitionCount = () => (counts.length > 1 ? counts.shift()! : counts[0])();
    membership = new ClusterMembership({ settings, group: 'chatbridge.commands', partitionCount }, ownership, pino({ level: 'silent' }));
  });
  afterEach(() => membership.stop());

  it('joins with the cluster timeouts, the sticky assigner (sending what it holds) and round robin as the fallback', () => {
    const consumer = Object.assign(new KafkaConsumerConfig(), { maxWaitTimeMs: 5000, sessionTimeoutMs: 30_000 });
    const out = membership.consumerSettings(consumer);
    expect(out).toMatchObject({ maxWaitTimeInMs: 700, sessionTimeout: 9000, heartbeatInterval: 700, rebalanceTimeout: 12_000 });
    const [sticky, fallback] = out.partitionAssigners ?? [];
    expect(fallback).toBe(PartitionAssigners.roundRobin);
    ownership.held = [1, 3];
    const assigner = sticky({ cluster: {} as Cluster, groupId: 'chatbridge.commands', logger: {} as Logger });
    expect(assigner.name).toBe(STICKY_ASSIGNER);
    expect(decodeHeld(assigner.protocol({ topics: ['chatbridge.commands'] }).metadata)).toEqual([1, 3]);
  });

  it('an assignment becomes ownership of those partitions out of the topic\'s partition count', async () => {
    counts.push(async () => 6);
    membership.hooks.onGroupJoin([0, 4], STICKY_ASSIGNER);
    await until('assigned', () => ownership.calls.length > 0);
    expect(ownership.calls).toEqual(['assign 0,4/6']);
  });

  it('reads the partition count again with backoff until it can, and applies assignments in the order of the rebalances', async () => {
    let release!: () => void;
    counts.push(() => Promise.reject(new Error('topic has no partitions yet')), () => new Promise<number>((r) => (release = () => r(4))), async () => 4);
    membership.hooks.onGroupJoin([0, 1], STICKY_ASSIGNER);
    membership.hooks.onGroupJoin([2], STICKY_ASSIGNER);
    await until('second try under way', () => release !== undefined);
    expect(ownership.calls).toEqual([]);
    release();
    await until('both applied', () => ownership.calls.length === 2);
    expect(ownership.calls).toEqual(['assign 0,1/4', 'assign 2/4']);
  });

  it('passes heartbeats, unreachable and rebalancing on to the ownership', () => {
    membership.hooks.onHeartbeat();
    membership.hooks.onUnreachable();
    membership.hooks.onRebalancing();
    expect(ownership.calls).toEqual(['alive', 'unreachable', 'rebalancing']);
  });

  it('stop ends a wait for the partition count: the pending assignment is dropped', async () => {
    let tries = 0;
    counts.push(() => {
      tries++;
      return Promise.reject(new Error('unreachable'));
    });
    membership.hooks.onGroupJoin([0], STICKY_ASSIGNER);
    await until('first try', () => tries >= 1);
    membership.stop();
    const triedBeforeStop = tries;
    await new Promise((r) => setTimeout(r, 600));
    expect(tries).toBe(triedBeforeStop);
    expect(ownership.calls).toEqual([]);
  });
});
