import type { Logger } from 'pino';
import { CommandError, describeError } from '../common/errors';
import type { AppConfig } from '../config/config.loader';
import { providerDefinition } from '../connectors/registry';
import { ConnectionSupervisor, type StatusChange, type SupervisorPolicy } from '../connectors/supervisor';
import { maxPayloadFor } from '../connectors/connector.interface';
import type {
  ChannelMode, CommandOutcome, InboundContext, InboundParse, ProviderDefinition, UpstreamCommand,
} from '../connectors/connector.interface';
import type { InboundAuthConfig } from '../config/config.schema';
import { conversationKey, type ChannelOwnership, type OwnershipChange } from '../cluster/ownership';
import type { SharedState } from '../cluster/shared-state';
import { ChannelRequestError, startMode, takesWebhooks, type ModeSwitchResult } from './channel-mode';
import { untilConnected, type ChannelEntry } from './channel-entry';
import { ModePersistence, type DurableModes } from './mode-persistence';
import { FileModeStore, type ModeRecord } from './mode-store';
import { ModeSwitcher } from './mode-switcher';
import { FileChannelStore } from './state-store';
import { FrameIntake } from './frame-intake';
import type { DurableReceipt } from '../pipeline/durable';
import { createEvent } from '../envelope/envelope';
import { CHANNEL_STATES, type ChannelState, type ChannelStatusData } from '../envelope/event-types';
import type { Metrics } from '../health/metrics';
import type { DeadLetters } from '../pipeline/dead-letters';
import type { EventPipeline } from '../pipeline/pipeline';

/** What `GET /v1/channels` shows of one channel. */
export interface ChannelSnapshot {
  id: string;
  provider: string;
  /** The current mode (after runtime switches), not necessarily the config's. */
  mode: ChannelMode;
  /** True when `POST /v1/inbound/<id>` accepts posts for this channel (inbound auth configured). */
  acceptsInbound: boolean;
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
 * Runs one supervisor per channel; its frames become canonical events through the FrameIntake (limits, the provider's
 * pure mapper, fault boundary). One channel's failures never touch another: each has its own supervisor.
 */
export class ChannelsService {
  private readonly entries = new Map<string, ChannelEntry>();
  private readonly modes: ModeSwitcher;
  private readonly stores = new Map<string, FileChannelStore>();
  private readonly persistence: ModePersistence;
  private readonly file: FileModeStore;
  private readonly intake: FrameIntake;
  private started = false;
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    private readonly pipeline: EventPipeline,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Which channels this replica holds (all of them without `cluster.enabled`). */
    private readonly ownership: ChannelOwnership,
    /** With Kafka: the state topic, which wins over the state files at start. */
    durableModes?: DurableModes,
    /** Cluster: the state topic followed by every replica (mode switches made elsewhere, spread conversations). */
    private readonly shared?: SharedState,
  ) {
    this.intake = new FrameIntake(config.limits, pipeline, deadLetters, metrics, log);
    this.modes = new ModeSwitcher(config.modeSwitch, log, (entry, status) => this.publishStatus(entry, status));
    this.file = new FileModeStore(this.stores);
    this.persistence = new ModePersistence(this.file, durableModes, (id) => this.entries.get(id)?.mode ?? 'socket', log);
    shared?.onMode((channelId, record) => this.followMode(channelId, record));
    for (const channel of config.channels) {
      const definition = providerDefinition(channel.provider);
      if (!definition) throw new Error(`channel ${channel.id}: provider ${channel.provider} is not registered`);
      this.entries.set(channel.id, {
        channel, definition, state: 'disconnected', since: new Date(), eventsIn: 0, malformed: 0,
        mode: channel.mode, socketHeld: false, closeOnInbound: false, connectedWaiters: new Set(),
      });
    }
  }

  /**
   * Restores the channels' persisted modes, then builds every channel's connector and starts the socket-mode ones
   * this replica holds (webhook-mode ones only send commands; in a cluster the group's assignment comes later).
   */
  async start(): Promise<void> {
    const { reconnect } = this.config;
    const policy: SupervisorPolicy = {
      backoff: { initialDelayMs: reconnect.initialDelayMs, maxDelayMs: reconnect.maxDelayMs, multiplier: reconnect.multiplier },
      authBackoff: { initialDelayMs: reconnect.authInitialDelayMs, maxDelayMs: reconnect.authMaxDelayMs, multiplier: reconnect.multiplier },
      stableAfterMs: reconnect.stableAfterMs,
      authGrace: { withinMs: reconnect.authGraceMs, attempts: reconnect.authGraceAttempts, windowMs: reconnect.authGraceWindowMs },
    };
    for (const entry of this.entries.values()) {
      this.stores.set(entry.channel.id, new FileChannelStore(this.config.stateDir, entry.channel.id));
    }
    const restored = await this.persistence.restore([...this.entries.keys()]);
    for (const entry of this.entries.values()) {
      const { channel, definition } = entry;
      const log = this.log.child({ channel: channel.id, provider: channel.provider });
      const store = this.stores.get(channel.id) as FileChannelStore;
      const persisted = restored.get(channel.id);
      const { mode, note } = startMode(channel.mode, persisted?.mode, this.canTakeWebhooks(entry), persisted?.source);
      entry.mode = mode;
      if (note) log[note.level]({ mode, configuredMode: channel.mode }, note.msg);
      // Cluster: every channel's conversation state is shared, so whichever replica holds it next knows it.
      const registry = this.ownership.clustered && this.shared ? this.shared.registry(channel.id) : undefined;
      const placement = this.spread(entry) && registry
        ? { owns: (conversationId: string) => this.ownership.owns(conversationKey(channel.id, conversationId)), registry, handoverOverlapMs: this.config.cluster.handoverOverlapMs }
        : undefined;
      entry.supervisor = new ConnectionSupervisor(
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
        },
        log,
      );
      // A channel that spreads its conversations runs on every replica, each holding its share of them.
      if (entry.mode === 'socket' && (this.ownership.owns(channel.id) || this.spread(entry))) this.modes.openSocket(entry);
    }
    this.started = true;
    this.countHeld();
  }

  /** True for a channel whose conversations are spread across the replicas (cluster, `spreadsConversations`). */
  private spread(entry: ChannelEntry): boolean {
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
    if (!this.started || this.stopping) return;
    this.countHeld();
    if (change.lost.length) this.metrics.ownershipChanges.inc({ direction: 'lost', reason: change.reason }, change.lost.length);
    if (change.gained.length) this.metrics.ownershipChanges.inc({ direction: 'gained', reason: change.reason }, change.gained.length);
    if (change.lost.length) this.log.info({ channels: change.lost, reason: change.reason }, 'channels released to another replica');
    if (change.gained.length) this.log.info({ channels: change.gained, reason: change.reason }, 'channels taken over');
    // Channels that spread their conversations stay open everywhere: their connectors move conversations instead.
    for (const entry of this.entries.values()) if (this.spread(entry)) entry.supervisor?.connection.placementChanged?.();
    for (const id of change.lost) {
      const entry = this.entries.get(id);
      if (!entry?.socketHeld || this.spread(entry)) continue;
      // Make before break: the new holder connects first.
      const overlapMs = this.config.cluster.handoverOverlapMs;
      clearTimeout(entry.releaseTimer);
      entry.releaseTimer = setTimeout(() => {
        entry.releaseTimer = undefined;
        // Unless it came back meanwhile.
        if (!this.stopping && !this.ownership.owns(id)) this.modes.release(entry, 'another replica holds the channel now');
      }, overlapMs);
    }
    for (const id of change.gained) {
      const entry = this.entries.get(id);
      if (!entry || this.stopping) continue;
      clearTimeout(entry.releaseTimer);
      entry.releaseTimer = undefined;
      await entry.stopping;
      // Still ours after that wait (a quick second rebalance may have taken it again).
      if (entry.mode === 'socket' && !entry.socketHeld && this.ownership.owns(id)) this.modes.openSocket(entry);
    }
  }

  /**
   * The inbound auth of a channel that takes posts at `/v1/inbound/<id>`. Throws ChannelRequestError for an unknown
   * channel, a provider without a webhook API, or a channel without an `inbound` block (never unauthenticated).
   */
  inboundAuth(channelId: string): InboundAuthConfig {
    return this.inboundEntry(channelId).channel.inbound as InboundAuthConfig;
  }

  /**
   * One inbound post, already authenticated: JSON → the provider's frames → the same path as socket frames
   * (metrics, mapper, dedupe by stable id). A body that is not JSON or not the provider's shape is dead-lettered
   * (`inbound_malformed`) and nothing of it is published. Returns the frames handed to the pipeline, or the reason.
   * With a `receipt`, the durability of every event published is tracked on it (the post is answered once they are in Kafka).
   */
  receiveInbound(channelId: string, raw: Buffer, ctx: InboundContext = {}, receipt?: DurableReceipt): InboundParse {
    const entry = this.inboundEntry(channelId);
    const receivedAt = new Date();
    const parsed = this.parseInbound(entry, raw, ctx);
    if (!parsed.ok) {
      entry.malformed++;
      this.metrics.malformed.inc({ channel: channelId });
      this.log.warn({ channel: channelId, error: parsed.error, bytes: raw.length }, 'malformed inbound post dead-lettered');
      this.deadLetters.write({ reason: 'inbound_malformed', origin: 'inbound', channelId, frame: { event: ctx.suffix ?? 'inbound', payload: raw.toString('utf8') }, error: parsed.error });
      return parsed;
    }
    for (const frame of parsed.frames) this.intake.frame(entry, frame, receivedAt, receipt);
    this.modes.inboundAccepted(entry);
    return parsed;
  }

  /**
   * Switches a channel's mode at runtime (docs/modes.md), once it is persisted (Kafka state topic and/or `stateDir`;
   * ChannelRequestError `mode_not_persisted` when it could not be, and then nothing changes). socket → webhook: posts are
   * accepted at once; the socket closes after the first accepted post (or `modeSwitch.overlapMs`). webhook → socket:
   * the socket opens and the answer waits for `connected` (up to `modeSwitch.connectWaitMs`); posts stay accepted.
   * Duplicates from the overlap share their stable id and are dropped by the pipeline.
   */
  async setMode(channelId: string, target: ChannelMode): Promise<ModeSwitchResult> {
    const entry = this.entries.get(channelId);
    if (!entry) throw new ChannelRequestError('unknown_channel', `no channel with id "${channelId}"`);
    const previousMode = entry.mode;
    if (target === 'webhook' && !takesWebhooks(entry.definition)) {
      throw new ChannelRequestError('no_webhook_api', `provider ${entry.channel.provider} has no webhook API; channel ${channelId} stays in socket mode`);
    }
    if (target === 'webhook' && !entry.channel.inbound) {
      throw new ChannelRequestError('no_inbound_auth', `channel ${channelId} has no inbound auth configured (channels[].inbound: token or hmacSecret), so the upstream's posts could not be authenticated; it stays in ${previousMode} mode`);
    }
    const held = this.ownership.owns(channelId);
    // One switch of a channel at a time up to the point where its mode is set, so persisted and actual order agree.
    const turn = (entry.modeQueue ?? Promise.resolve()).then(async () => {
      if (!held) {
        // Another replica holds the socket: the state topic carries the switch to it (followMode), which applies it
        // the same way. Written even when it looks like a no-op here: this replica's view may lag by a record.
        const before = entry.mode;
        await this.persistence.persist(channelId, target);
        entry.mode = target;
        this.log.info({ channel: channelId, mode: target, previousMode: before }, 'channel mode switch persisted; the replica holding the channel applies it');
        const result: ModeSwitchResult = { id: channelId, mode: target, previousMode: before, changed: before !== target, socket: 'another_replica', state: entry.state };
        return { switching: Promise.resolve(result) };
      }
      if (target !== entry.mode) await this.persistence.persist(channelId, target);
      return { switching: this.modes.switch(entry, target) };
    });
    entry.modeQueue = turn.then(() => undefined, () => undefined);
    return (await turn).switching;
  }

  /**
   * Cluster: a mode record of the state topic (SharedState hands over the latest per channel once the history is read,
   * then each new one). The holder switches the way `PUT …/mode` does, without writing again; another replica only
   * notes the mode, so it starts the channel in it if it takes the channel over. A tombstone means the config's mode.
   */
  private followMode(channelId: string, record: ModeRecord | null): void {
    const entry = this.entries.get(channelId);
    if (!entry || !this.started) return;
    const target = record?.mode ?? entry.channel.mode;
    const turn = (entry.modeQueue ?? Promise.resolve()).then(async () => {
      if (this.stopping || target === entry.mode) return;
      if (target === 'webhook' && !this.canTakeWebhooks(entry)) {
        this.log.warn({ channel: channelId, mode: target }, 'a switch to webhook mode in the state topic is ignored: this channel has no inbound auth (or its provider no webhook API) here');
        return;
      }
      this.file.save(channelId, target).catch(() => undefined);
      if (this.ownership.owns(channelId) && !this.spread(entry)) {
        this.log.info({ channel: channelId, mode: target, previousMode: entry.mode }, 'channel mode switched at another replica; applying it here (this replica holds the channel)');
        void this.modes.switch(entry, target).catch((err: unknown) => this.log.error({ channel: channelId, err: describeError(err) }, 'applying a mode switch failed'));
      } else {
        entry.mode = target;
      }
    });
    entry.modeQueue = turn.then(() => undefined, () => undefined);
  }

  /** What the command gateway needs of a channel: provider, command types, echo matcher; undefined when unknown. */
  commandTarget(channelId: string): Pick<ProviderDefinition, 'name' | 'commandTypes' | 'isEcho' | 'spreadsConversations'> | undefined {
    return this.entries.get(channelId)?.definition;
  }

  /** Resolves true at the channel's next `connected` (at once when connected), false after `timeoutMs`. */
  whenConnected(channelId: string, timeoutMs: number): Promise<boolean> {
    const entry = this.entries.get(channelId);
    return entry ? untilConnected(entry, timeoutMs) : Promise.resolve(false);
  }

  /**
   * Delivers a command through the channel's connector. Throws CommandError: `unknown_channel`,
   * `unsupported_command` (naming the provider), or whatever the connector reports.
   */
  async execute(channelId: string, command: UpstreamCommand): Promise<CommandOutcome> {
    const entry = this.entries.get(channelId);
    if (!entry) throw new CommandError('unknown_channel', `no channel with id "${channelId}"`, { retriable: false, sent: false });
    const connector = entry.supervisor?.connection;
    if (!entry.definition.commandTypes.includes(command.type) || !connector?.execute) {
      throw new CommandError('unsupported_command', `provider ${entry.channel.provider} does not support command type "${command.type}"`, { retriable: false, sent: false });
    }
    return connector.execute(command);
  }

  /** Closes every upstream connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const e of this.entries.values()) clearTimeout(e.releaseTimer);
    await Promise.all([...this.entries.values()].map((e) => this.modes.stop(e)));
    await this.persistence.stop();
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
    const s: ChannelSnapshot = {
      id: e.channel.id,
      provider: e.channel.provider,
      mode: e.mode,
      acceptsInbound: this.canTakeWebhooks(e),
      state: e.state,
      held: this.ownership.owns(e.channel.id),
      since: e.since.toISOString(),
      reconnects: e.supervisor?.reconnects ?? 0,
      eventsIn: e.eventsIn,
      malformedFrames: e.malformed,
    };
    const conversations = e.supervisor?.connection.heldConversations?.();
    if (conversations !== undefined) s.conversationsHeld = conversations;
    if (e.lastEventAt) s.lastEventAt = e.lastEventAt.toISOString();
    if (e.supervisor?.lastError) s.lastError = e.supervisor.lastError;
    return s;
  }

  private onStatus(entry: ChannelEntry, change: StatusChange): void {
    const { channel } = entry;
    if (change.state !== entry.state) entry.since = new Date();
    entry.state = change.state;
    for (const s of CHANNEL_STATES) this.metrics.channelState.set({ channel: channel.id, state: s }, s === change.state ? 1 : 0);
    if (change.state === 'reconnecting' || change.state === 'auth_failed') this.metrics.reconnects.inc({ channel: channel.id, reason: change.reason ?? 'unknown' });
    const status: ChannelStatusData['status'] = { state: change.state, previous: change.previous, attempt: change.attempt, mode: entry.mode };
    if (change.reason) status.reason = change.reason;
    if (change.nextRetryInMs !== undefined) status.nextRetryInMs = change.nextRetryInMs;
    this.publishStatus(entry, status);
    if (change.state === 'connected') {
      this.modes.connected(entry);
    }
  }

  private publishStatus(entry: ChannelEntry, status: ChannelStatusData['status']): void {
    const { channel } = entry;
    const { event, stableId } = createEvent({
      type: 'chatbridge.channel.status',
      channelId: channel.id,
      provider: channel.provider,
      data: { channel: { id: channel.id, provider: channel.provider }, status },
    });
    this.pipeline.publish({ event, stableId, receivedAt: performance.now() });
  }

  private canTakeWebhooks(entry: ChannelEntry): boolean {
    return takesWebhooks(entry.definition) && Boolean(entry.channel.inbound);
  }

  private inboundEntry(channelId: string): ChannelEntry {
    const entry = this.entries.get(channelId);
    if (!entry) throw new ChannelRequestError('unknown_channel', `no channel with id "${channelId}"`);
    if (!takesWebhooks(entry.definition)) {
      throw new ChannelRequestError('no_webhook_api', `channel ${channelId} takes no inbound posts: provider ${entry.channel.provider} has no webhook API`);
    }
    if (!entry.channel.inbound) {
      throw new ChannelRequestError('no_inbound_auth', `channel ${channelId} takes no inbound posts: it has no inbound auth configured (channels[].inbound: token or hmacSecret)`);
    }
    return entry;
  }

  private parseInbound(entry: ChannelEntry, raw: Buffer, ctx: InboundContext): InboundParse {
    if (!raw.length) return { ok: false, error: 'empty body: expected the upstream\'s event as JSON' };
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      return { ok: false, error: `body is not JSON: ${describeError(err)}` };
    }
    try {
      // Presence checked by inboundEntry (takesWebhooks).
      return (entry.definition.inbound as NonNullable<ProviderDefinition['inbound']>)(body, ctx);
    } catch (err) {
      // Parsers are total by contract; a throw is a bug, and the body is still dead-lettered, not lost.
      return { ok: false, error: `inbound parser failed: ${describeError(err)}` };
    }
  }
}
