/** What became of one event at the durable sink (Kafka): acknowledged, or kept in the dead letters instead. */
export type DurableOutcome = 'delivered' | 'dead_lettered';

/** Called once with an event's outcome at the durable sink. */
export type DurableCallback = (outcome: DurableOutcome) => void;

/**
 * The durability of every event published for one input (an inbound webhook post): each event gets a callback from
 * `track`, and `settled` says when all of them were acknowledged by the durable sink, so the input is answered 2xx
 * only then. Without a durable sink (no Kafka) the pipeline settles each event as it is handed to the sinks.
 */
export class DurableReceipt {
  private pending = 0;
  private deadLettered = 0;
  private waiters: Array<() => void> = [];

  /** A callback for one more event; only its first call counts. */
  track(): DurableCallback {
    this.pending++;
    let settled = false;
    return (outcome) => {
      if (settled) return;
      settled = true;
      if (outcome === 'dead_lettered') this.deadLettered++;
      if (--this.pending === 0) for (const w of this.waiters.splice(0)) w();
    };
  }

  /**
   * Resolves once every tracked event settled — with how many were dead-lettered instead of delivered — or with
   * undefined after `timeoutMs` (the events stay queued; the sink still delivers or dead-letters them).
   */
  settled(timeoutMs: number): Promise<{ deadLettered: number } | undefined> {
    if (this.pending === 0) return Promise.resolve({ deadLettered: this.deadLettered });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(undefined);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve({ deadLettered: this.deadLettered });
      };
      this.waiters.push(done);
    });
  }
}
