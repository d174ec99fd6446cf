/**
 * The ids a consumer has already processed, bounded: the oldest-used id is forgotten once `max` are held.
 *
 * chatbridge delivers at least once (docs/delivery.md): a Kafka record may be written twice with the same `ce_id`,
 * and a webhook is retried with the same `webhook-id`. Repeats arrive soon after the original (a producer's resend,
 * a retry, a restart's re-read of what was not committed), so remembering the most recent ids is enough; size `max`
 * to cover the events of the longest window you expect a repeat in. A Map keeps insertion order, which makes it an
 * LRU: a hit is moved to the end, the first key is the least recently used.
 *
 * Used by the Kafka consumer and the webhook receivers; copy this file along with either.
 */
export class SeenIds {
  private readonly ids = new Map<string, true>();

  constructor(private readonly max = 10_000) {}

  /** Records `id`; true when it was already there (a repeat). */
  seen(id: string): boolean {
    if (this.ids.delete(id)) {
      this.ids.set(id, true);
      return true;
    }
    this.ids.set(id, true);
    if (this.ids.size > this.max) this.ids.delete(this.ids.keys().next().value as string);
    return false;
  }

  /** Forgets `id`, so that a repeat of it is processed again (its first processing failed). */
  forget(id: string): void {
    this.ids.delete(id);
  }
}
