import type { Logger } from 'pino';
import type { ChannelStore, ConversationPlacement } from '../connector.interface';
import type { Member, VisitorPool } from './smartsupp.pool';
import { persisted, type VisitorRecords } from './smartsupp.records';
import { loadVisitors, mergeMark, parseVisitor, timeOf, type PersistedVisitor } from './smartsupp.state';
import { SmartsuppVisitor, type VisitorShared } from './smartsupp.visitor';

/**
 * Which persisted visitors this replica runs. Without a cluster: every visitor of the channel's store (the state
 * file). In a cluster (`placement`): those of the shared registry (the state topic) whose ownership key hashes to this
 * replica's partitions. A replica starts the visitors it gains, and keeps one it lost (or created for another replica)
 * for `handoverOverlapMs` while the new holder connects, then closes it (make before break; copies share their event
 * ids).
 */
export class VisitorPlacement {
  private loading?: Promise<void>;

  constructor(
    private readonly store: ChannelStore,
    private readonly placement: ConversationPlacement | undefined,
    private readonly pool: VisitorPool,
    private readonly records: VisitorRecords,
    private readonly shared: VisitorShared,
    private readonly log: Logger,
    /** False while the channel is closed: visitors placed meanwhile wait for the next connect. */
    private readonly running: () => boolean,
  ) {}

  /** True when this replica runs the visitor (always, without a cluster). */
  owns(id: string): boolean {
    return !this.placement || this.placement.owns(id);
  }

  /** The channel's visitors, counted against `maxVisitors`: in a cluster every replica's (the registry's). */
  get count(): number {
    return this.placement ? this.records.known.size : this.pool.members.size;
  }

  /** Reads the persisted visitors, once: the store's, or in a cluster the shared registry's (the store's copied in once). */
  load(): Promise<void> {
    return (this.loading ??= this.read());
  }

  /** Cluster: this replica's partitions changed. */
  changed(): void {
    if (this.records.loaded) this.place();
  }

  /** Cluster: a visitor's handshake. A new one counts at once; one started for another replica (or whose id changed) is handed over. */
  initialized(visitor: SmartsuppVisitor, isNew: boolean): void {
    const placement = this.placement;
    if (!placement) return;
    const id = visitor.id as string;
    // Counted against maxVisitors at once (the registry write follows in the next turn).
    if (isNew) this.records.known.set(id, persisted(visitor));
    if (!placement.owns(id)) this.pool.release(id, placement.handoverOverlapMs);
  }

  private async read(): Promise<void> {
    const fromFile = loadVisitors(this.store);
    if (!this.placement) {
      for (const [id, p] of fromFile) this.addMember(id, p);
      this.records.loaded = true;
      return;
    }
    await this.records.loadShared(fromFile);
    this.placement.registry.watch((id, v) => this.registryRecord(id, v));
    this.records.loaded = true;
    this.place();
  }

  /** A persisted visitor this replica runs; undefined when it was idle too long already (it expires unstarted). */
  private addMember(id: string, p: PersistedVisitor): Member | undefined {
    const activeAt = timeOf(p.activeAt);
    if (activeAt !== undefined && this.pool.idle(activeAt)) {
      this.pool.expire(id, 'idle');
      return undefined;
    }
    const visitor = new SmartsuppVisitor(this.shared, id, p.identity);
    visitor.chatId = p.chatId;
    visitor.since = timeOf(p.since);
    visitor.seen = p.seen;
    if (activeAt !== undefined) visitor.activeAt = visitor.savedActiveAt = activeAt;
    const member = this.pool.create(visitor);
    this.pool.members.set(id, member);
    return member;
  }

  /** Cluster: starts the known visitors this replica owns and lets go of the ones it no longer owns. */
  private place(): void {
    const placement = this.placement;
    if (!placement) return;
    for (const [id, p] of this.records.known) {
      if (!placement.owns(id)) continue;
      this.pool.keep(id);
      if (!this.pool.members.has(id)) {
        const member = this.addMember(id, p);
        if (member && this.running()) this.pool.enqueue(member);
      }
    }
    for (const id of this.pool.members.keys()) if (!placement.owns(id)) this.pool.release(id, placement.handoverOverlapMs);
    if (this.running()) this.pool.pump();
  }

  /** Cluster: a registry record (another replica's, or this one's own coming back). */
  private registryRecord(id: string, value: unknown): void {
    const known = this.records.known;
    if (value === null) {
      // Expired by its holder (or by this replica, coming back): a socket kept here during an overlap closes too.
      known.delete(id);
      this.pool.expire(id, 'elsewhere');
      return;
    }
    if (this.pool.expiredReason(id) !== undefined) {
      // A late write of an expired visitor (its previous holder's read mark): not brought back.
      if (this.placement?.owns(id)) this.placement.registry.save(id, null);
      return;
    }
    const p = parseVisitor(value);
    if (!p) {
      this.log.warn({ visitor: id }, 'visitor registry record is not a visitor; skipped');
      return;
    }
    const member = this.pool.members.get(id);
    if (member) {
      // The previous holder's last read mark (written when it let go): never move backwards.
      const { visitor } = member;
      mergeMark(visitor, p);
      if (!visitor.chatId && p.chatId) visitor.chatId = p.chatId;
      known.set(id, persisted(visitor));
      return;
    }
    known.set(id, p);
    if (this.placement?.owns(id) && this.running()) {
      const added = this.addMember(id, p);
      if (added) this.pool.enqueue(added);
      this.pool.pump();
    }
  }
}
