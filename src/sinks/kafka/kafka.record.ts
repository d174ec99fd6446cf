import type { IHeaders, Message } from 'kafkajs';
import { headerStrings } from '../../kafka/record-headers';
import { toStructured, type AnyCanonicalEvent } from '../../envelope/envelope';
import type { DeadLetter } from '../../pipeline/dead-letters';

/** How events are written to `topics.events` (`kafka.producer.cloudEventsMode`, docs/kafka.md). */
export type CloudEventsMode = 'binary' | 'structured';

/** `content-type` of a structured-mode record: the CloudEvents JSON event format (JSON text is UTF-8). */
export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';

/**
 * CloudEvents Kafka protocol binding (docs/kafka.md). Key = `partitionkey` in both modes. Binary mode: value = `data`
 * as JSON, every other attribute in a `ce_` header, and `content-type` = `datacontenttype`. Structured mode: value =
 * the whole event as JSON (its structured form, as webhooks carry it), and `content-type` is the only header. Pure.
 */
export function toKafkaMessage(event: AnyCanonicalEvent, mode: CloudEventsMode = 'binary'): Message {
  if (mode === 'structured') return { key: event.partitionkey, value: toStructured(event), headers: { 'content-type': STRUCTURED_CONTENT_TYPE } };
  const headers: IHeaders = {
    ce_specversion: event.specversion,
    ce_id: event.id,
    ce_source: event.source,
    ce_type: event.type,
    ce_time: event.time,
    ce_dataschema: event.dataschema,
    ce_partitionkey: event.partitionkey,
    'content-type': event.datacontenttype,
  };
  // Absent on the bridge's own events (no channel).
  if (event.channelid !== undefined) headers.ce_channelid = event.channelid;
  if (event.provider !== undefined) headers.ce_provider = event.provider;
  if (event.subject !== undefined) headers.ce_subject = event.subject;
  return { key: event.partitionkey, value: JSON.stringify(event.data), headers };
}

/** The parts of a consumed record `fromKafkaMessage` reads. */
export interface ConsumedRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: IHeaders;
}

const REQUIRED_HEADERS = ['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_time', 'ce_partitionkey'] as const;
const REQUIRED_ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'time', 'partitionkey'] as const;

/**
 * The inverse of `toKafkaMessage`, in either mode (a `content-type` of `application/cloudevents+json` says structured):
 * a record of `topics.events` back into the canonical event, so readers follow a bridge whose mode changed. Pure;
 * throws an Error naming what is missing for a record that is not a chatbridge event (another producer's record).
 */
export function fromKafkaMessage(record: ConsumedRecord): AnyCanonicalEvent {
  const h = headerStrings(record.headers);
  if (h['content-type']?.startsWith(STRUCTURED_CONTENT_TYPE)) return fromStructured(record);
  const missing = REQUIRED_HEADERS.filter((name) => !h[name]);
  if (missing.length) throw new Error(`not a chatbridge event record: missing header(s) ${missing.join(', ')}`);
  if (h.ce_specversion !== '1.0') throw new Error(`unsupported ce_specversion "${h.ce_specversion.slice(0, 20)}"`);
  const data = valueJson(record);
  const event: Record<string, unknown> = {
    specversion: '1.0',
    id: h.ce_id,
    source: h.ce_source,
    type: h.ce_type,
    time: h.ce_time,
    datacontenttype: 'application/json',
    // Absent only in records written before events carried it.
    dataschema: h.ce_dataschema,
    partitionkey: h.ce_partitionkey,
    channelid: h.ce_channelid,
    provider: h.ce_provider,
    data,
  };
  // Attributes in createEvent's order, so the structured body is byte-identical to the in-process one.
  if (h.ce_subject !== undefined) event.subject = h.ce_subject;
  return event as unknown as AnyCanonicalEvent;
}

/** A structured-mode record: the value is the event, written by `toStructured`, so it parses back to the same object. */
function fromStructured(record: ConsumedRecord): AnyCanonicalEvent {
  const event = valueJson(record);
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new Error('not a chatbridge event record: structured value is not an object');
  const o = event as Record<string, unknown>;
  const missing = REQUIRED_ATTRIBUTES.filter((name) => typeof o[name] !== 'string' || !o[name]);
  if (missing.length) throw new Error(`not a chatbridge event record: missing attribute(s) ${missing.join(', ')}`);
  if (o.specversion !== '1.0') throw new Error(`unsupported specversion "${String(o.specversion).slice(0, 20)}"`);
  if (!('data' in o)) throw new Error('not a chatbridge event record: no data');
  return event as AnyCanonicalEvent;
}

function valueJson(record: ConsumedRecord): unknown {
  if (record.value === null) throw new Error('record has no value');
  try {
    return JSON.parse(Buffer.isBuffer(record.value) ? record.value.toString('utf8') : record.value);
  } catch {
    throw new Error('record value is not JSON');
  }
}

/** Longest `dlq_error` header (characters). */
const MAX_ERROR_HEADER = 1000;

/**
 * A dead letter as a record of `topics.deadLetter`: why and where in `dlq_` headers. A poison Kafka record keeps its
 * original key, headers and value (decoded from base64), with `dlq_topic`/`dlq_partition`/`dlq_offset` saying where
 * it was read; anything else is the event (or frame) as JSON. Pure.
 */
export function toDeadLetterMessage(item: DeadLetter): Message {
  const dlq: Record<string, string> = { dlq_reason: item.reason, dlq_origin: item.origin };
  if (item.channelId) dlq.dlq_channelid = item.channelId;
  if (item.error) dlq.dlq_error = item.error.slice(0, MAX_ERROR_HEADER);
  if (item.attempts !== undefined) dlq.dlq_attempts = String(item.attempts);
  if (item.status !== undefined) dlq.dlq_status = String(item.status);
  const { record } = item;
  if (record) {
    const bytes = (b64: string | null) => (b64 === null ? null : Buffer.from(b64, 'base64'));
    const where = { dlq_topic: record.topic, dlq_partition: String(record.partition), dlq_offset: record.offset };
    return { key: bytes(record.key), value: bytes(record.value), headers: { ...record.headers, ...dlq, ...where } };
  }
  const headers: IHeaders = { ...dlq, 'content-type': 'application/json' };
  if (item.event) headers.ce_id = item.event.id;
  return { key: item.event?.partitionkey ?? item.channelId ?? null, value: JSON.stringify(item.event ?? item.frame ?? null), headers };
}
