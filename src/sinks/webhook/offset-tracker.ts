/**
 * Progress of one partition of a consumed topic whose records finish out of order (webhook deliveries of
 * different keys run in parallel). A Kafka commit means "everything before this offset is done", so the
 * committable offset is one past the longest finished prefix: a record still retrying holds it back, however
 * many later records are finished. Pure.
 */
export class OffsetTracker {
  /** Offsets taken and not yet part of the finished prefix, oldest first, with their state. */
  private readonly open: Array<{ offset: bigint; done: boolean }> = [];
  private readonly index = new Map<bigint, { offset: bigint; done: boolean }>();
  private committable?: bigint;
  private committed?: bigint;
  private nextOffset?: bigint;

  /** One past the highest offset taken: records below it were already taken in this session (a refetch). */
  get next(): bigint | undefined {
    return this.nextOffset;
  }

  /** True when `offset` was already taken in this session (kafkajs refetches uncommitted records after a rejoin). */
  seen(offset: bigint): boolean {
    return this.nextOffset !== undefined && offset < this.nextOffset;
  }

  /**
   * Declares where a partition with no committed progress starts, so that position is committed like any
   * finished prefix (a restart then resumes there). Ignored once records were taken or progress exists.
   */
  startAt(offset: bigint): void {
    if (this.nextOffset === undefined && this.committable === undefined) this.committable = offset;
  }

  /** Offsets taken and not yet committable (finished ones behind an unfinished one count): what this tracker holds. */
  get openCount(): number {
    return this.open.length;
  }

  /** Takes a record. Offsets arrive in increasing order (gaps allowed: compaction, transaction markers). */
  take(offset: bigint): void {
    if (this.seen(offset)) throw new Error(`offset ${offset} taken twice`);
    const entry = { offset, done: false };
    this.open.push(entry);
    this.index.set(offset, entry);
    this.nextOffset = offset + 1n;
  }

  /** Gives back the last record taken (nothing took it over), so it can be taken again. Ignored for any other offset. */
  untake(offset: bigint): void {
    const last = this.open[this.open.length - 1];
    if (!last || last.offset !== offset || last.done) return;
    this.open.pop();
    this.index.delete(offset);
    // Offsets between the previous record and this one were never fetched (gaps): nothing to take there.
    this.nextOffset = offset;
  }

  /** Marks a record finished (delivered or dead-lettered). Unknown offsets are ignored. */
  finish(offset: bigint): void {
    const entry = this.index.get(offset);
    if (!entry) return;
    entry.done = true;
    while (this.open.length && this.open[0].done) {
      const head = this.open.shift() as { offset: bigint };
      this.index.delete(head.offset);
      this.committable = head.offset + 1n;
    }
  }

  /** The offset to commit now, or undefined when nothing new is finished since the last `committedUpTo`. */
  toCommit(): bigint | undefined {
    if (this.committable === undefined) return undefined;
    if (this.committed !== undefined && this.committable <= this.committed) return undefined;
    return this.committable;
  }

  /** Records that `offset` was committed. */
  committedUpTo(offset: bigint): void {
    if (this.committed === undefined || offset > this.committed) this.committed = offset;
  }
}
