import { OldestKey } from '../../common/oldest-key';
import type { ChannelStore, ConversationRegistry } from '../connector.interface';

const STATE_KEY = 'recentConversations';

/** One remembered conversation: the key of its last bot/agent message seen (null: none yet) and when it was last seen. */
interface Recent {
  key: string | null;
  at: number;
}

/**
 * The conversations a channel saw most recently (bounded, least recent evicted), each with the key of the
 * last bot/agent message seen in it: the watermark from which a transcript is replayed after a reconnect.
 * Without a cluster they are kept in the channel's state file, so a restart keeps them. In a cluster they live in the
 * channel's shared registry (state topic, one record per conversation), so the replica that takes the channel over
 * knows them and their watermarks. Writes are batched: at most one per conversation per `flushAfterMs`.
 */
export class RecentConversations {
  /** Least recent first. */
  private readonly entries = new Map<string, Recent>();
  private readonly leastRecent = new OldestKey(this.entries);
  /**
   * The map's last key, kept as it changes so a merge or a keepalive need not walk the map (a takeover merges the
   * registry's records one by one: walking per record made that quadratic); undefined when not known, then found once.
   */
  private newest?: string;
  /** Cluster: conversations changed (or evicted) since the last write. */
  private readonly dirty = new Set<string>();
  private timer?: NodeJS.Timeout;
  private synced = false;

  constructor(
    private readonly store: ChannelStore,
    private readonly max: number,
    private readonly flushAfterMs = 1000,
    private readonly registry?: ConversationRegistry,
  ) {
    const saved = store.get<unknown>(STATE_KEY);
    if (Array.isArray(saved)) {
      for (const item of saved.slice(-max)) {
        if (Array.isArray(item) && typeof item[0] === 'string') this.entries.set(item[0], { key: typeof item[1] === 'string' ? item[1] : null, at: 0 });
      }
    }
    // Other replicas' records (and this one's own, which `merge` ignores as not newer) as they are read.
    registry?.watch((id, value) => this.merge(id, value));
  }

  /** Number of conversations remembered. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Cluster: waits (up to `timeoutMs`, once) for the shared registry's history and takes its conversations in; those of
   * a single-replica run before cluster mode (the state file) that it lacks are copied to it. Without a cluster: nothing.
   */
  async sync(timeoutMs: number): Promise<boolean> {
    const registry = this.registry;
    if (!registry || this.synced) return true;
    const read = await registry.ready(timeoutMs);
    // Oldest first, so each one lands at the end: several replicas' records come in any order, and each one merged
    // out of order re-sorts the map.
    const records = [...registry.all()].map(([id, value]) => ({ id, value, at: parseRecent(value)?.at ?? 0 })).sort((a, b) => a.at - b.at);
    for (const { id, value } of records) this.merge(id, value);
    if (read) {
      this.synced = true;
      const shared = registry.all();
      const fromFile = [...this.entries.keys()].filter((id) => !shared.has(id));
      for (const id of fromFile) this.markDirty(id);
      if (this.store.get<unknown>(STATE_KEY) !== undefined) this.store.set(STATE_KEY, []);
    }
    return read;
  }

  /** Marks a conversation as just seen, and its last message when given. */
  touch(conversationId: string, messageKey?: string): void {
    if (this.max === 0) return;
    const key = messageKey ?? this.entries.get(conversationId)?.key ?? null;
    this.entries.delete(conversationId);
    this.entries.set(conversationId, { key, at: Date.now() });
    this.newest = conversationId;
    this.markDirty(conversationId);
    this.evict();
  }

  /** The key of the last message seen in a conversation. */
  lastKey(conversationId: string): string | undefined {
    return this.entries.get(conversationId)?.key ?? undefined;
  }

  /** The conversation seen last. */
  mostRecent(): string | undefined {
    if (this.newest === undefined) for (const id of this.entries.keys()) this.newest = id;
    return this.newest;
  }

  /** Conversation ids, most recent first. */
  ids(): string[] {
    return [...this.entries.keys()].reverse();
  }

  /** Writes pending changes now (nothing when there are none). */
  flush(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.registry) {
      this.store.set(STATE_KEY, [...this.entries].map(([id, r]) => [id, r.key]));
      return;
    }
    for (const id of this.dirty) this.registry.save(id, this.entries.get(id) ?? null);
    this.dirty.clear();
  }

  /** A registry record: taken when newer than what this replica knows (its own records come back older or equal). */
  private merge(id: string, value: unknown): void {
    if (this.max === 0) return;
    if (value === null) {
      // A removal, unless this replica touched the conversation again since (its newer record follows).
      if (!this.dirty.has(id)) this.forget(id);
      return;
    }
    const r = parseRecent(value);
    const mine = this.entries.get(id);
    if (!r || (mine && mine.at >= r.at)) return;
    // The newest before this record (itself when it was the newest: then it stays so, as its time only grew).
    const last = this.mostRecent();
    this.forget(id);
    this.entries.set(id, r);
    this.newest = id;
    // Records of other replicas can arrive out of time order: keep least recent first.
    if (last !== undefined && last !== id && (this.entries.get(last) as Recent).at > r.at) {
      const sorted = [...this.entries].sort((a, b) => a[1].at - b[1].at);
      this.entries.clear();
      for (const [k, v] of sorted) this.entries.set(k, v);
      this.newest = sorted[sorted.length - 1][0];
    }
    // Read, not changed here: only an eviction is this replica's to write.
    this.trim();
  }

  private evict(): void {
    // Cluster: removed from the registry too (a tombstone), so it stays bounded.
    for (const oldest of this.trim()) this.markDirty(oldest);
  }

  /** Drops the least recent conversations past `max`, and returns them. */
  private trim(): string[] {
    if (this.entries.size <= this.max) {
      this.leastRecent.release();
      return [];
    }
    const dropped: string[] = [];
    // From the front only, and max ≥ 1 here: the newest is never dropped.
    while (this.entries.size > this.max) dropped.push(this.leastRecent.take() as string);
    return dropped;
  }

  private forget(id: string): void {
    if (this.entries.delete(id) && id === this.newest) this.newest = undefined;
  }

  private markDirty(id: string): void {
    if (this.registry) this.dirty.add(id);
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.flushAfterMs);
    this.timer.unref?.();
  }
}

function parseRecent(v: unknown): Recent | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { key, at } = v as { key?: unknown; at?: unknown };
  if (typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  return { key: typeof key === 'string' ? key : null, at };
}
