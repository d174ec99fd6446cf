import type { EventPipeline } from '../pipeline/pipeline';
import type { Sink } from '../sinks/sink.interface';

/** What `GET /readyz` reports (docs/api.md): ready while not shutting down and every delivery sink can deliver. */
export class Readiness {
  private shuttingDown = false;

  constructor(
    private readonly pipeline: EventPipeline,
    /** The live event stream: a sink of the pipeline, but not one that delivers (it never holds readiness back). */
    private readonly stream: Sink,
  ) {}

  /** Shutdown has begun: not ready from now on, so traffic moves to other replicas. */
  stopping(): void {
    this.shuttingDown = true;
  }

  /** True until shutdown begins and, with Kafka, while Kafka is reachable. */
  ready(): boolean {
    return !this.shuttingDown && this.deliverySinks().every((s) => s.ready());
  }

  /** Sinks' state for readiness. */
  sinks(): Array<{ name: string; ready: boolean; queued: number }> {
    return this.deliverySinks().map((s) => ({ name: s.name, ready: s.ready(), queued: s.depth() }));
  }

  /** The sinks that deliver events (readiness), i.e. all but the live stream. */
  private deliverySinks(): Sink[] {
    return this.pipeline.allSinks.filter((s) => s !== this.stream);
  }
}
