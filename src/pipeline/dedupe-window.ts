import { OldestKey } from '../common/oldest-key';

/**
 * The pipeline's dedupe window: event ids remembered for `ttlMs`, at most `maxEntries` of them, the oldest forgotten
 * first. One Map in insertion order holding each id's expiry: an id is added when first seen and not again while
 * remembered, so insertion order is age order. Past `maxEntries` the front goes (in constant time, `OldestKey`); an
 * expired id goes when it is looked up. A duplicate costs a lookup; a new id a lookup and an insert, and a removal
 * once the window is full.
 */
export class DedupeWindow {
  /**
   * id → expiry, in whole ms since the window was made: a small integer, which V8 keeps in the table itself for about
   * 24 days of uptime (2^31 ms on 64-bit Node; half that in a build with pointer compression). A fractional time is a
   * separate heap number, allocated for every new id and held as long as it; so are expiries past that, still correct.
   */
  private readonly ids = new Map<string, number>();
  private readonly epoch = performance.now();
  /** Finds the oldest id in constant time once the window is full and drops one per insert. */
  private readonly oldest = new OldestKey(this.ids);

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
  ) {}

  /** Ids held, expired ones not yet dropped included. */
  get size(): number {
    return this.ids.size;
  }

  /**
   * True when `id` was remembered less than `ttlMs` ago and not forgotten since (a duplicate: it stays as old as it
   * was); otherwise remembers it from now on and returns false. One lookup and one clock read (this runs for every event).
   */
  seenBefore(id: string): boolean {
    const now = Math.floor(performance.now() - this.epoch);
    const expires = this.ids.get(id);
    if (expires !== undefined) {
      if (expires > now) return true;
      // Expired: added again below, at the end, as the newest.
      this.ids.delete(id);
    }
    this.ids.set(id, now + this.ttlMs);
    if (this.ids.size > this.maxEntries) this.oldest.take();
    else this.oldest.release();
    return false;
  }

  /** Forgets `id` at once (its event was dead-lettered: the upstream's retry is then published). */
  delete(id: string): void {
    this.ids.delete(id);
  }
}
