import type { ChannelConfig } from '../config/config.loader';
import type { ChannelMode, ProviderDefinition } from '../connectors/connector.interface';
import type { ConnectionSupervisor } from '../connectors/supervisor';
import type { ChannelState } from '../envelope/event-types';
import type { FileChannelStore } from './state-store';

/** The supervised connection of a channel. Written by the ChannelRuntime only. */
export interface ChannelLink {
  /** Built at start. */
  supervisor?: ConnectionSupervisor;
  /** The connection's state as the supervisor reported it (never `inbound`: see channelState). */
  state: ChannelState;
  since: Date;
  /** Woken at the next `connected` (see untilConnected). */
  readonly connectedWaiters: Set<() => void>;
}

/** What a channel delivered, for its snapshot. Written by the FrameIntake only (socket frames and inbound posts). */
export interface ChannelTraffic {
  lastEventAt?: Date;
  eventsIn: number;
  malformed: number;
}

/** Whether the bridge holds the channel's upstream socket. Written by the ModeSwitcher only. */
export interface SocketHold {
  /** True while the supervisor runs (the bridge holds, or tries to hold, the upstream socket). */
  held: boolean;
  /** A supervisor stop in progress; opening the socket again waits for it. */
  stopping?: Promise<void>;
}

/**
 * One channel as the channel roles share it: the ChannelRuntime (connection), the FrameIntake (traffic), the
 * ModeController with its ModeSwitcher (mode, socket hold), the inbound receiver and the command router (readers).
 * Each part names its only writer; what a single role needs alone (timers, queues) stays private to that role.
 */
export interface ChannelEntry {
  readonly channel: ChannelConfig;
  /** Resolved once: config validation admits only registered providers. */
  readonly definition: ProviderDefinition;
  /** The channel's state file under `stateDir`: its connector's store, and where its mode is kept. */
  readonly store: FileChannelStore;
  /**
   * The current mode: the config's, a persisted one, or the latest runtime switch. Written by the ModeController
   * (at start, and for switches applied elsewhere) and its ModeSwitcher (when a switch applies here).
   */
  mode: ChannelMode;
  readonly link: ChannelLink;
  readonly traffic: ChannelTraffic;
  readonly socket: SocketHold;
}

/**
 * The channel's state as the API, the metrics and the status events show it: the connection's, except that a channel
 * in webhook mode with no socket open is `inbound` (it receives through its inbound route, nothing is down).
 */
export function channelState(entry: Pick<ChannelEntry, 'mode' | 'link'>): ChannelState {
  return entry.mode === 'webhook' && entry.link.state === 'disconnected' ? 'inbound' : entry.link.state;
}

/** Resolves true at the channel's next `connected` (at once when connected), false after `timeoutMs`. */
export function untilConnected(entry: ChannelEntry, timeoutMs: number): Promise<boolean> {
  const { link } = entry;
  if (link.state === 'connected') return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (connected: boolean): void => {
      clearTimeout(timer);
      link.connectedWaiters.delete(onConnected);
      resolve(connected);
    };
    const onConnected = (): void => done(true);
    const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
    timer.unref?.();
    link.connectedWaiters.add(onConnected);
  });
}
