import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { measureJson, safeJson } from '../common/json-limits';
import type { AnyCanonicalEvent } from '../envelope/envelope';
import type { Metrics } from '../health/metrics';

/** Dead letters being written to the target at once; more go to the file, so a flood cannot pile up in memory. */
const MAX_TARGET_IN_FLIGHT = 64;

/** One dead-lettered item: an event, or a raw frame that could not become one. */
export interface DeadLetter {
  reason: string;
  /** Where delivery failed (`kafka`, `mapper`, a webhook id, …). */
  origin: string;
  channelId?: string;
  event?: AnyCanonicalEvent;
  frame?: { event: string; payload: unknown };
  error?: string;
  attempts?: number;
  /** The last HTTP status (webhook deliveries). */
  status?: number;
  /** A consumed Kafka record that could not be handled (poison record), as it was read. */
  record?: DeadRecord;
}

/** A Kafka record kept whole in a dead letter: where it was, and its original bytes (base64; null stays null). */
export interface DeadRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** A writer that can take dead letters somewhere durable (e.g. the Kafka DLQ topic). */
export interface DeadLetterTarget {
  readonly name: string;
  /** True when writes are expected to succeed now. */
  available(): boolean;
  write(item: DeadLetter): Promise<void>;
}

/**
 * Dead letters go to a registered durable target (Kafka `topics.deadLetter`) when it is available, else
 * to an append-only JSON-lines file. Nothing is dropped: a failed target write falls back to the file.
 */
export class DeadLetters {
  private target?: DeadLetterTarget;
  /** Writes to the target not yet answered: past MAX_TARGET_IN_FLIGHT (a flood while Kafka is slow) items go to the file. */
  private inFlight = 0;
  private dirReady = false;

  constructor(
    private readonly file: string,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Largest item the durable target takes (a Kafka record); larger or deeper ones go straight to the file. */
    private readonly maxTargetBytes = 900 * 1024,
  ) {}

  /** Registers the durable target (Kafka). */
  useTarget(target: DeadLetterTarget): void {
    this.target = target;
  }

  /**
   * Dead-letters one item. Never rejects: resolves once the item is written somewhere (the target, else the
   * file, else the log), so a caller that acknowledges upstream work (a Kafka offset) can wait for it.
   */
  async write(item: DeadLetter): Promise<void> {
    const target = this.target;
    if (target?.available() && this.inFlight < MAX_TARGET_IN_FLIGHT && this.fitsTarget(item)) {
      this.inFlight++;
      try {
        await target.write(item);
        this.metrics.deadLetters.inc({ target: target.name, reason: item.reason });
        return;
      } catch (err) {
        this.log.warn({ err: String(err) }, 'dead-letter target failed; writing to file');
      } finally {
        this.inFlight--;
      }
    }
    this.writeFile(item);
  }

  /**
   * An event a sink threw on, or could not serialize (a bug: sinks queue and never throw): counted
   * (`chatbridge_refused_total{origin="sink",reason="sink_threw"}`), logged and dead-lettered with the sink as origin.
   * Resolves once written, as `write` does.
   */
  sinkThrew(sink: string, event: AnyCanonicalEvent, error: string): Promise<void> {
    this.metrics.refused.inc({ origin: 'sink', reason: 'sink_threw' });
    this.log.error({ sink, id: event.id, type: event.type, err: error }, 'a sink threw on an event; the event is dead-lettered for that sink');
    return this.write({ reason: 'sink_threw', origin: sink, channelId: event.channelid, event, error });
  }

  /** Writes straight to the file (used when the durable target is itself what failed). */
  writeFile(item: DeadLetter): void {
    try {
      if (!this.dirReady) {
        mkdirSync(dirname(this.file), { recursive: true });
        this.dirReady = true;
      }
      // Synchronous on purpose: this is the last resort, and a crash right after must not lose it.
      // safeJson: the item may be what could not be serialized elsewhere (a frame nested 20,000 deep).
      appendFileSync(this.file, `${safeJson({ at: new Date().toISOString(), ...item })}\n`);
      this.metrics.deadLetters.inc({ target: 'file', reason: item.reason });
    } catch (err) {
      // Disk full or read-only: the item goes to the log, which is the only place left.
      this.metrics.deadLetters.inc({ target: 'log', reason: item.reason });
      this.log.error({ err: String(err), deadLetter: safeJson(item).slice(0, 64 * 1024) }, 'cannot write dead-letter file; item logged instead (cut at 64 KiB)');
    }
  }

  /** True when the item is small and shallow enough to be one record of the target (a real broker refuses larger ones). */
  private fitsTarget(item: DeadLetter): boolean {
    const body = item.event ?? item.frame ?? item.record ?? null;
    return !measureJson(body, { maxDepth: 200, maxBytes: this.maxTargetBytes }).exceeded;
  }
}
