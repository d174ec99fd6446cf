import type { Logger } from 'pino';
import type { ModeSwitchConfig } from '../config/config.schema';
import type { ChannelMode } from '../connectors/connector.interface';
import type { ChannelStatusData } from '../envelope/event-types';
import { untilConnected, type ChannelEntry } from './channel-entry';
import type { ModeSwitchResult } from './channel-mode';

/**
 * The socket side of a channel's mode (docs/modes.md): opens and closes the supervised socket so that a switch loses
 * nothing. socket → webhook keeps the socket until the upstream's first accepted post (or `overlapMs`);
 * webhook → socket opens the socket first and answers once it is connected (or after `connectWaitMs`), while
 * posts stay accepted. Events that arrive both ways meanwhile share their stable id; the pipeline drops the copy.
 */
export class ModeSwitcher {
  constructor(
    private readonly settings: ModeSwitchConfig,
    private readonly log: Logger,
    private readonly publishStatus: (entry: ChannelEntry, status: ChannelStatusData['status']) => void,
  ) {}

  /** Switches an already validated (and persisted) channel to `target` and records it as a status event. */
  async switch(entry: ChannelEntry, target: ChannelMode): Promise<ModeSwitchResult> {
    const previousMode = entry.mode;
    const result = (changed: boolean): ModeSwitchResult => ({ id: entry.channel.id, mode: entry.mode, previousMode, changed, socket: this.socketStatus(entry), state: entry.state });
    if (target === previousMode) return result(false);
    entry.mode = target;
    this.log.info({ channel: entry.channel.id, mode: target, previousMode }, 'channel mode switched');
    this.publishStatus(entry, { state: entry.state, previous: entry.state, attempt: 0, reason: 'mode_changed', mode: target, previousMode });
    if (target === 'webhook') {
      if (entry.socketHeld) this.awaitFirstInbound(entry);
      return { ...result(true), overlapMs: this.settings.overlapMs };
    }
    this.cancelOverlap(entry);
    await entry.stopping;
    // Another switch may have come while the old socket was closing: only the latest one acts.
    if (entry.mode === 'socket') this.openSocket(entry);
    await this.waitConnected(entry);
    return result(true);
  }

  /** An inbound post of this channel was accepted: proof the upstream posts to us, so an overlapping socket can go. */
  inboundAccepted(entry: ChannelEntry): void {
    if (entry.closeOnInbound) this.closeSocket(entry, 'the upstream\'s first inbound post was accepted');
  }

  /** The channel reached `connected`: wakes a switch waiting for it. */
  connected(entry: ChannelEntry): void {
    for (const resolve of entry.connectedWaiters) resolve();
    entry.connectedWaiters.clear();
  }

  /** Starts holding the upstream socket. */
  openSocket(entry: ChannelEntry): void {
    entry.socketHeld = true;
    entry.supervisor?.start();
  }

  /** Shutdown: cancels the overlap and closes the socket. */
  async stop(entry: ChannelEntry): Promise<void> {
    this.cancelOverlap(entry);
    entry.socketHeld = false;
    await entry.stopping;
    await entry.supervisor?.stop();
  }

  private awaitFirstInbound(entry: ChannelEntry): void {
    const { overlapMs } = this.settings;
    this.cancelOverlap(entry);
    entry.closeOnInbound = true;
    entry.overlapTimer = setTimeout(() => {
      this.log.warn({ channel: entry.channel.id, overlapMs }, 'no inbound post within modeSwitch.overlapMs of the switch to webhook mode; closing the socket anyway (check the upstream\'s webhook URL and token)');
      this.closeSocket(entry, 'overlap limit reached');
    }, overlapMs);
    entry.overlapTimer.unref?.();
  }

  private cancelOverlap(entry: ChannelEntry): void {
    clearTimeout(entry.overlapTimer);
    entry.overlapTimer = undefined;
    entry.closeOnInbound = false;
  }

  private closeSocket(entry: ChannelEntry, why: string): void {
    this.cancelOverlap(entry);
    if (entry.mode === 'webhook') this.release(entry, `webhook mode: ${why}`);
  }

  /**
   * Closes the socket in the background (the bridge no longer holds it: webhook mode, or another replica holds the
   * channel); the stop is kept in `entry.stopping`, which a later `openSocket` caller waits for.
   */
  release(entry: ChannelEntry, why: string): void {
    this.cancelOverlap(entry);
    if (!entry.socketHeld) return;
    entry.socketHeld = false;
    this.log.info({ channel: entry.channel.id, why }, 'closing the upstream socket');
    const stopping = (entry.supervisor?.stop() ?? Promise.resolve()).finally(() => {
      if (entry.stopping === stopping) entry.stopping = undefined;
    });
    entry.stopping = stopping;
  }

  private socketStatus(entry: ChannelEntry): ModeSwitchResult['socket'] {
    if (!entry.socketHeld) return 'closed';
    if (entry.closeOnInbound) return 'closing_after_first_inbound';
    return entry.state === 'connected' ? 'connected' : 'connecting';
  }

  /** Resolves at the next `connected` (at once if connected), or after `connectWaitMs` either way. */
  private async waitConnected(entry: ChannelEntry): Promise<void> {
    if (entry.socketHeld) await untilConnected(entry, this.settings.connectWaitMs);
  }

}
