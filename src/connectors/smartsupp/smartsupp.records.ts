import type { Logger } from 'pino';
import type { ChannelStore, ConversationRegistry } from '../connector.interface';
import type { Member } from './smartsupp.pool';
import { parseVisitor, VISITORS_KEY, type PersistedVisitor } from './smartsupp.state';
import type { SmartsuppVisitor } from './smartsupp.visitor';

/** Delay before message high-water marks are written (new visitors are written at once). */
const PERSIST_DELAY_MS = 2_000;
/** Cluster: longest wait at the first connect for the shared visitor registry's history. */
const REGISTRY_WAIT_MS = 15_000;

/**
 * Where a channel's visitor records are kept: the state file (every visitor this process runs, written whole), or in
 * a cluster the shared registry (one record per visitor, written when it changed; `known` is this replica's view of
 * every replica's visitors).
 */
export class VisitorRecords {
  /** Cluster: every visitor of the channel in the shared registry, with its latest read mark (this replica runs its own). */
  readonly known = new Map<string, PersistedVisitor>();
  /** True once the connector read the records: nothing is written before. */
  loaded = false;
  /** Cluster: visitors whose record changed since the last write. */
  private readonly dirty = new Set<string>();
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Immediate;
  /**
   * File: each visitor's entry as last written and what it was made from, so a write serializes only the visitors
   * that changed since. With 10,000 visitors a write took 28-45 ms when every entry was built and serialized again,
   * 8-9 ms this way, for about 0.3 KB of heap per visitor (its entry's text).
   */
  private readonly written = new WeakMap<SmartsuppVisitor, WrittenEntry>();

  constructor(
    private readonly store: ChannelStore,
    private readonly registry: ConversationRegistry | undefined,
    private readonly members: Map<string, Member>,
    private readonly log: Logger,
  ) {}

  /** Cluster: reads the registry's visitors into `known`; those of `fromFile` it lacks are copied in. */
  async loadShared(fromFile: Map<string, PersistedVisitor>): Promise<void> {
    const registry = this.registry as ConversationRegistry;
    if (!(await registry.ready(REGISTRY_WAIT_MS))) {
      this.log.warn({ waitedMs: REGISTRY_WAIT_MS }, 'the shared visitor registry (state topic) was not read to its end in time; starting with the visitors known so far (the rest start as their records arrive)');
    }
    for (const [id, v] of registry.all()) {
      const p = parseVisitor(v);
      if (p) this.known.set(id, p);
    }
    // Visitors of a single-replica run before cluster mode: copied into the registry so any replica can hold them.
    const migrated = [...fromFile].filter(([id]) => !this.known.has(id));
    for (const [id, p] of migrated) {
      this.known.set(id, p);
      registry.save(id, p);
    }
    if (migrated.length) this.log.info({ visitors: migrated.length }, 'visitors from stateDir copied to the shared visitor registry');
  }

  /**
   * Schedules a write: new visitors (and removals) in the same turn of the event loop (coalesced, so a thousand
   * concurrent `conversation.start` write once per turn), high-water marks and chat ids after a short delay.
   */
  persist(visitor: SmartsuppVisitor | undefined, now: boolean): void {
    if (visitor?.id) this.dirty.add(visitor.id);
    if (now) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.soon ??= setImmediate(() => this.flush());
      return;
    }
    if (this.timer || this.soon) return;
    this.timer = setTimeout(() => this.flush(), PERSIST_DELAY_MS);
    this.timer.unref?.();
  }

  /** Writes what changed now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.timer = undefined;
    this.soon = undefined;
    if (!this.loaded) return;
    if (this.registry) {
      for (const id of this.dirty) {
        const member = this.members.get(id);
        if (member) this.save(id, member.visitor);
      }
      this.dirty.clear();
      return;
    }
    try {
      const entries: string[] = [];
      for (const [id, { visitor }] of this.members) {
        entries.push(this.entryJson(id, visitor));
        visitor.savedActiveAt = visitor.activeAt;
      }
      this.store.setJson(VISITORS_KEY, `{${entries.join(',')}}`);
    } catch (err) {
      this.log.error({ err: String(err) }, 'cannot persist Smartsupp visitors');
    }
  }

  /** File: the visitor's `"id":{record}`, serialized again only when what `persisted` reads changed (its identity never does). */
  private entryJson(id: string, visitor: SmartsuppVisitor): string {
    const last = this.written.get(visitor);
    if (last && last.id === id && last.chatId === visitor.chatId && last.since === visitor.since && last.seen === visitor.seen && last.activeAt === visitor.activeAt) return last.json;
    const json = `${JSON.stringify(id)}:${JSON.stringify(persisted(visitor))}`;
    this.written.set(visitor, { id, chatId: visitor.chatId, since: visitor.since, seen: visitor.seen, activeAt: visitor.activeAt, json });
    return json;
  }

  /** Cluster: writes one visitor's record to the registry. */
  save(id: string, visitor: SmartsuppVisitor): void {
    const p = persisted(visitor);
    visitor.savedActiveAt = visitor.activeAt;
    this.known.set(id, p);
    this.registry?.save(id, p);
  }

  /** Removes an expired visitor's record: from the registry (every replica forgets it), or from the file. */
  forget(id: string): void {
    this.dirty.delete(id);
    if (!this.registry) return this.persist(undefined, true);
    this.known.delete(id);
    this.registry.save(id, null);
  }
}

/** A visitor's entry in the state file as last written, with the fields it was made from. */
interface WrittenEntry {
  id: string;
  chatId?: string;
  since?: number;
  /** Read marks replace this array whenever they move, never change it in place (advanceMark, mergeMark). */
  seen?: string[];
  activeAt: number;
  json: string;
}

/** What is kept of a visitor: chat, read mark, identity, last activity. */
export function persisted(visitor: SmartsuppVisitor): PersistedVisitor {
  const p: PersistedVisitor = {};
  if (visitor.chatId) p.chatId = visitor.chatId;
  if (visitor.since !== undefined) p.since = new Date(visitor.since).toISOString();
  if (visitor.seen?.length) p.seen = visitor.seen;
  if (visitor.identity) p.identity = visitor.identity;
  p.activeAt = new Date(visitor.activeAt).toISOString();
  return p;
}
