/**
 * Kafka protocol errors by which a broker refuses the records themselves, not the moment: sending the same
 * records again gets the same answer, so the refused record must leave the queue. By kafkajs error `type`
 * (the protocol error name); the numeric codes are listed for reading broker logs.
 */
const RECORD_REFUSALS: Readonly<Record<string, number>> = {
  CORRUPT_MESSAGE: 2, // failed its CRC, exceeds the valid size, or is otherwise corrupt
  MESSAGE_TOO_LARGE: 10, // larger than the topic's max.message.bytes / broker's message.max.bytes
  RECORD_LIST_TOO_LARGE: 18, // the batch is larger than the segment size
  INVALID_RECORD: 87, // refused by broker-side validation
};

const REFUSAL_CODES = new Set(Object.values(RECORD_REFUSALS));

/** How deep to look through `cause` (kafkajs wraps a protocol error after its own retries). */
const MAX_CAUSE_DEPTH = 5;

/**
 * The protocol error type when `err` (or an error it wraps) is a broker refusal of records, else undefined.
 * Decided by the error's `type` or numeric `code`, never by its message. Pure.
 */
export function recordRefusal(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && e && typeof e === 'object'; depth++) {
    const { type, code, name, cause } = e as { type?: unknown; code?: unknown; name?: unknown; cause?: unknown };
    if (typeof type === 'string' && type in RECORD_REFUSALS) return type;
    if (name === 'KafkaJSProtocolError' && typeof code === 'number' && REFUSAL_CODES.has(code)) {
      return Object.keys(RECORD_REFUSALS).find((k) => RECORD_REFUSALS[k] === code);
    }
    e = cause;
  }
  return undefined;
}
