import { KafkaJSConnectionError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';
import { recordRefusal } from './refusal';

/** A protocol error as kafkajs builds it from a produce response's error code. */
function protocolError(type: string, code: number, retriable = false): KafkaJSProtocolError {
  return new KafkaJSProtocolError(Object.assign(new Error(`broker said ${type}`), { type, code, retriable }));
}

describe('recordRefusal (the broker refuses records themselves)', () => {
  it.each([
    ['MESSAGE_TOO_LARGE', 10],
    ['RECORD_LIST_TOO_LARGE', 18],
    ['INVALID_RECORD', 87],
    ['CORRUPT_MESSAGE', 2],
  ])('recognises %s', (type, code) => {
    expect(recordRefusal(protocolError(type, code))).toBe(type);
  });

  it('looks through kafkajs wrappers: a non-retriable error, and retries exhausted on a retriable one', () => {
    const tooLarge = protocolError('MESSAGE_TOO_LARGE', 10);
    expect(recordRefusal(Object.assign(new KafkaJSNonRetriableError(tooLarge), { cause: tooLarge }))).toBe('MESSAGE_TOO_LARGE');
    const corrupt = protocolError('CORRUPT_MESSAGE', 2, true);
    expect(recordRefusal(new KafkaJSNumberOfRetriesExceeded(corrupt, { retryCount: 5, retryTime: 1000 } as never))).toBe('CORRUPT_MESSAGE');
  });

  it('reads the numeric code of a protocol error that lacks its type', () => {
    const e = protocolError('MESSAGE_TOO_LARGE', 10) as unknown as { type?: string };
    delete e.type;
    expect(recordRefusal(e)).toBe('MESSAGE_TOO_LARGE');
  });

  it('is not fooled by message text, and leaves other errors to the retry path', () => {
    expect(recordRefusal(new Error('MESSAGE_TOO_LARGE: message larger than max'))).toBeUndefined();
    expect(recordRefusal(new KafkaJSConnectionError('Connection error: MESSAGE_TOO_LARGE'))).toBeUndefined();
    expect(recordRefusal(protocolError('NOT_ENOUGH_REPLICAS', 19, true))).toBeUndefined();
    expect(recordRefusal(protocolError('INVALID_REQUIRED_ACKS', 21))).toBeUndefined();
    expect(recordRefusal(undefined)).toBeUndefined();
    expect(recordRefusal('MESSAGE_TOO_LARGE')).toBeUndefined();
  });
});
