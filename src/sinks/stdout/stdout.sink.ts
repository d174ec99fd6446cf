import type { Writable } from 'node:stream';
import type { PipelineEvent } from '../../envelope/envelope';
import { toStructured } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import type { Sink } from '../sink.interface';

/** Bytes buffered in the stream beyond which events are dead-lettered instead (a stalled reader). */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/**
 * Embedded mode (docs/kafka.md): with no Kafka configured, every event is written to stdout as one
 * structured CloudEvent JSON line. Logs then go to stderr, so stdout is a clean stream.
 */
export class StdoutSink implements Sink {
  readonly name = 'stdout';
  private closed = false;
  /** `chatbridge_events_out_total{sink="stdout"}` series by channel and type: counting an event builds nothing. */
  private readonly eventsOut: ReturnType<Metrics['eventsOutOf']>;

  constructor(
    private readonly out: Writable,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
  ) {
    this.eventsOut = metrics.eventsOutOf(this.name);
  }

  publish(item: PipelineEvent): void {
    const { event } = item;
    if (this.closed || this.out.writableLength > MAX_BUFFERED_BYTES) {
      this.deadLetters.writeFile({ reason: this.closed ? 'shutdown' : 'stdout_stalled', origin: this.name, channelId: event.channelid, event });
      return;
    }
    this.out.write(`${toStructured(event)}\n`);
    this.eventsOut(event.channelid ?? '', event.type).inc();
    this.metrics.publishLatency.observe({ sink: this.name }, (performance.now() - item.receivedAt) / 1000);
  }

  async start(): Promise<void> {
    this.metrics.sinkUp.set({ sink: this.name }, 1);
  }

  async stop(deadlineMs: number): Promise<void> {
    this.closed = true;
    if (this.out.writableLength === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, deadlineMs);
      this.out.once('drain', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  ready(): boolean {
    return true;
  }

  depth(): number {
    return 0;
  }
}
