import type { IHeaders, Message } from 'kafkajs';
import type { AnyCanonicalEvent } from '../../envelope/envelope';

/**
 * CloudEvents Kafka protocol binding, binary mode (SPEC §5): key = `partitionkey`, value = `data` as JSON,
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
    ce_channelid: event.channelid,
    ce_provider: event.provider,
    'content-type': event.datacontenttype,
  };
  if (event.subject !== undefined) headers.ce_subject = event.subject;
  return { key: event.partitionkey, value: JSON.stringify(event.data), headers };
}
