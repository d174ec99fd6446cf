import type { Logger } from 'pino';
import { partitionOf } from './partition';

/** Channels this replica starts and stops holding. */
export interface OwnershipChange {
  gained: string[];
  lost: string[];
  /** Why: `assigned` (a rebalance), `fenced` (no heartbeat: cut off from the group), `heartbeat` (back after a fence). */
  reason: 'assigned' | 'fenced' | 'heartbeat';
}

/** Which channels this replica holds: their upstream sockets, their commands. */
export interface ChannelOwnership {
  /** True when several replicas share the channels (`cluster.enabled`). */
  readonly clustered: boolean;
  /** True when this replica holds the channel, or the spread conversation (`conversationKey`), now. */
  owns(key: string): boolean;
}

/**
 * The ownership key of one conversation of a channel whose provider spreads its conversations across replicas
 * (`spreadsConversations`): it hashes to its own partition, so the conversations of one channel land on several
 * replicas. Channel ids hold no `/`, so the key never equals a channel id.
 */
export function conversationKey(channelId: string, conversationId: string): string {
  return `${channelId}/${conversationId}`;
}

/** One replica: it holds every channel. */
export class SoleOwnership implements ChannelOwnership {
  readonly clustered = false;
  owns(): boolean {
    return true;
  }
}

/**
 * Channel ownership through the command consumer group (SPEC §9). A channel belongs to the partition of
 * `topics.commands` its id hashes to (Kafka's default partitioner, so the commands keyed by its id land there too),
 * and this replica holds the channels of the partitions the group assigned it. After every rebalance (`assign`) the
 * difference is reported: lost channels close their sockets, gained ones open theirs.
 *
 * Fencing: a replica cut off from Kafka keeps no sockets. When no heartbeat succeeded for `fence.afterMs` (below
 * the group's session timeout, after which the group gives the partitions to another member), every channel is
 * released. During a rebalance no heartbeats are sent, and the group waits up to its rebalance timeout for this
 * member to rejoin, so the limit is then `fence.rebalanceMs`. A heartbeat that succeeds after a fence proves the
 * group still counts this member with the same assignment, so the channels are taken back; otherwise the next
 * rebalance assigns them.
 */
export class ClusterOwnership implements ChannelOwnership {
  readonly clustered = true;
  private partitions = new Set<number>();
  /** The partitions held now: the assigned ones, none while fenced. */
  private active = new Set<number>();
  private partitionCount = 0;
  /** The partition count `active` was applied with (a grown topic moves keys without moving partitions). */
  private appliedCount = 0;
  private held = new Set<string>();
  private fenced = false;
  private fenceTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly channelIds: readonly string[],
    private readonly fence: { afterMs: number; rebalanceMs: number },
    private readonly onChange: (change: OwnershipChange) => void,
    private readonly log: Logger,
  ) {}

  owns(key: string): boolean {
    return this.partitionCount > 0 && this.active.has(partitionOf(key, this.partitionCount));
  }

  /** The channels held now. */
  owned(): string[] {
    return [...this.held];
  }

  /** The partitions of the last assignment (also while fenced): what this member asks to keep at the next rebalance. */
  assignedPartitions(): number[] {
    return [...this.partitions].sort((x, y) => x - y);
  }

  /** The partition of `topics.commands` a channel belongs to, once the partition count is known. */
  partitionFor(channelId: string): number | undefined {
    return this.partitionCount ? partitionOf(channelId, this.partitionCount) : undefined;
  }

  /** The group's assignment after a rebalance: `partitions` of the `partitionCount` partitions of `topics.commands`. */
  assign(partitions: readonly number[], partitionCount: number): void {
    if (this.stopped) return;
    this.partitions = new Set(partitions);
    this.partitionCount = partitionCount;
    this.fenced = false;
    this.armFence();
    this.apply(this.partitions, 'assigned');
  }

  /** A heartbeat succeeded: the assignment still stands. */
  alive(): void {
    if (this.stopped) return;
    this.armFence();
    if (this.fenced) {
      this.fenced = false;
      this.log.info({ partitions: this.partitions.size }, 'heartbeat succeeded again: taking the assigned channels back');
      this.apply(this.partitions, 'heartbeat');
    }
  }

  /** A rebalance began: the assignment holds until this member rejoined, within the group's rebalance timeout. */
  rebalancing(): void {
    if (!this.stopped) this.armFence(this.fence.rebalanceMs);
  }

  /** Shutdown: no more changes are reported (the channels are closed by the shutdown itself). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.fenceTimer);
  }

  private armFence(ms = this.fence.afterMs): void {
    clearTimeout(this.fenceTimer);
    if (!this.partitions.size) return;
    this.fenceTimer = setTimeout(() => {
      if (this.stopped || !this.active.size) return;
      this.fenced = true;
      this.log.warn({ channels: this.held.size, afterMs: ms }, 'no successful heartbeat or rejoin to the Kafka group in time: releasing every channel (the group may give them to another replica)');
      this.apply(new Set<number>(), 'fenced');
    }, ms);
    this.fenceTimer.unref?.();
  }

  /** Makes `partitions` the held ones and reports the channels that moved (also when only spread conversations did). */
  private apply(partitions: ReadonlySet<number>, reason: OwnershipChange['reason']): void {
    const before = this.active;
    const countChanged = this.appliedCount !== this.partitionCount;
    this.appliedCount = this.partitionCount;
    this.active = new Set(partitions);
    const next = new Set(this.channelIds.filter((id) => this.owns(id)));
    const gained = [...next].filter((id) => !this.held.has(id));
    const lost = [...this.held].filter((id) => !next.has(id));
    this.held = next;
    const moved = (before.size > 0 || this.active.size > 0) && (countChanged || before.size !== this.active.size || [...before].some((p) => !this.active.has(p)));
    if (moved) this.onChange({ gained, lost, reason });
  }
}
