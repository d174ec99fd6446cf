import { DeadLetterCollector, type DeadLetterEntry, type ReplaySource } from './webhook.replay.sources';

/** One dead letter as `GET /v1/webhooks/:id/dead-letters` lists it. */
export interface DeadLetterItem {
  /** The event's id (= its `webhook-id`; what `POST …/replay` takes in `ids`). */
  id: string;
  type: string;
  /** When it was dead-lettered (ISO 8601). */
  at: string;
  reason?: string;
  attempts?: number;
  lastStatus?: number;
  error?: string;
  /** Where it is kept: the dead-letter file, or the Kafka topic `topics.deadLetter`. */
  source: ReplaySource;
}

/** The answer: a page, oldest first, and the cursor of the next one when there is more. */
export interface DeadLetterPage {
  endpoint: string;
  deadLetters: DeadLetterItem[];
  /** Give it as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
  /** File lines and topic records of this endpoint that could not be read (skipped, counted). */
  skippedMalformed: number;
}

/** A position in the listing's order: time, then source, then event id. */
export type DeadLetterPosition = [at: number, source: ReplaySource, id: string];

/** A validated dead-letter page request (`parseDeadLetterPage`). */
export interface DeadLetterPageQuery {
  limit: number;
  /** Where the previous page ended. */
  cursor?: DeadLetterPosition;
}

function compare(a: DeadLetterPosition, b: DeadLetterPosition): number {
  return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
}

/** The opaque cursor of the dead letter a page ended with (base64url JSON). */
export function encodeCursor(p: DeadLetterPosition): string {
  return Buffer.from(JSON.stringify(p)).toString('base64url');
}

/** The position a cursor names, or undefined when it is not one this listing made. */
export function decodeCursor(cursor: string): DeadLetterPosition | undefined {
  try {
    const p: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(p) && p.length === 3 && Number.isFinite(p[0]) && (p[1] === 'file' || p[1] === 'kafka') && typeof p[2] === 'string') return p as DeadLetterPosition;
  } catch {
    // not JSON: not a cursor
  }
  return undefined;
}

/**
 * The pure part of the listing: keeps the `limit` first dead letters of one endpoint after the cursor, in the order
 * (time, source, id), whatever the size of the sources (memory bounded by twice `limit`). Unlike a replay it keeps
 * every dead letter (an event dead-lettered twice is listed twice, unless both were in one source in the same
 * millisecond: their positions are equal); one without a string `id` and `type` counts as malformed.
 */
export class DeadLetterPageSelection extends DeadLetterCollector {
  private kept: { pos: DeadLetterPosition; item: DeadLetterItem }[] = [];
  private readonly after?: DeadLetterPosition;

  constructor(
    endpointId: string,
    private readonly query: DeadLetterPageQuery,
  ) {
    super(endpointId);
    this.after = query.cursor;
  }

  protected take(source: ReplaySource, entry: DeadLetterEntry): void {
    const event = entry.event as { id?: unknown; type?: unknown } | null;
    if (typeof event?.id !== 'string' || typeof event.type !== 'string') return this.malformed();
    const pos: DeadLetterPosition = [entry.at, source, event.id];
    if (this.after && compare(pos, this.after) <= 0) return;
    const item: DeadLetterItem = { id: event.id, type: event.type, at: new Date(entry.at).toISOString(), source };
    if (entry.reason !== undefined) item.reason = entry.reason;
    if (entry.attempts !== undefined) item.attempts = entry.attempts;
    if (entry.status !== undefined) item.lastStatus = entry.status;
    if (entry.error !== undefined) item.error = entry.error;
    this.kept.push({ pos, item });
    // One beyond `limit` is kept so that the page knows whether there is more.
    if (this.kept.length > 2 * (this.query.limit + 1)) this.trim();
  }

  page(): DeadLetterPage {
    this.trim();
    const items = this.kept.slice(0, this.query.limit);
    const page: DeadLetterPage = { endpoint: this.endpointId, deadLetters: items.map((k) => k.item), skippedMalformed: this.skippedMalformed };
    if (this.kept.length > this.query.limit) page.nextCursor = encodeCursor(items[items.length - 1].pos);
    return page;
  }

  private trim(): void {
    this.kept = this.kept.sort((a, b) => compare(a.pos, b.pos)).slice(0, this.query.limit + 1);
  }
}
