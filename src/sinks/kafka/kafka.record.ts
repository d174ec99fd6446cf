import type { IHeaders, Message } from 'kafkajs';
import { headerStrings } from '../../kafka/record-headers';
import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { DeadLetter } from '../../pipeline/dead-letters';

/**
 * CloudEvents Kafka protocol binding, binary mode (docs/kafka.md): key = `partitionkey`, value = `data` as JSON,
 * every other attribute in a `ce_` header, and `content-type` = `datacontenttype`. Pure.
 */
export function toKafkaMessage(event: AnyCanonicalEvent): Message {
  const headers: IHeaders = {
    ce_specversion: event.specversion,
    ce_id: event.id,
    ce_source: event.source,
    ce_type: event.type,
    ce_time: event.time,
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

/**
 * The inverse of `toKafkaMessage`: a record of `topics.events` back into the canonical event. Pure; throws
 * an Error naming what is missing for a record that is not a chatbridge event (another producer's record).
 */
export function fromKafkaMessage(record: ConsumedRecord): AnyCanonicalEvent {
  const h = headerStrings(record.headers);
  const missing = REQUIRED_HEADERS.filter((name) => !h[name]);
  if (missing.length) throw new Error(`not a chatbridge event record: missing header(s) ${missing.join(', ')}`);
  if (h.ce_specversion !== '1.0') throw new Error(`unsupported ce_specversion "${h.ce_specversion.slice(0, 20)}"`);
  if (record.value === null) throw new Error('record has no value');
  let data: unknown;
  try {
    data = JSON.parse(Buffer.isBuffer(record.value) ? record.value.toString('utf8') : record.value);
  } catch {
    throw new Error('record value is not JSON');
  }
  const event: Record<string, unknown> = {
    specversion: '1.0',
    id: h.ce_id,
    source: h.ce_source,
    type: h.ce_type,
    time: h.ce_time,
    datacontenttype: 'application/json',
    partitionkey: h.ce_partitionkey,
    channelid: h.ce_channelid,
    provider: h.ce_provider,
    data,
  };
  // Attributes in createEvent's order, so the structured body is byte-identical to the in-process one.
  if (h.ce_subject !== undefined) event.subject = h.ce_subject;
  return event as unknown as AnyCanonicalEvent;
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
