import type { Logger } from 'pino';
import { describeError } from '../common/errors';
import { withTimeout } from '../common/wait';
import type { ChannelMode } from '../connectors/connector.interface';
import { ChannelRequestError } from './channel-mode';
import type { FileModeStore, ModeStore, PersistedModes } from './mode-store';

/** A durable (cross-machine) mode store and the longest wait for one of its reads or writes. */
export interface DurableModes {
  store: ModeStore;
  timeoutMs: number;
}

/** How one channel's persisted mode was resolved at start. */
export interface RestoredMode {
  /** The persisted mode; absent: the config's mode applies. */
  mode?: ChannelMode;
  /** Where `mode` came from, for the log: `stateDir` or `topic <name>`. */
  source?: string;
  /** The state file is brought in line with the topic: `set` to `mode`, or `clear` its mode. */
  fileFix?: 'set' | 'clear';
  /** Only the state file had a mode (from before the topic was used): it is written to the topic. */
  migrate?: boolean;
}

/**
 * Which persisted mode each channel starts with. With a readable topic, the topic decides: its record, or the
 * config's mode after a tombstone; the state file is only a local copy, corrected to match. A channel the topic
 * has never seen keeps the state file's mode, which is then written to the topic. Without a topic (no Kafka, or
 * not readable in time) the state file decides.
 */
export function resolveStartModes(ids: readonly string[], file: PersistedModes, topic: PersistedModes | undefined, topicSource = 'topic'): Map<string, RestoredMode> {
  const out = new Map<string, RestoredMode>();
  for (const id of ids) {
    const local = file.get(id)?.mode;
    if (!topic) {
      out.set(id, local ? { mode: local, source: 'stateDir' } : {});
    } else if (topic.has(id)) {
      const record = topic.get(id);
      if (record) out.set(id, local === record.mode ? { mode: record.mode, source: topicSource } : { mode: record.mode, source: topicSource, fileFix: 'set' });
      else out.set(id, local ? { fileFix: 'clear' } : {});
    } else {
      out.set(id, local ? { mode: local, source: 'stateDir', migrate: true } : {});
    }
  }
  return out;
}

/**
 * Reads the channels' persisted modes at start and persists each runtime switch before it is made: to the durable
 * store (the Kafka state topic) when there is one, and to the state file, which then serves as the fallback for a
 * start when the topic cannot be read.
 */
export class ModePersistence {
  constructor(
    private readonly file: FileModeStore,
    private readonly durable: DurableModes | undefined,
    /** The channel's mode now (to repair a write that lands after it was reported as failed). */
    private readonly current: (channelId: string) => ChannelMode,
    private readonly log: Logger,
  ) {}

  /** Each channel's persisted mode (see resolveStartModes); an unreadable topic is a warning, not a failed start. */
  async restore(ids: readonly string[]): Promise<Map<string, RestoredMode>> {
    const fromFile = await this.file.load();
    let fromTopic: PersistedModes | undefined;
    if (this.durable && ids.length) {
      const { store } = this.durable;
      try {
        fromTopic = await store.load();
      } catch (err) {
        const fallback = ids.filter((id) => fromFile.has(id)).map((id) => `${id}=${fromFile.get(id)?.mode}`);
        this.log.warn(
          { source: store.source, err: describeError(err), restoredFromStateDir: fallback },
          `channel modes not restored from ${store.source} (${describeError(err)}): channels start in the config's mode, or in the mode kept in stateDir (${fallback.length ? fallback.join(', ') : 'none'}); a switch made by PUT /v1/channels/:id/mode on another machine is not applied`,
        );
      }
    }
    const resolved = resolveStartModes(ids, fromFile, fromTopic, this.durable?.store.source);
    for (const [id, r] of resolved) {
      try {
        if (r.fileFix === 'set' && r.mode) await this.file.save(id, r.mode);
        if (r.fileFix === 'clear') this.file.clear(id);
      } catch (err) {
        this.log.warn({ channel: id, err: describeError(err) }, 'could not update the channel\'s state file with its mode from the state topic');
      }
      if (r.migrate && r.mode) {
        await this.persist(id, r.mode).catch((err: unknown) => this.log.warn({ channel: id, err: describeError(err) }, 'the mode kept in stateDir could not be copied to the state topic; it is used for this start'));
      }
    }
    return resolved;
  }

  /** Persists a channel's new mode; throws ChannelRequestError `mode_not_persisted` when it could not be. */
  async persist(channelId: string, mode: ChannelMode): Promise<void> {
    if (!this.durable) {
      await this.file.save(channelId, mode).catch((err: unknown) => {
        throw this.notPersisted(channelId, 'stateDir', err);
      });
      return;
    }
    const { store, timeoutMs } = this.durable;
    const write = store.save(channelId, mode);
    try {
      await withTimeout(write, timeoutMs, `no acknowledgement within ${timeoutMs} ms`);
    } catch (err) {
      // A write given up on may still land: then the record is put back to the mode the channel really has.
      write.then(() => this.repair(channelId, mode), () => undefined);
      throw this.notPersisted(channelId, store.source, err);
    }
    await this.file.save(channelId, mode).catch((err: unknown) => this.log.warn({ channel: channelId, err: describeError(err) }, 'mode written to Kafka, but not to the state file in stateDir'));
  }

  /** Releases the durable store's clients. */
  async stop(): Promise<void> {
    await this.durable?.store.stop();
  }

  private repair(channelId: string, written: ChannelMode): void {
    const now = this.current(channelId);
    if (now === written || !this.durable) return;
    this.log.warn({ channel: channelId, written, mode: now }, 'a mode write reported as failed has landed late; writing the channel\'s actual mode again');
    this.durable.store.save(channelId, now).catch((err: unknown) => this.log.error({ channel: channelId, err: describeError(err) }, `could not correct the persisted mode: channel ${channelId} may start in ${written} mode at the next start`));
  }

  private notPersisted(channelId: string, source: string, err: unknown): ChannelRequestError {
    const mode = this.current(channelId);
    return new ChannelRequestError('mode_not_persisted', `the new mode could not be persisted to ${source} (${describeError(err)}), so channel ${channelId} was not switched and stays in ${mode} mode (a switch that is not persisted would revert at the next start); try again when it is reachable`);
  }
}
