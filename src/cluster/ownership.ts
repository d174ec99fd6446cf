import type { Logger } from 'pino';
import { partitionOf } from '../kafka/partitioner';

/** Channels this replica starts and stops holding. */
export interface OwnershipChange {
  gained: string[];
  lost: string[];
  /** Why: `assigned` (a rebalance), `unassigned` (no assignment and Kafka unreachable: every channel held until one arrives). */
  reason: 'assigned' | 'unassigned';
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

/** When ClusterOwnership acts on silence from the group. */
export interface OwnershipTiming {
  /** No heartbeat this long (or no rejoin within the rebalance timeout): logged as cut off from the group; nothing is released. */
  quietAfterMs: number;
  rebalanceMs: number;
  /** No assignment this long after start while Kafka is unreachable: every channel is held until the first assignment. */
  unassignedAfterMs: number;
}

/**
 * Channel ownership through the command consumer group. A channel belongs to the partition of `topics.commands` its id
 * hashes to (Kafka's default partitioner, so the commands keyed by its id land there too), and this replica holds the
 * channels of the partitions the group assigned it. After every rebalance (`assign`) the difference is reported: lost
 * channels close their sockets (after the make-before-break overlap), gained ones open theirs.
 *
 * Kafka unreachable: a replica never gives up its channels because it hears nothing from the group. Kafka may be down
 * as a whole, and then no other replica could take them either: releasing would leave them with no listener and lose
 * what upstreams without history send meanwhile. Channels move only when the group, reachable again, assigns them
 * elsewhere. While one replica is cut off and another was assigned its channels, both hold them for a while: their
 * events share ids (deduplicated downstream) — an overlap rather than a gap. Likewise at start: a replica that got no
 * assignment within `unassignedAfterMs` while Kafka is unreachable (its producer is not connected, or its group
 * consumer failed to start or crashed since the group last answered) holds every channel until the first assignment.
 */
export class ClusterOwnership implements ChannelOwnership {
  readonly clustered = true;
  private partitions = new Set<number>();
  private partitionCount = 0;
  private held = new Set<string>();
  /** No assignment yet and Kafka unreachable: every channel is held. */
  private unassigned = false;
  private assigned = false;
  private quiet = false;
  /** The group consumer failed to start or crashed since the group last answered. */
  private groupFailing = false;
  private quietTimer?: NodeJS.Timeout;
  private unassignedTimer?: NodeJS.Timeout;
  private stopped = false;
  /** What `apply` last made this replica hold (`all`, `<partitions>/<count>`, or '' for nothing), to tell a move of spread conversations alone. */
  private lastApplied = '';

  constructor(
    private readonly channelIds: readonly string[],
    private readonly timing: OwnershipTiming,
    private readonly onChange: (change: OwnershipChange) => void,
    private readonly log: Logger,
    /** True when this replica can reach Kafka (its producer is connected). */
    private readonly kafkaReachable: () => boolean = () => true,
  ) {}

  owns(key: string): boolean {
    if (this.unassigned) return true;
    return this.partitionCount > 0 && this.partitions.has(partitionOf(key, this.partitionCount));
  }

  /** The partitions of the last assignment: what this member asks to keep at the next rebalance. */
  assignedPartitions(): number[] {
    return [...this.partitions].sort((x, y) => x - y);
  }

  /** The partition of `topics.commands` a channel belongs to, once the partition count is known. */
  partitionFor(channelId: string): number | undefined {
    return this.partitionCount ? partitionOf(channelId, this.partitionCount) : undefined;
  }

  /** Starts waiting for the first assignment (see `unassignedAfterMs`). */
  start(): void {
    if (this.stopped || this.assigned) return;
    clearTimeout(this.unassignedTimer);
    this.unassignedTimer = setTimeout(() => {
      if (this.stopped || this.assigned) return;
      // Kafka reachable: the join is merely slow (a rebalance in progress), so another replica may hold the channels.
      if (this.kafkaReachable() && !this.groupFailing) return this.start();
      this.unassigned = true;
      this.log.warn({ channels: this.channelIds.length, afterMs: this.timing.unassignedAfterMs }, 'no assignment from the Kafka group and Kafka unreachable: holding every channel until the group assigns them');
      this.apply('unassigned');
    }, this.timing.unassignedAfterMs);
    this.unassignedTimer.unref?.();
  }

  /** The group's assignment after a rebalance: `partitions` of the `partitionCount` partitions of `topics.commands`. */
  assign(partitions: readonly number[], partitionCount: number): void {
    if (this.stopped) return;
    this.assigned = true;
    this.unassigned = false;
    clearTimeout(this.unassignedTimer);
    this.partitions = new Set(partitions);
    this.partitionCount = partitionCount;
    this.heard();
    this.apply('assigned');
  }

  /** A heartbeat succeeded: the assignment still stands. */
  alive(): void {
    if (!this.stopped) this.heard();
  }

  /** The group consumer could not start or crashed (Kafka unreachable, for this replica at least). */
  unreachable(): void {
    this.groupFailing = true;
  }

  /** A rebalance began: no heartbeats until this member rejoined, within the group's rebalance timeout. */
  rebalancing(): void {
    if (!this.stopped) this.heard(this.timing.rebalanceMs);
  }

  /** Shutdown: no more changes are reported (the channels are closed by the shutdown itself). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.quietTimer);
    clearTimeout(this.unassignedTimer);
  }

  /** The group answered: re-arms the watch for silence (which only logs). */
  private heard(ms = this.timing.quietAfterMs): void {
    this.groupFailing = false;
    if (this.quiet) this.log.info({ channels: this.held.size }, 'the Kafka group answers again; channels move only if it assigns them elsewhere');
    this.quiet = false;
    clearTimeout(this.quietTimer);
    if (!this.held.size) return;
    this.quietTimer = setTimeout(() => {
      if (this.stopped) return;
      this.quiet = true;
      this.log.warn({ channels: this.held.size, afterMs: ms }, 'no heartbeat or rejoin to the Kafka group in time: keeping every channel (Kafka may be unreachable for every replica); they move when the group assigns them elsewhere');
    }, ms);
    this.quietTimer.unref?.();
  }

  /** Re-computes the held channels and reports those that moved (also when only spread conversations did). */
  private apply(reason: OwnershipChange['reason']): void {
    const next = new Set(this.channelIds.filter((id) => this.owns(id)));
    const gained = [...next].filter((id) => !this.held.has(id));
    const lost = [...this.held].filter((id) => !next.has(id));
    this.held = next;
    // What keys this replica holds: all of them, or its partitions under the current count (a grown topic moves keys).
    const before = this.lastApplied;
    const now = this.unassigned ? 'all' : this.partitions.size ? `${this.assignedPartitions().join(',')}/${this.partitionCount}` : '';
    this.lastApplied = now;
    if (gained.length || lost.length || before !== now) this.onChange({ gained, lost, reason });
  }

}
