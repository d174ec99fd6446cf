import type { Logger } from 'pino';
import { CommandError, describeError } from '../common/errors';
import type { AppConfig, ChannelConfig } from '../config/config.loader';
import { providerDefinition } from '../connectors/registry';
import { ConnectionSupervisor, type StatusChange, type SupervisorPolicy } from '../connectors/supervisor';
import type { CommandOutcome, ProviderDefinition, UpstreamCommand, UpstreamFrame } from '../connectors/connector.interface';
import { FileChannelState } from './state-store';
import { createEvent } from '../envelope/envelope';
import { CHANNEL_STATES, type ChannelState } from '../envelope/event-types';
import type { Metrics } from '../health/metrics';
import type { DeadLetters } from '../pipeline/dead-letters';
import type { EventPipeline } from '../pipeline/pipeline';

/** What `GET /v1/channels` shows of one channel. */
export interface ChannelSnapshot {
  id: string;
  provider: string;
  mode: string;
  state: ChannelState;
  since: string;
  lastEventAt?: string;
  reconnects: number;
  lastError?: string;
  eventsIn: number;
  malformedFrames: number;
}

interface Entry {
  channel: ChannelConfig;
  /** Resolved once: config validation admits only registered providers. */
  definition: ProviderDefinition;
  supervisor?: ConnectionSupervisor;
  state: ChannelState;
  since: Date;
  lastEventAt?: Date;
  eventsIn: number;
  malformed: number;
}

/**
 * Runs one supervisor per channel and turns its frames into canonical events through the provider's pure
 * mapper. One channel's failures never touch another: each has its own supervisor and its own try/catch.
 */
export class ChannelsService {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly config: AppConfig,
    private readonly pipeline: EventPipeline,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    for (const channel of config.channels) {
      const definition = providerDefinition(channel.provider);
      if (!definition) throw new Error(`channel ${channel.id}: provider ${channel.provider} is not registered`);
      this.entries.set(channel.id, { channel, definition, state: 'disconnected', since: new Date(), eventsIn: 0, malformed: 0 });
    }
  }

  /** Builds every channel's connector and starts the socket-mode ones (webhook-mode ones only send commands). */
  start(): void {
    const { reconnect } = this.config;
    const policy: SupervisorPolicy = {
      backoff: { initialDelayMs: reconnect.initialDelayMs, maxDelayMs: reconnect.maxDelayMs, multiplier: reconnect.multiplier },
      authBackoff: { initialDelayMs: reconnect.authInitialDelayMs, maxDelayMs: reconnect.authMaxDelayMs, multiplier: reconnect.multiplier },
      stableAfterMs: reconnect.stableAfterMs,
    };
    for (const entry of this.entries.values()) {
      const { channel, definition } = entry;
      const log = this.log.child({ channel: channel.id, provider: channel.provider });
      const state = new FileChannelState(this.config.stateDir, channel.id);
      entry.supervisor = new ConnectionSupervisor(
        (hooks) => definition.createConnector({ channelId: channel.id, options: channel.options, hooks, logger: log, mode: () => channel.mode, state, policy }),
        policy,
        { status: (change) => this.onStatus(entry, change), frame: (frame, receivedAt) => this.onFrame(entry, frame, receivedAt) },
        log,
      );
      if (channel.mode === 'socket') entry.supervisor.start();
    }
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
    await Promise.all([...this.entries.values()].map((e) => e.supervisor?.stop()));
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

  private snapshot(e: Entry): ChannelSnapshot {
    const s: ChannelSnapshot = {
      id: e.channel.id,
      provider: e.channel.provider,
      mode: e.channel.mode,
      state: e.state,
      since: e.since.toISOString(),
      reconnects: e.supervisor?.reconnects ?? 0,
      eventsIn: e.eventsIn,
      malformedFrames: e.malformed,
    };
    if (e.lastEventAt) s.lastEventAt = e.lastEventAt.toISOString();
    if (e.supervisor?.lastError) s.lastError = e.supervisor.lastError;
    return s;
  }

  private onFrame(entry: Entry, frame: UpstreamFrame, receivedAt: Date): void {
    const { channel, definition } = entry;
    const t0 = performance.now();
    this.metrics.frames.inc({ channel: channel.id });
    entry.lastEventAt = receivedAt;
    let mapped;
    try {
      mapped = definition.map(frame, { channelId: channel.id, provider: channel.provider, receivedAt, options: channel.options });
    } catch (err) {
      // Mappers are total by contract; a throw is a bug. The frame is kept in the dead letters, not lost.
      entry.malformed++;
      this.metrics.malformed.inc({ channel: channel.id });
      this.log.error({ channel: channel.id, event: frame.event, err: describeError(err) }, 'mapper failed; frame dead-lettered');
      void this.deadLetters.write({ reason: 'unmappable', origin: 'mapper', channelId: channel.id, frame: { event: frame.event, payload: safePayload(frame.payload) }, error: describeError(err) });
      return;
    }
    for (const m of mapped) {
      if (m.event.type === 'chatbridge.provider.event' && m.event.data.upstream.error) {
        entry.malformed++;
        this.metrics.malformed.inc({ channel: channel.id });
        this.log.warn({ channel: channel.id, event: frame.event, error: m.event.data.upstream.error }, 'malformed upstream frame published as provider event');
      }
      if (this.pipeline.publish({ event: m.event, stableId: m.stableId, receivedAt: t0 })) entry.eventsIn++;
    }
  }

  private onStatus(entry: Entry, change: StatusChange): void {
    const { channel } = entry;
    if (change.state !== entry.state) entry.since = new Date();
    entry.state = change.state;
    for (const s of CHANNEL_STATES) this.metrics.channelState.set({ channel: channel.id, state: s }, s === change.state ? 1 : 0);
    if (change.state === 'reconnecting' || change.state === 'auth_failed') this.metrics.reconnects.inc({ channel: channel.id, reason: change.reason ?? 'unknown' });
    const status: { state: ChannelState; previous: ChannelState; attempt: number; reason?: string; nextRetryInMs?: number } = {
      state: change.state, previous: change.previous, attempt: change.attempt,
    };
    if (change.reason) status.reason = change.reason;
    if (change.nextRetryInMs !== undefined) status.nextRetryInMs = change.nextRetryInMs;
    const { event, stableId } = createEvent({
      type: 'chatbridge.channel.status',
      channelId: channel.id,
      provider: channel.provider,
      data: { channel: { id: channel.id, provider: channel.provider }, status },
    });
    this.pipeline.publish({ event, stableId, receivedAt: performance.now() });
  }
}

/** A frame payload that JSON can hold (binary frames become base64). */
function safePayload(payload: unknown): unknown {
  if (Buffer.isBuffer(payload)) return { base64: payload.toString('base64') };
  try {
    JSON.stringify(payload);
    return payload;
  } catch {
    return String(payload);
  }
}
