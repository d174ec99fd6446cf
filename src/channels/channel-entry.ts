import type { ChannelConfig } from '../config/config.loader';
import type { ChannelMode, ProviderDefinition } from '../connectors/connector.interface';
import type { ConnectionSupervisor } from '../connectors/supervisor';
import type { ChannelState } from '../envelope/event-types';

/** What the channels service and the mode switcher keep per channel. */
export interface ChannelEntry {
  channel: ChannelConfig;
  /** Resolved once: config validation admits only registered providers. */
  definition: ProviderDefinition;
  supervisor?: ConnectionSupervisor;
  state: ChannelState;
  since: Date;
  lastEventAt?: Date;
  eventsIn: number;
  malformed: number;
  /** The current mode: the config's, a persisted one, or the latest runtime switch. */
  mode: ChannelMode;
  /** True while the supervisor runs (the bridge holds, or tries to hold, the upstream socket). */
  socketHeld: boolean;
  /** socket → webhook: the socket closes at the first accepted inbound post, or when `overlapTimer` fires. */
  closeOnInbound: boolean;
  overlapTimer?: NodeJS.Timeout;
  /** A supervisor stop in progress; a switch back to socket waits for it before starting again. */
  stopping?: Promise<void>;
  /** The previous runtime switch up to the moment its mode was persisted and set; the next one waits for it. */
  modeQueue?: Promise<void>;
  /** Cluster: the channel went to another replica; its socket closes when this fires (make before break). */
  releaseTimer?: NodeJS.Timeout;
  /** Called at the next `connected`. */
  connectedWaiters: Set<() => void>;
}

/** Resolves true at the channel's next `connected` (at once when connected), false after `timeoutMs`. */
export function untilConnected(entry: ChannelEntry, timeoutMs: number): Promise<boolean> {
  if (entry.state === 'connected') return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (connected: boolean): void => {
      clearTimeout(timer);
      entry.connectedWaiters.delete(onConnected);
      resolve(connected);
    };
    const onConnected = (): void => done(true);
    const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
    timer.unref?.();
    entry.connectedWaiters.add(onConnected);
  });
}
