import { PartitionAssigners } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay, CONSUMER_RESTART_BACKOFF } from '../common/backoff';
import { describeError } from '../common/errors';
import { Pause } from '../common/wait';
import type { ClusterConfig, KafkaConsumerConfig } from '../config/config.schema';
import { consumerSettings, type ConsumerRunnerOptions } from '../kafka/consumer-runner';
import type { ClusterOwnership } from './ownership';
import { stickyAssigner } from './sticky-assigner';

/** The group events of a consumer runner that a membership listens to. */
export type GroupHooks = Required<Pick<ConsumerRunnerOptions, 'onGroupJoin' | 'onHeartbeat' | 'onUnreachable' | 'onRebalancing'>>;

/** What `ClusterMembership` needs besides the ownership. */
export interface ClusterMembershipOptions {
  /** `cluster`: the group's timeouts. */
  settings: ClusterConfig;
  /** The command consumer group (for logs). */
  group: string;
  /** The commands topic's partition count now; rejects while it has none. */
  partitionCount: () => Promise<number>;
}

/**
 * This replica's membership of the cluster, which is the command consumer group (docs/operations.md): it gives the
 * group's consumer settings (the cluster's timeouts, the sticky assigner) and turns the group events of the consumer
 * that joins with them into channel ownership — an assignment after each rebalance (with the topic's partition count
 * then) becomes `ownership.assign`, a heartbeat says the group answers, a failed start or crash that it cannot be
 * reached, a rebalance that one is under way.
 */
export class ClusterMembership {
  /** To hand to the consumer runner of the group. */
  readonly hooks: GroupHooks;
  private stopped = false;
  private readonly pause = new Pause();
  /** Assignments are applied one after the other, in the order of the rebalances. */
  private joins: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: ClusterMembershipOptions,
    private readonly ownership: Pick<ClusterOwnership, 'assign' | 'alive' | 'unreachable' | 'rebalancing' | 'assignedPartitions'>,
    private readonly log: Logger,
  ) {
    this.hooks = {
      onGroupJoin: (partitions, protocol) => {
        this.joins = this.joins.then(() => this.assign(partitions, protocol));
      },
      onHeartbeat: () => ownership.alive(),
      onUnreachable: () => ownership.unreachable(),
      onRebalancing: () => ownership.rebalancing(),
    };
  }

  /** The kafkajs settings of the group's consumer: `kafka.consumer`'s, with the cluster's timeouts and assigners. */
  consumerSettings(consumer: KafkaConsumerConfig): ConsumerRunnerOptions['settings'] {
    const cluster = this.opts.settings;
    return {
      ...consumerSettings(consumer),
      maxWaitTimeInMs: Math.min(consumer.maxWaitTimeMs, cluster.heartbeatIntervalMs),
      sessionTimeout: cluster.sessionTimeoutMs,
      heartbeatInterval: cluster.heartbeatIntervalMs,
      rebalanceTimeout: cluster.rebalanceTimeoutMs,
      // Partitions stay with their member across rebalances (fewer handovers); round robin when a member of an older
      // version cannot do that.
      partitionAssigners: [stickyAssigner(() => this.ownership.assignedPartitions()), PartitionAssigners.roundRobin],
    };
  }

  /** Ends the wait for the partition count: an assignment not applied yet is dropped (the group is being left). */
  stop(): void {
    this.stopped = true;
    this.pause.cancel();
  }

  /** A rebalance ended: the partitions given to this member (of the topic's current partition count) are its channels. */
  private async assign(partitions: number[], protocol: string): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const count = await this.opts.partitionCount();
        this.log.info({ partitions, of: count, group: this.opts.group, protocol }, 'group assignment: holding the channels of these partitions of the commands topic');
        this.ownership.assign(partitions, count);
        return;
      } catch (err) {
        this.log.warn({ err: describeError(err), attempt }, 'cannot read the commands topic\'s partition count after a rebalance; retrying');
        await this.pause.wait(backoffDelay(CONSUMER_RESTART_BACKOFF, attempt));
      }
    }
  }
}
