import type { Logger } from 'pino';
import { describeError } from '../common/errors';
import type { ChannelMode } from '../connectors/connector.interface';
import type { ChannelOwnership } from '../cluster/ownership';
import type { SharedState } from '../cluster/shared-state';
import { channelState } from './channel-entry';
import { ChannelRequestError, startMode, takesInboundPosts, takesWebhooks, type ModeSwitchResult } from './channel-mode';
import type { ChannelRuntime } from './channel-runtime';
import { ModePersistence, type DurableModes } from './mode-persistence';
import { FileModeStore, type ModeRecord } from './mode-store';
import type { ModeSwitcher } from './mode-switcher';

/**
 * A channel's mode (docs/modes.md): the one it starts in (persisted by an earlier switch, or the config's), runtime
 * switches (`PUT /v1/channels/:id/mode`), persisted before they are made, and in a cluster the switches made at other
 * replicas, followed through the state topic. Its ModeSwitcher opens and closes the socket so a switch loses nothing.
 */
export class ModeController {
  private readonly file: FileModeStore;
  private readonly persistence: ModePersistence;
  /** Per channel: the previous switch up to the moment its mode was persisted and set; the next one waits for it. */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    private readonly channels: ChannelRuntime,
    private readonly sockets: ModeSwitcher,
    private readonly ownership: ChannelOwnership,
    private readonly log: Logger,
    /** With Kafka: the state topic, which wins over the state files at start. */
    durableModes?: DurableModes,
    /** Cluster: the state topic followed by every replica (mode switches made elsewhere). */
    shared?: SharedState,
  ) {
    this.file = new FileModeStore(new Map(channels.all().map((e) => [e.channel.id, e.store])));
    this.persistence = new ModePersistence(this.file, durableModes, (id) => channels.entry(id)?.mode ?? 'socket', log);
    shared?.onMode((channelId, record) => this.followMode(channelId, record));
  }

  /** Restores the channels' persisted modes; the ChannelRuntime starts them in these modes. */
  async restore(): Promise<void> {
    const entries = this.channels.all();
    const restored = await this.persistence.restore(entries.map((e) => e.channel.id));
    for (const entry of entries) {
      const { channel } = entry;
      const persisted = restored.get(channel.id);
      const { mode, note } = startMode(channel.mode, persisted?.mode, takesInboundPosts(entry), persisted?.source);
      entry.mode = mode;
      if (note) this.log.child({ channel: channel.id, provider: channel.provider })[note.level]({ mode, configuredMode: channel.mode }, note.msg);
    }
  }

  /**
   * Switches a channel's mode at runtime (docs/modes.md), once it is persisted (Kafka state topic and/or `stateDir`;
   * ChannelRequestError `mode_not_persisted` when it could not be, and then nothing changes). socket → webhook: posts are
   * accepted at once; the socket closes after the first accepted post (or `modeSwitch.overlapMs`). webhook → socket:
   * the socket opens and the answer waits for `connected` (up to `modeSwitch.connectWaitMs`); posts stay accepted.
   * Duplicates from the overlap share their stable id and are dropped by the pipeline.
   */
  async setMode(channelId: string, target: ChannelMode): Promise<ModeSwitchResult> {
    const entry = this.channels.entry(channelId);
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
    const turn = this.next(channelId, async () => {
      if (!held) {
        // Another replica holds the socket: the state topic carries the switch to it (followMode), which applies it
        // the same way. Written even when it looks like a no-op here: this replica's view may lag by a record.
        const before = entry.mode;
        await this.persistence.persist(channelId, target);
        entry.mode = target;
        this.log.info({ channel: channelId, mode: target, previousMode: before }, 'channel mode switch persisted; the replica holding the channel applies it');
        const result: ModeSwitchResult = { id: channelId, mode: target, previousMode: before, changed: before !== target, socket: 'another_replica', state: channelState(entry) };
        return { switching: Promise.resolve(result) };
      }
      if (target !== entry.mode) await this.persistence.persist(channelId, target);
      return { switching: this.sockets.switch(entry, target) };
    });
    return (await turn).switching;
  }

  /**
   * Cluster: a mode record of the state topic (SharedState hands over the latest per channel once the history is read,
   * then each new one). The holder switches the way `PUT …/mode` does, without writing again; another replica only
   * notes the mode, so it starts the channel in it if it takes the channel over. A tombstone means the config's mode.
   */
  private followMode(channelId: string, record: ModeRecord | null): void {
    const entry = this.channels.entry(channelId);
    if (!entry || !this.channels.running) return;
    const target = record?.mode ?? entry.channel.mode;
    void this.next(channelId, async () => {
      if (!this.channels.running || target === entry.mode) return;
      if (target === 'webhook' && !takesInboundPosts(entry)) {
        this.log.warn({ channel: channelId, mode: target }, 'a switch to webhook mode in the state topic is ignored: this channel has no inbound auth (or its provider no webhook API) here');
        return;
      }
      this.file.save(channelId, target).catch(() => undefined);
      if (this.ownership.owns(channelId) && !this.channels.spreads(entry)) {
        this.log.info({ channel: channelId, mode: target, previousMode: entry.mode }, 'channel mode switched at another replica; applying it here (this replica holds the channel)');
        void this.sockets.switch(entry, target).catch((err: unknown) => this.log.error({ channel: channelId, err: describeError(err) }, 'applying a mode switch failed'));
      } else {
        entry.mode = target;
      }
    }).catch(() => undefined);
  }

  /** Runs `step` after the channel's previous switch step, whether that one succeeded or not. */
  private next<T>(channelId: string, step: () => Promise<T>): Promise<T> {
    const turn = (this.queues.get(channelId) ?? Promise.resolve()).then(step);
    this.queues.set(channelId, turn.then(() => undefined, () => undefined));
    return turn;
  }

  /** Releases the durable store's clients (after the channels have stopped). */
  async stop(): Promise<void> {
    await this.persistence.stop();
  }
}
