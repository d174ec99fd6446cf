import type { ChannelMode } from '../connectors/connector.interface';
import { MODE_STATE_KEY } from './channel-mode';
import type { FileChannelStore } from './state-store';

/**
 * One channel's persisted mode: the value of its state-topic record (`{"mode":"webhook","at":"<ISO time>"}`).
 * Other fields a later version adds (ownership, …) are kept out of this type but never make a record invalid.
 */
export interface ModeRecord {
  mode: ChannelMode;
  /** When the mode was set (ISO 8601). */
  at?: string;
}

/** Persisted modes by channel id; `null` = cleared (a tombstone): the channel starts in the config's mode. */
export type PersistedModes = Map<string, ModeRecord | null>;

/** Where runtime mode switches are kept between starts. */
export interface ModeStore {
  /** Names the store in logs: `stateDir` or `topic <name>`. */
  readonly source: string;
  /** Every channel's persisted mode (the latest one per channel). */
  load(): Promise<PersistedModes>;
  /** Persists one channel's mode; resolves once it is durable, rejects when it could not be written. */
  save(channelId: string, mode: ChannelMode): Promise<void>;
  /** Releases the store's clients. */
  stop(): Promise<void>;
}

/** The state-topic value of a mode. */
export function encodeModeRecord(mode: ChannelMode, at: Date = new Date()): string {
  return JSON.stringify({ mode, at: at.toISOString() } satisfies ModeRecord);
}

/** Reads a state-topic value back; throws an Error saying what is wrong. Unknown fields are allowed (forward compatible). */
export function decodeModeRecord(value: string): ModeRecord {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    throw new Error('value is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('value is not a JSON object');
  const { mode, at } = v as Record<string, unknown>;
  if (mode !== 'socket' && mode !== 'webhook') throw new Error('mode: must be "socket" or "webhook"');
  const record: ModeRecord = { mode };
  if (typeof at === 'string') record.at = at;
  return record;
}

/** State-topic key of one conversation's record: `<channelId>/conversation/<conversationId>` (channel ids hold no `/`). */
export function conversationStateKey(channelId: string, conversationId: string): string {
  return `${channelId}/conversation/${conversationId}`;
}

/** What a state-topic key names: a channel (its mode record) or one conversation of a channel; undefined when neither. */
export function parseStateKey(key: string): { channelId: string; conversationId?: string } | undefined {
  const slash = key.indexOf('/');
  if (slash < 0) return key ? { channelId: key } : undefined;
  const channelId = key.slice(0, slash);
  const rest = key.slice(slash + 1);
  if (!channelId || !rest.startsWith('conversation/') || rest.length === 'conversation/'.length) return undefined;
  return { channelId, conversationId: rest.slice('conversation/'.length) };
}

/** One record as read from the state topic. */
export interface StateTopicRecord {
  key: string | null;
  value: string | null;
}

/**
 * Folds state-topic records (in offset order) into each channel's latest mode, as compaction would: the last
 * record per key wins, a tombstone (null value) clears it, and a record without a key or with a malformed
 * value is skipped (reported through `skip`), leaving the channel's previous record in force.
 */
export function foldModeRecords(records: Iterable<StateTopicRecord>, skip: (key: string | null, reason: string) => void): PersistedModes {
  const modes: PersistedModes = new Map();
  for (const { key, value } of records) {
    if (key === null) {
      skip(null, 'record without a key');
      continue;
    }
    // A cluster's spread-conversation records (`<channelId>/conversation/<id>`) share the topic; they are not modes.
    const target = parseStateKey(key);
    if (!target || target.conversationId !== undefined) continue;
    if (value === null) {
      modes.set(key, null);
      continue;
    }
    try {
      modes.set(key, decodeModeRecord(value));
    } catch (err) {
      skip(key, (err as Error).message);
    }
  }
  return modes;
}

/** The modes kept in each channel's state file (`<stateDir>/<channelId>.json`, key `mode`). */
export class FileModeStore implements ModeStore {
  readonly source = 'stateDir';

  /** `stores`: the channels' stores (their state files), the same instances the connectors write (one per file). */
  constructor(private readonly stores: ReadonlyMap<string, FileChannelStore>) {}

  async load(): Promise<PersistedModes> {
    const modes: PersistedModes = new Map();
    for (const [id, store] of this.stores) {
      const mode = store.get<unknown>(MODE_STATE_KEY);
      if (mode === 'socket' || mode === 'webhook') modes.set(id, { mode });
    }
    return modes;
  }

  async save(channelId: string, mode: ChannelMode): Promise<void> {
    this.stores.get(channelId)?.set(MODE_STATE_KEY, mode);
  }

  /** Removes a channel's mode from its file (it then starts in the config's mode). */
  clear(channelId: string): void {
    const store = this.stores.get(channelId);
    if (store?.get(MODE_STATE_KEY) !== undefined) store.set(MODE_STATE_KEY, undefined);
  }

  async stop(): Promise<void> {}
}
