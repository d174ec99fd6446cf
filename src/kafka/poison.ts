import type { KafkaMessage } from 'kafkajs';
import { headerStrings } from './record-headers';
import type { DeadRecord } from '../pipeline/dead-letters';

/** True for an error that declares the operation may succeed later (`retriable: true`); anything else is not. */
export function isRetriable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retriable?: unknown }).retriable === true;
}

/** A consumed record as a dead letter keeps it: where it was, key and value as base64, headers as strings. */
export function deadRecord(topic: string, partition: number, message: KafkaMessage): DeadRecord {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ? message.key.toString('base64') : null,
    value: message.value ? message.value.toString('base64') : null,
    headers: headerStrings(message.headers),
  };
}
