import { OldestKey } from '../common/oldest-key';

/**
 * The pipeline's dedupe window: event ids remembered for `ttlMs`, at most `maxEntries` of them, the oldest forgotten
 * first. One Map in insertion order holding each id's expiry: an id is added when first seen and not again while
 * remembered, so insertion order is age order and both bounds drop ids from its front. Every operation is one or two
 * Map operations (this runs for every event).
 */
export class DedupeWindow {
  /** id → expiry (`performance.now()` ms). */
  private readonly ids = new Map<string, number>();
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

  /** True when `id` was added less than `ttlMs` ago and not forgotten since. */
  has(id: string): boolean {
    const expires = this.ids.get(id);
    if (expires === undefined) return false;
    if (expires > performance.now()) return true;
    this.ids.delete(id);
    return false;
  }

  /** Remembers `id` from now on (again from now, if it was there); past `maxEntries`, the oldest id is forgotten. */
  add(id: string): void {
    this.ids.delete(id);
    this.ids.set(id, performance.now() + this.ttlMs);
    if (this.ids.size > this.maxEntries) this.oldest.take();
    else this.oldest.release();
  }

  delete(id: string): void {
    this.ids.delete(id);
  }
}
