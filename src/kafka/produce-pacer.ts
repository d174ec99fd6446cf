/**
 * Spaces one producer's requests while its batches are not full (`kafka.producer.lingerMs`): a request starts at
 * least `lingerMs` after the previous one started, and what arrives in between goes in it. A producer that sends as
 * soon as its previous request is acknowledged sends smaller requests the less it has to do, each costing the same
 * (about 130 µs of CPU with kafkajs, encoding, the write and the answer): at a quarter of its top command rate the
 * bridge made about four produce and fetch requests per command and used as much CPU as at full speed. A request
 * whose batch is already full starts at once, so at full load (round trips longer than `lingerMs`) nothing waits;
 * a record arriving when no request started within `lingerMs` is not held either.
 */
export class ProducePacer {
  private lastStart = Number.NEGATIVE_INFINITY;

  constructor(private readonly lingerMs: number) {}

  /** Resolves when the next request may start (at once when `full`), and counts it as started then. */
  async ready(full: boolean): Promise<void> {
    const wait = this.lastStart + this.lingerMs - performance.now();
    if (!full && wait > 0) await new Promise<void>((resolve) => setTimeout(resolve, Math.ceil(wait)));
    this.lastStart = performance.now();
  }
}
