import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { BridgeError } from '../../common/errors';
import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import { DeadLetterPageSelection, type DeadLetterPage, type DeadLetterPageQuery } from './webhook.dead-letters';
import type { ReplayQuery } from './webhook.replay.dto';
import { readDeadLetterFile, scanDeadLetterTopic, type DlqRecord } from './webhook.replay.sources';
import type { WebhookEndpoint } from './webhook.endpoint';
import { DeadLetterCollector, type DeadLetterEntry, type ReplaySource } from './webhook.replay.sources';


/** The answer of `POST /v1/webhooks/:id/replay`. */
export interface ReplayResult {
  endpoint: string;
  /** Distinct events (by id) among the endpoint's dead letters that match the request. */
  matched: number;
  /** Events re-submitted to the endpoint now. */
  replayed: number;
  /** File lines and topic records that could not be read as a dead letter (skipped, counted). */
  skippedMalformed: number;
  /** Matching dead letters found in each source, before removing the same event found twice. */
  sources: Record<ReplaySource, number>;
  /** Present when more matched than were replayed (`limit`, or the endpoint's `maxPending` room). */
  truncated?: true;
  /** With `truncated`: when the first event not replayed was dead-lettered; use it as the next request's `from`. */
  resumeFrom?: string;
  /** A dry run (`dryRun: true`): nothing was sent, `replayed` is 0 and `wouldReplay` says what a replay would send now. */
  dryRun?: true;
  /** With `dryRun`: the events a replay would re-submit now, oldest dead letter first. */
  wouldReplay?: { id: string; type: string }[];
}

/** The optional facts of a dead letter, each kept only with its type. */
function factsOf(o: { reason?: unknown; attempts?: unknown; status?: unknown; error?: unknown }): Pick<DeadLetterEntry, 'reason' | 'attempts' | 'status' | 'error'> {
  const facts: Pick<DeadLetterEntry, 'reason' | 'attempts' | 'status' | 'error'> = {};
  if (typeof o.reason === 'string') facts.reason = o.reason;
  if (typeof o.attempts === 'number' && Number.isInteger(o.attempts)) facts.attempts = o.attempts;
  if (typeof o.status === 'number' && Number.isInteger(o.status)) facts.status = o.status;
  if (typeof o.error === 'string') facts.error = o.error;
  return facts;
}

/**
 * True for a CloudEvent a webhook can carry: what the endpoint signs and keys on is there. `channelid` is not
 * required: the bridge's own events (`chatbridge.webhook.status`) have none and are replayable too.
 */
export function isReplayableEvent(e: unknown): e is AnyCanonicalEvent {
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<string, unknown>;
  return o.specversion === '1.0' && typeof o.id === 'string' && /^[^\s.]+$/.test(o.id) && typeof o.type === 'string' && typeof o.source === 'string'
    && typeof o.partitionkey === 'string';
}

/** One line of the dead-letter file: an entry, `malformed`, or undefined for a blank line. */
export function parseDeadLetterLine(line: string): DeadLetterEntry | 'malformed' | undefined {
  if (!line.trim()) return undefined;
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return 'malformed';
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'malformed';
  const { at, origin, event } = o as Record<string, unknown>;
  const when = typeof at === 'string' ? Date.parse(at) : NaN;
  if (typeof origin !== 'string' || Number.isNaN(when)) return 'malformed';
  return { origin, at: when, event, ...factsOf(o) };
}

interface Kept {
  event: AnyCanonicalEvent;
  at: number;
  seq: number;
}

/**
 * The pure part of a replay: keeps the dead letters of one endpoint that match the request, one per event id
 * (its earliest dead-lettering), and at most `limit` of them, the oldest first. Memory stays bounded by
 * `limit` events (plus the ids seen, to count `matched`), whatever the size of the sources.
 */
export class ReplaySelection extends DeadLetterCollector {
  private readonly seen = new Set<string>();
  private readonly kept = new Map<string, Kept>();
  private seq = 0;
  readonly sources: Record<ReplaySource, number> = { file: 0, kafka: 0 };

  constructor(
    endpointId: string,
    private readonly query: ReplayQuery,
  ) {
    super(endpointId);
  }

  /** One of the endpoint's dead letters; those outside the range or not named are ignored. */
  protected take(source: ReplaySource, entry: DeadLetterEntry): void {
    if (!isReplayableEvent(entry.event)) return this.malformed();
    const { from, to, ids } = this.query;
    if ((from !== undefined && entry.at < from) || (to !== undefined && entry.at >= to) || (ids && !ids.has(entry.event.id))) return;
    this.sources[source]++;
    this.seen.add(entry.event.id);
    const prior = this.kept.get(entry.event.id);
    if (prior && prior.at <= entry.at) return;
    this.kept.set(entry.event.id, { event: entry.event, at: entry.at, seq: this.seq++ });
    // One beyond `limit` is kept so that `pick` can tell where the rest begins.
    if (this.kept.size > 2 * this.query.limit) this.trim(this.query.limit + 1);
  }

  /** Distinct matching events so far. */
  get matched(): number {
    return this.seen.size;
  }

  /**
   * The events to replay, oldest dead letter first (so each key keeps its order), at most `room` of them, and
   * when the first one left out was dead-lettered.
   */
  pick(room: number): { events: AnyCanonicalEvent[]; restFrom?: number } {
    const n = Math.min(room, this.query.limit);
    const ordered = this.ordered();
    return { events: ordered.slice(0, n).map((k) => k.event), restFrom: ordered[n]?.at };
  }

  private ordered(): Kept[] {
    return [...this.kept.values()].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  private trim(n: number): void {
    for (const dropped of this.ordered().slice(n)) this.kept.delete(dropped.event.id);
  }
}

/** Offers one record of the dead-letter topic; its value is parsed only when it is this endpoint's. */
export function offerDlqRecord(selection: DeadLetterCollector, record: DlqRecord): void {
  if (record.origin === undefined || !selection.isFor(record.origin)) return;
  let event: unknown;
  try {
    event = record.value === null ? null : JSON.parse(record.value);
  } catch {
    return selection.malformed();
  }
  const h = record.headers ?? {};
  // The `dlq_` headers kafka.record.ts writes; numbers are strings there.
  const facts = factsOf({ reason: h.dlq_reason, error: h.dlq_error, attempts: h.dlq_attempts && Number(h.dlq_attempts), status: h.dlq_status && Number(h.dlq_status) });
  selection.offer('kafka', { origin: record.origin, at: record.timestamp, event, ...facts });
}

/** Budget for reading the dead-letter topic (ms). */
const REPLAY_KAFKA_TIMEOUT_MS = 30_000;

/** What a replay reads from and writes to. */
export interface ReplayDeps {
  /** The endpoint workers (undefined: no webhooks configured). */
  endpoints?: { endpoint(id: string): WebhookEndpoint | undefined };
  deadLetterFile: string;
  deadLetters: DeadLetters;
  /** With Kafka: the dead-letter topic and a client factory. */
  kafka?: { topic: string; client: () => Kafka };
  metrics: Metrics;
  log: Logger;
}

/**
 * `POST /v1/webhooks/:id/replay`: finds the endpoint's dead letters in the file and (with Kafka) the topic,
 * and re-submits their events to that endpoint alone, with their original ids (so the same `webhook-id`),
 * bypassing the dedupe window. Dead letters are never removed; an event that fails again is dead-lettered again.
 */
export class WebhookReplayer {
  /**
   * Endpoints with a read of their dead letters under way (a replay or a listing page): one at a time each, since each
   * reads every dead letter of the file and the topic; two would double the load.
   */
  private readonly running = new Set<string>();

  constructor(private readonly deps: ReplayDeps) {}

  /** One replay of an endpoint; throws `replay_running` while another of the same endpoint is under way. */
  async replay(endpointId: string, query: ReplayQuery): Promise<ReplayResult> {
    const endpoint = this.deps.endpoints?.endpoint(endpointId);
    if (!endpoint) throw new BridgeError('webhook_not_found', `no webhook endpoint with id "${endpointId}"`, { retriable: false });
    // A dry run sends nothing, so it may look at a disabled endpoint's dead letters before it is enabled again.
    if (!query.dryRun) assertEnabled(endpoint);
    if (this.running.has(endpointId)) {
      this.deps.metrics.refused.inc({ origin: 'replay', reason: 'replay_running' });
      throw new BridgeError('replay_running', `a replay of webhook endpoint "${endpointId}" is already running: wait for its answer, then send this one again`, { retriable: true });
    }
    this.running.add(endpointId);
    try {
      return await this.run(endpoint, endpointId, query);
    } finally {
      this.running.delete(endpointId);
    }
  }

  /**
   * `GET /v1/webhooks/:id/dead-letters`: one page of the endpoint's dead letters (file and topic), oldest first. Each
   * page reads the sources again (they are append-only), so pages of one endpoint are read one at a time, and not
   * while a replay of it reads: `replay_running` (409) meanwhile.
   */
  async deadLetters(endpointId: string, query: DeadLetterPageQuery): Promise<DeadLetterPage> {
    if (!this.deps.endpoints?.endpoint(endpointId)) throw new BridgeError('webhook_not_found', `no webhook endpoint with id "${endpointId}"`, { retriable: false });
    if (this.running.has(endpointId)) {
      this.deps.metrics.refused.inc({ origin: 'replay', reason: 'replay_running' });
      throw new BridgeError('replay_running', `the dead letters of webhook endpoint "${endpointId}" are being read (a replay or another page): send this request again after its answer`, { retriable: true });
    }
    this.running.add(endpointId);
    try {
      const page = new DeadLetterPageSelection(endpointId, query);
      await this.collect(page);
      return page.page();
    } finally {
      this.running.delete(endpointId);
    }
  }

  /** Reads every dead letter of the file and (with Kafka) the topic into `collector`. */
  private async collect(collector: DeadLetterCollector): Promise<void> {
    await readDeadLetterFile(this.deps.deadLetterFile, (line) => {
      const entry = parseDeadLetterLine(line);
      if (entry === 'malformed') collector.malformed();
      else if (entry) collector.offer('file', entry);
    });
    const kafka = this.deps.kafka;
    if (kafka) await scanDeadLetterTopic(kafka.client(), kafka.topic, (r) => offerDlqRecord(collector, r), REPLAY_KAFKA_TIMEOUT_MS, this.deps.log);
  }

  private async run(endpoint: WebhookEndpoint, endpointId: string, query: ReplayQuery): Promise<ReplayResult> {
    const selection = new ReplaySelection(endpointId, query);
    await this.collect(selection);
    // The scan takes time: the endpoint may have answered 410 meanwhile.
    if (!query.dryRun) assertEnabled(endpoint);
    const room = Math.max(0, endpoint.cfg.maxPending - endpoint.pending);
    const { events, restFrom } = selection.pick(room);
    const result: ReplayResult = { endpoint: endpointId, matched: selection.matched, replayed: 0, skippedMalformed: selection.skippedMalformed, sources: selection.sources };
    if (events.length < selection.matched) {
      result.truncated = true;
      if (restFrom !== undefined) result.resumeFrom = new Date(restFrom).toISOString();
    }
    if (query.dryRun) return { ...result, dryRun: true, wouldReplay: events.map((e) => ({ id: e.id, type: e.type })) };
    for (const event of events) {
      // A replayed event has no durable source to offer it again: one released at shutdown is dead-lettered again.
      endpoint.submit({ event, stableId: true, receivedAt: performance.now() }, (outcome) => {
        if (outcome === 'released') this.deps.deadLetters.writeFile({ reason: 'shutdown', origin: endpointId, channelId: event.channelid, event, error: 'replayed event not delivered before shutdown' });
      });
    }
    if (events.length) this.deps.metrics.webhookReplayed.inc({ endpoint: endpointId }, events.length);
    result.replayed = events.length;
    this.deps.log.info(result, 'webhook dead letters replayed');
    return result;
  }
}

function assertEnabled(endpoint: WebhookEndpoint): void {
  if (endpoint.snapshot().state !== 'disabled') return;
  const id = endpoint.cfg.id;
  throw new BridgeError('endpoint_disabled', `webhook endpoint "${id}" is disabled (it answered 410): enable it first with POST /v1/webhooks/${id}/enable, then replay`, { retriable: false });
}
