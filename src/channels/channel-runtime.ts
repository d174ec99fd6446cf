import type { Logger } from 'pino';
import type { AppConfig } from '../config/config.loader';
import { providerDefinition } from '../connectors/registry';
import { ConnectionSupervisor, type StatusChange, type SupervisorPolicy } from '../connectors/supervisor';
import { maxPayloadFor, type ChannelMode } from '../connectors/connector.interface';
import { conversationKey, type ChannelOwnership, type OwnershipChange } from '../cluster/ownership';
import type { SharedState } from '../cluster/shared-state';
import type { ChannelState, ChannelStatusData } from '../envelope/event-types';
import type { Metrics } from '../health/metrics';
import type { EventPipeline } from '../pipeline/pipeline';
import { channelState, type ChannelEntry } from './channel-entry';
import { ChannelRequestError, takesInboundPosts } from './channel-mode';
import { publishChannelStatus } from './channel-status';
import type { FrameIntake } from './frame-intake';
import type { ModeSwitcher } from './mode-switcher';
import { FileChannelStore } from './state-store';

/** What `GET /v1/channels` shows of one channel. */
export interface ChannelSnapshot {
  id: string;
  provider: string;
  /** The current mode (after runtime switches), not necessarily the config's. */
  mode: ChannelMode;
  /** True when `POST /v1/inbound/<id>` accepts posts for this channel (inbound auth configured). */
  acceptsInbound: boolean;
  /** The connection's state; `inbound` in webhook mode once the socket is closed (docs/events.md). */
  state: ChannelState;
  /** True when this replica holds the channel (always, unless `cluster.enabled` gives it to another replica). */
  held: boolean;
  /**
   * Providers with one socket per conversation (Smartsupp visitors): the conversations whose sockets this replica
   * holds. In a cluster they are spread across the replicas, so each shows its share.
   */
  conversationsHeld?: number;
  since: string;
  lastEventAt?: string;
  reconnects: number;
  lastError?: string;
  eventsIn: number;
  malformedFrames: number;
}

/**
 * The configured channels and their connections: one supervisor per channel, whose frames become canonical events
 * through the FrameIntake (limits, the provider's pure mapper, fault boundary) and whose connection changes become
 * `chatbridge.channel.status` events. One channel's failures never touch another: each has its own supervisor.
 * In a cluster it opens and closes sockets as the channels move between replicas.
 */
export class ChannelRuntime {
  private readonly entries = new Map<string, ChannelEntry>();
  /** Cluster: channels gone to another replica; each one's socket closes when its timer fires (make before break). */
  private readonly releaseTimers = new Map<string, NodeJS.Timeout>();
  private started = false;
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    private readonly intake: FrameIntake,
    private readonly sockets: ModeSwitcher,
    private readonly pipeline: EventPipeline,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Which channels this replica holds (all of them without `cluster.enabled`). */
    private readonly ownership: ChannelOwnership,
    /** Cluster: the state topic followed by every replica (spread conversations). */
    private readonly shared?: SharedState,
  ) {
    for (const channel of config.channels) {
      const definition = providerDefinition(channel.provider);
      if (!definition) throw new Error(`channel ${channel.id}: provider ${channel.provider} is not registered`);
      this.entries.set(channel.id, {
        channel, definition, store: new FileChannelStore(config.stateDir, channel.id), mode: channel.mode,
        link: { state: 'disconnected', since: new Date(), connectedWaiters: new Set() },
        traffic: { eventsIn: 0, malformed: 0 },
        socket: { held: false },
      });
    }
    metrics.readChannelStatesFrom(() => [...this.entries.values()].map((e) => ({ channel: e.channel.id, state: channelState(e) })));
  }

  /** The channel, or undefined for an unknown id. */
  entry(channelId: string): ChannelEntry | undefined {
    return this.entries.get(channelId);
  }

  /** Every configured channel. */
  all(): ChannelEntry[] {
    return [...this.entries.values()];
  }

  /** True from the end of `start` until `stop` begins. */
  get running(): boolean {
    return this.started && !this.stopping;
  }

  /**
   * Builds every channel's connector and starts the socket-mode ones this replica holds, in the modes the
   * ModeController restored (webhook-mode ones only send commands; in a cluster the group's assignment comes later).
   */
  start(): void {
    const { reconnect } = this.config;
    const policy: SupervisorPolicy = {
      backoff: { initialDelayMs: reconnect.initialDelayMs, maxDelayMs: reconnect.maxDelayMs, multiplier: reconnect.multiplier },
      authBackoff: { initialDelayMs: reconnect.authInitialDelayMs, maxDelayMs: reconnect.authMaxDelayMs, multiplier: reconnect.multiplier },
      stableAfterMs: reconnect.stableAfterMs,
      authGrace: { withinMs: reconnect.authGraceMs, attempts: reconnect.authGraceAttempts, windowMs: reconnect.authGraceWindowMs },
    };
    for (const entry of this.entries.values()) {
      const { channel, definition, store } = entry;
      const log = this.log.child({ channel: channel.id, provider: channel.provider });
      // Cluster: every channel's conversation state is shared, so whichever replica holds it next knows it.
      const registry = this.ownership.clustered && this.shared ? this.shared.registry(channel.id) : undefined;
      const placement = this.spreads(entry) && registry
        ? { owns: (conversationId: string) => this.ownership.owns(conversationKey(channel.id, conversationId)), registry, handoverOverlapMs: this.config.cluster.handoverOverlapMs }
        : undefined;
      entry.link.supervisor = new ConnectionSupervisor(
        // The connector asks for the mode at each command: it follows runtime switches.
        (hooks) => definition.createConnector({ channelId: channel.id, options: channel.options, hooks, logger: log, mode: () => entry.mode, store, policy, placement, maxPayloadBytes: maxPayloadFor(this.config.limits.maxFrameBytes), registry }),
        policy,
        {
          status: (change) => this.onStatus(entry, change),
          frame: (frame, receivedAt) => this.intake.frame(entry, frame, receivedAt),
          fault: (where, err, input) => this.intake.fault(entry, where, err, input),
          // A refused subscription leaves the channel connected: counted and logged; the connector retries it alone.
          subscriptionFailed: (subscription, err, retryInMs) => {
            this.metrics.subscriptionFailures.inc({ channel: channel.id, code: err.code });
            log.warn({ subscription, code: err.code, retryInMs }, `subscription ${subscription} failed: ${err.message}`);
          },
          reconnecting: (reason) => this.metrics.reconnects.inc({ channel: channel.id, reason }),
        },
        log,
      );
      // A channel that spreads its conversations runs on every replica, each holding its share of them.
      if (entry.mode === 'socket' && (this.ownership.owns(channel.id) || this.spreads(entry))) this.sockets.openSocket(entry);
    }
    this.started = true;
    this.countHeld();
  }

  /** True for a channel whose conversations are spread across the replicas (cluster, `spreadsConversations`). */
  spreads(entry: ChannelEntry): boolean {
    return this.ownership.clustered && Boolean(this.shared) && entry.definition.spreadsConversations === true;
  }

  private countHeld(): void {
    this.metrics.channelsHeld.set([...this.entries.keys()].filter((id) => this.ownership.owns(id)).length);
  }

  /**
   * A rebalance moved channels. Gained socket-mode ones open their sockets; lost ones close theirs after
   * `cluster.handoverOverlapMs` (make before break: the new holder connects meanwhile).
   * Events both replicas receive around the handover share their stable id.
   */
  async applyOwnership(change: OwnershipChange): Promise<void> {
    if (!this.running) return;
    this.countHeld();
    if (change.lost.length) this.metrics.ownershipChanges.inc({ direction: 'lost', reason: change.reason }, change.lost.length);
    if (change.gained.length) this.metrics.ownershipChanges.inc({ direction: 'gained', reason: change.reason }, change.gained.length);
    if (change.lost.length) this.log.info({ channels: change.lost, reason: change.reason }, 'channels released to another replica');
    if (change.gained.length) this.log.info({ channels: change.gained, reason: change.reason }, 'channels taken over');
    // Channels that spread their conversations stay open everywhere: their connectors move conversations instead.
    for (const entry of this.entries.values()) if (this.spreads(entry)) entry.link.supervisor?.connection.placementChanged?.();
    for (const id of change.lost) {
      const entry = this.entries.get(id);
      if (!entry?.socket.held || this.spreads(entry)) continue;
      // Make before break: the new holder connects first.
      clearTimeout(this.releaseTimers.get(id));
      this.releaseTimers.set(id, setTimeout(() => {
        this.releaseTimers.delete(id);
        // Unless it came back meanwhile.
        if (!this.stopping && !this.ownership.owns(id)) this.sockets.release(entry, 'another replica holds the channel now');
      }, this.config.cluster.handoverOverlapMs));
    }
    for (const id of change.gained) {
      const entry = this.entries.get(id);
      if (!entry || this.stopping) continue;
      clearTimeout(this.releaseTimers.get(id));
      this.releaseTimers.delete(id);
      await entry.socket.stopping;
      // Still ours after that wait (a quick second rebalance may have taken it again).
      if (entry.mode === 'socket' && !entry.socket.held && this.ownership.owns(id)) this.sockets.openSocket(entry);
    }
  }

  /** Closes every upstream connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.releaseTimers.values()) clearTimeout(timer);
    await Promise.all([...this.entries.values()].map((e) => this.sockets.stop(e)));
  }

  /**
   * Makes the channel's supervisor drop its upstream connection and connect again now; answers the channel's
   * snapshot. Throws ChannelRequestError `unknown_channel`, or `socket_not_held` when this replica holds no socket
   * for it (webhook mode, another replica holds it, or the bridge is stopping).
   */
  async reconnect(channelId: string): Promise<ChannelSnapshot> {
    const entry = this.entries.get(channelId);
    if (!entry) throw new ChannelRequestError('unknown_channel', `no channel with id "${channelId}"`);
    const why = entry.mode !== 'socket' ? `it is in ${entry.mode} mode` : !entry.socket.held ? 'this replica does not hold its socket (another replica does, or it is being released)' : undefined;
    if (why || !this.running || !(await entry.link.supervisor?.reconnectNow())) {
      throw new ChannelRequestError('socket_not_held', `channel ${channelId} has no upstream socket to reconnect here: ${why ?? 'the bridge is stopping'}`);
    }
    return this.snapshot(entry);
  }

  /** Snapshots for the API and readiness. */
  list(): ChannelSnapshot[] {
    return [...this.entries.values()].map((e) => this.snapshot(e));
  }

  /** One channel's snapshot, or undefined. */
  get(id: string): ChannelSnapshot | undefined {
    const e = this.entries.get(id);
    return e ? this.snapshot(e) : undefined;
  }

  private snapshot(e: ChannelEntry): ChannelSnapshot {
    const { link, traffic } = e;
    const s: ChannelSnapshot = {
      id: e.channel.id,
      provider: e.channel.provider,
      mode: e.mode,
      acceptsInbound: takesInboundPosts(e),
      state: channelState(e),
      held: this.ownership.owns(e.channel.id),
      since: link.since.toISOString(),
      reconnects: link.supervisor?.reconnects ?? 0,
      eventsIn: traffic.eventsIn,
      malformedFrames: traffic.malformed,
    };
    const conversations = link.supervisor?.connection.heldConversations?.();
    if (conversations !== undefined) s.conversationsHeld = conversations;
    if (traffic.lastEventAt) s.lastEventAt = traffic.lastEventAt.toISOString();
    if (link.supervisor?.lastError) s.lastError = link.supervisor.lastError;
    return s;
  }

  private onStatus(entry: ChannelEntry, change: StatusChange): void {
    const { link } = entry;
    const previous = channelState(entry);
    if (change.state !== link.state) link.since = new Date();
    link.state = change.state;
    // A socket closed in webhook mode (after a switch's overlap) leaves the channel `inbound`, not `disconnected`.
    const status: ChannelStatusData['status'] = { state: channelState(entry), previous, attempt: change.attempt, mode: entry.mode };
    if (change.reason) status.reason = change.reason;
    if (change.nextRetryInMs !== undefined) status.nextRetryInMs = change.nextRetryInMs;
    publishChannelStatus(this.pipeline, entry, status);
    if (change.state === 'connected') {
      // Wakes what waits for the connection: a mode switch's answer, a held command.
      for (const wake of link.connectedWaiters) wake();
      link.connectedWaiters.clear();
    }
  }
}
