import type { Logger } from 'pino';
import type { ModeSwitchConfig } from '../config/config.schema';
import type { ChannelMode } from '../connectors/connector.interface';
import type { EventPipeline } from '../pipeline/pipeline';
import { channelState, untilConnected, type ChannelEntry } from './channel-entry';
import type { ModeSwitchResult } from './channel-mode';
import { publishChannelStatus } from './channel-status';

/**
 * The socket side of a channel's mode (docs/modes.md): opens and closes the supervised socket so that a switch loses
 * nothing. socket → webhook keeps the socket until the upstream's first accepted post (or `overlapMs`);
 * webhook → socket opens the socket first and answers once it is connected (or after `connectWaitMs`), while
 * posts stay accepted. Events that arrive both ways meanwhile share their stable id; the pipeline drops the copy.
 * The only writer of a channel's socket hold; the ChannelRuntime opens and releases sockets through it too
 * (start, ownership handover, stop).
 */
export class ModeSwitcher {
  /** socket → webhook: the channels whose socket closes at the first accepted inbound post, or when this timer fires. */
  private readonly overlaps = new Map<ChannelEntry, NodeJS.Timeout>();

  constructor(
    private readonly settings: ModeSwitchConfig,
    private readonly log: Logger,
    private readonly pipeline: EventPipeline,
  ) {}

  /** Switches an already validated (and persisted) channel to `target` and records it as a status event. */
  async switch(entry: ChannelEntry, target: ChannelMode): Promise<ModeSwitchResult> {
    const previousMode = entry.mode;
    const result = (changed: boolean): ModeSwitchResult => ({ id: entry.channel.id, mode: entry.mode, previousMode, changed, socket: this.socketStatus(entry), state: channelState(entry) });
    if (target === previousMode) return result(false);
    const previous = channelState(entry);
    entry.mode = target;
    this.log.info({ channel: entry.channel.id, mode: target, previousMode }, 'channel mode switched');
    publishChannelStatus(this.pipeline, entry, { state: channelState(entry), previous, attempt: 0, reason: 'mode_changed', mode: target, previousMode });
    if (target === 'webhook') {
      if (entry.socket.held) this.awaitFirstInbound(entry);
      return { ...result(true), overlapMs: this.settings.overlapMs };
    }
    this.cancelOverlap(entry);
    await entry.socket.stopping;
    // Another switch may have come while the old socket was closing: only the latest one acts.
    if (entry.mode === 'socket') this.openSocket(entry);
    await this.waitConnected(entry);
    return result(true);
  }

  /** An inbound post of this channel was accepted: proof the upstream posts to us, so an overlapping socket can go. */
  inboundAccepted(entry: ChannelEntry): void {
    if (this.overlaps.has(entry)) this.closeSocket(entry, 'the upstream\'s first inbound post was accepted');
  }

  /** Starts holding the upstream socket. */
  openSocket(entry: ChannelEntry): void {
    entry.socket.held = true;
    entry.link.supervisor?.start();
  }

  /** Shutdown: cancels the overlap and closes the socket. */
  async stop(entry: ChannelEntry): Promise<void> {
    this.cancelOverlap(entry);
    entry.socket.held = false;
    await entry.socket.stopping;
    await entry.link.supervisor?.stop();
  }

  private awaitFirstInbound(entry: ChannelEntry): void {
    const { overlapMs } = this.settings;
    this.cancelOverlap(entry);
    const timer = setTimeout(() => {
      this.log.warn({ channel: entry.channel.id, overlapMs }, 'no inbound post within modeSwitch.overlapMs of the switch to webhook mode; closing the socket anyway (check the upstream\'s webhook URL and token)');
      this.closeSocket(entry, 'overlap limit reached');
    }, overlapMs);
    timer.unref?.();
    this.overlaps.set(entry, timer);
  }

  private cancelOverlap(entry: ChannelEntry): void {
    clearTimeout(this.overlaps.get(entry));
    this.overlaps.delete(entry);
  }

  private closeSocket(entry: ChannelEntry, why: string): void {
    this.cancelOverlap(entry);
    if (entry.mode === 'webhook') this.release(entry, `webhook mode: ${why}`);
  }

  /**
   * Closes the socket in the background (the bridge no longer holds it: webhook mode, or another replica holds the
   * channel); the stop is kept in `entry.socket.stopping`, which a later `openSocket` caller waits for.
   */
  release(entry: ChannelEntry, why: string): void {
    this.cancelOverlap(entry);
    const { socket } = entry;
    if (!socket.held) return;
    socket.held = false;
    this.log.info({ channel: entry.channel.id, why }, 'closing the upstream socket');
    const stopping = (entry.link.supervisor?.stop() ?? Promise.resolve()).finally(() => {
      if (socket.stopping === stopping) socket.stopping = undefined;
    });
    socket.stopping = stopping;
  }

  private socketStatus(entry: ChannelEntry): ModeSwitchResult['socket'] {
    if (!entry.socket.held) return 'closed';
    if (this.overlaps.has(entry)) return 'closing_after_first_inbound';
    return entry.link.state === 'connected' ? 'connected' : 'connecting';
  }

  /** Resolves at the next `connected` (at once if connected), or after `connectWaitMs` either way. */
  private async waitConnected(entry: ChannelEntry): Promise<void> {
    if (entry.socket.held) await untilConnected(entry, this.settings.connectWaitMs);
  }
}
