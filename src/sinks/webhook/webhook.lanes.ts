import { OldestKey } from '../../common/oldest-key';

/**
 * Per-key FIFO lanes. Each key (an event's `partitionkey`) has its own queue; only the head of a lane can be
 * worked on, and a lane whose head is out (in flight, or waiting to retry) is not offered again until it is
 * given back. So one key's events go strictly in order, and a slow key holds back only itself.
 *
 * Lanes whose head can be attempted now wait in `ready`, oldest first (fair across keys).
 */
export class KeyedLanes<T> {
  private readonly lanes = new Map<string, T[]>();
  private readonly ready = new Set<string>();
  private readonly oldestReady = new OldestKey(this.ready);
  private count = 0;

  /** Items held, heads out included. */
  get size(): number {
    return this.count;
  }

  /** True when some lane's head can be taken now. */
  hasReady(): boolean {
    return this.ready.size > 0;
  }

  /** Appends to the key's lane; a new lane becomes ready. */
  push(key: string, item: T): void {
    const lane = this.lanes.get(key);
    this.count++;
    if (lane) {
      lane.push(item);
      return;
    }
    this.lanes.set(key, [item]);
    this.ready.add(key);
  }

  /** Takes the head of the oldest ready lane out (it stays in the lane until `done`). */
  take(): { key: string; item: T } | undefined {
    const key = this.oldestReady.take();
    if (key === undefined) return undefined;
    const lane = this.lanes.get(key);
    if (!lane?.length) return undefined;
    return { key, item: lane[0] };
  }

  /** The head is finished (delivered or dead-lettered): the next item of the lane becomes ready. */
  done(key: string): void {
    const lane = this.lanes.get(key);
    if (!lane?.length) return;
    lane.shift();
    this.count--;
    if (lane.length) this.ready.add(key);
    else this.lanes.delete(key);
  }

  /** The head goes back unfinished (its retry is due, or it could not start): the lane is ready again. */
  requeue(key: string): void {
    if (this.lanes.get(key)?.length) this.ready.add(key);
  }

  /** Removes and returns every item, lane by lane in order. */
  drain(): T[] {
    const all: T[] = [];
    for (const lane of this.lanes.values()) all.push(...lane);
    this.lanes.clear();
    this.ready.clear();
    this.oldestReady.release();
    this.count = 0;
    return all;
  }
}
