import { CloudEvent, Kafka, type KafkaMessage } from 'cloudevents';
import type { IHeaders, Message } from 'kafkajs';
import { mapZapThinker } from '../../connectors/zapthinker/zapthinker.mapper';
import { createEvent, type AnyCanonicalEvent } from '../../envelope/envelope';
import { fromKafkaMessage, toDeadLetterMessage, toKafkaMessage } from './kafka.record';
import { createBridgeEvent, toStructured } from '../../envelope/envelope';

const JID = '5511999999999@s.whatsapp.net';

/** An inbound message, with non-ASCII text so UTF-8 handling is exercised. */
function messageEvent(): AnyCanonicalEvent {
  const [{ event }] = mapZapThinker(
    {
      event: 'messages.upsert',
      payload: {
        event: 'messages.upsert',
        instance: 'sales',
        data: { key: { remoteJid: JID, fromMe: false, id: '3A554E20ECABF3D45BB2' }, pushName: 'Giovanna', message: { conversation: 'Olá, ação ✓' }, messageTimestamp: 1717593527 },
      },
    },
    { channelId: 'wa-sales', provider: 'zapthinker', receivedAt: new Date('2024-06-05T13:20:00Z') },
  );
  return event;
}

/** An event with no conversation, hence no subject. */
function accountEvent(): AnyCanonicalEvent {
  return createEvent({
    type: 'chatbridge.account.status',
    channelId: 'wa-sales',
    provider: 'zapthinker',
    data: { channel: { id: 'wa-sales', provider: 'zapthinker' }, account: { status: 'open' }, upstream: { event: 'connection.update', payload: { state: 'open' } } },
  }, new Date('2024-06-05T13:20:00.123Z')).event;
}

/** What a kafkajs consumer hands to eachMessage: key, value and every header value as Buffers, timestamp as a string. */
function asConsumed(m: Message): { key: Buffer | null; value: Buffer | null; headers: IHeaders; timestamp: string } {
  const buf = (v: unknown) => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8'));
  const headers: IHeaders = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = buf(v) ?? undefined;
  return { key: buf(m.key), value: buf(m.value), headers, timestamp: '1717593600000' };
}

/**
 * Hands a consumed record to the cloudevents SDK the way it needs it. `Kafka.toEvent` calls string methods
 * (`startsWith`) on header values and copies them as attribute values, so headers must be strings: decode each
 * Buffer as UTF-8. The key becomes the `partitionkey` attribute as is, so decode it too. The value may stay a
 * Buffer: for `content-type: application/json` the SDK JSON-parses a Buffer itself. `body` is required by the
 * SDK's Message type only; the Kafka binding reads `value`.
 */
function toSdkMessage(consumed: ReturnType<typeof asConsumed>): KafkaMessage<Buffer> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(consumed.headers)) {
    if (v !== undefined) headers[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  }
  const value = consumed.value as Buffer;
  return { key: (consumed.key as Buffer).toString('utf8'), value, body: value, headers, timestamp: consumed.timestamp };
}

describe('toKafkaMessage (CloudEvents Kafka binding, binary mode)', () => {
  it('uses partitionkey as the record key and the JSON of data as the value', () => {
    const event = messageEvent();
    const m = toKafkaMessage(event);
    expect(m.key).toBe(`wa-sales:${JID}`);
    expect(typeof m.value).toBe('string');
    expect(JSON.parse(m.value as string)).toEqual(event.data);
    // Only data: the attributes travel in headers, not in the value.
    expect(JSON.parse(m.value as string)).not.toHaveProperty('specversion');
  });

  it('puts every attribute in a ce_ header, plus content-type', () => {
    const event = messageEvent();
    expect(toKafkaMessage(event).headers).toStrictEqual({
      ce_specversion: '1.0',
      ce_id: event.id,
      ce_source: '/chatbridge/zapthinker/wa-sales',
      ce_type: 'chatbridge.message.received',
      ce_time: '2024-06-05T13:18:47.000Z',
      ce_dataschema: 'https://chatbridge.dev/schemas/chatbridge.message.received.json#/properties/data',
      ce_subject: JID,
      ce_partitionkey: `wa-sales:${JID}`,
      ce_channelid: 'wa-sales',
      ce_provider: 'zapthinker',
      'content-type': 'application/json',
    });
  });

  it('sends ce_subject only when the event has a subject', () => {
    const m = toKafkaMessage(accountEvent());
    expect(m.key).toBe('wa-sales');
    expect(m.headers).not.toHaveProperty('ce_subject');
    expect(m.headers?.ce_partitionkey).toBe('wa-sales');
  });

  it.each([
    ['a message with a subject', messageEvent],
    ['an event without a subject', accountEvent],
  ])('is read back by the cloudevents SDK into the same event: %s', (_label, make) => {
    const event = make();
    const consumed = asConsumed(toKafkaMessage(event));
    const back = Kafka.toEvent(toSdkMessage(consumed)) as CloudEvent<unknown>;

    expect(Array.isArray(back)).toBe(false);
    expect(back.validate()).toBe(true);
    expect(back.specversion).toBe('1.0');
    expect(back.id).toBe(event.id);
    expect(back.type).toBe(event.type);
    expect(back.source).toBe(event.source);
    expect(back.subject).toBe(event.subject);
    expect(back.time).toBe(event.time);
    expect(back.datacontenttype).toBe('application/json');
    expect(back.partitionkey).toBe(event.partitionkey);
    expect(back.channelid).toBe('wa-sales');
    expect(back.provider).toBe('zapthinker');
    expect(back.data).toEqual(event.data);
    // Nothing else appears: no stray extension from an unexpected header.
    const known = ['specversion', 'id', 'type', 'source', 'subject', 'time', 'datacontenttype', 'dataschema', 'partitionkey', 'channelid', 'provider', 'data'];
    const present = Object.entries(back).filter(([, v]) => v !== undefined).map(([k]) => k);
    expect(present.every((k) => known.includes(k))).toBe(true);
  });

  it('round-trips the same through the SDK as the SDK\'s own binary serialisation', () => {
    const event = messageEvent();
    const ours = Kafka.toEvent(toSdkMessage(asConsumed(toKafkaMessage(event)))) as CloudEvent<unknown>;
    const sdk = Kafka.binary(new CloudEvent<unknown>({ ...event }));
    const theirs = Kafka.toEvent({ ...sdk, headers: sdk.headers, value: JSON.stringify(sdk.value) } as KafkaMessage<string>) as CloudEvent<unknown>;
    expect(ours.toJSON()).toEqual(theirs.toJSON());
  });
});

describe('fromKafkaMessage (the webhook consumer reads events back)', () => {
  it('gives back the same event, byte-identical in structured form, with and without a subject', () => {
    for (const event of [messageEvent(), accountEvent()]) {
      const back = fromKafkaMessage(asConsumed(toKafkaMessage(event)));
      expect(back).toEqual(event);
      expect(toStructured(back)).toBe(toStructured(event));
    }
  });

  it('carries the bridge\'s own events (no channel) without ce_channelid/ce_provider headers, and reads them back', () => {
    const { event } = createBridgeEvent('chatbridge.webhook.status', 'webhooks', 'crm', { webhook: { id: 'crm', url: 'https://crm.example/h' }, status: { state: 'disabled', previous: 'active', reason: 'gone', httpStatus: 410 } });
    const message = toKafkaMessage(event);
    expect(message.headers).not.toHaveProperty('ce_channelid');
    expect(message.headers).not.toHaveProperty('ce_provider');
    expect(message.key).toBe('webhooks:crm');
    expect(fromKafkaMessage(asConsumed(message))).toEqual(event);
    // docs/kafka.md: the cloudevents SDK reads it back too, without channel extensions.
    const back = Kafka.toEvent(toSdkMessage(asConsumed(message))) as CloudEvent<unknown>;
    expect(back.validate()).toBe(true);
    expect(back).toMatchObject({ id: event.id, type: 'chatbridge.webhook.status', source: '/chatbridge/webhooks/crm', partitionkey: 'webhooks:crm', data: event.data });
    expect(back.channelid).toBeUndefined();
  });

  it('refuses records that are not chatbridge events, saying what is wrong', () => {
    const good = asConsumed(toKafkaMessage(accountEvent()));
    expect(() => fromKafkaMessage({ value: Buffer.from('{}'), headers: {} })).toThrow(/missing header\(s\) ce_specversion, ce_id/);
    expect(() => fromKafkaMessage({ ...good, value: Buffer.from('not json') })).toThrow('record value is not JSON');
    expect(() => fromKafkaMessage({ ...good, value: null })).toThrow('record has no value');
    expect(() => fromKafkaMessage({ ...good, headers: { ...good.headers, ce_specversion: Buffer.from('0.3') } })).toThrow('unsupported ce_specversion "0.3"');
  });
});

describe('toKafkaMessage in structured mode (kafka.producer.cloudEventsMode: structured)', () => {
  it('puts the whole event in the value, keyed by partitionkey, with content-type as the only header', () => {
    const event = messageEvent();
    const m = toKafkaMessage(event, 'structured');
    expect(m.key).toBe(`wa-sales:${JID}`);
    expect(m.headers).toStrictEqual({ 'content-type': 'application/cloudevents+json' });
    // The same JSON a webhook carries.
    expect(m.value).toBe(toStructured(event));
  });

  it.each([
    ['a message with a subject', messageEvent],
    ['an event without a subject', accountEvent],
  ])('is read back by the cloudevents SDK into the same event as binary mode is: %s', (_label, make) => {
    const event = make();
    const structured = Kafka.toEvent(toSdkMessage(asConsumed(toKafkaMessage(event, 'structured')))) as CloudEvent<unknown>;
    const binary = Kafka.toEvent(toSdkMessage(asConsumed(toKafkaMessage(event, 'binary')))) as CloudEvent<unknown>;
    expect(Array.isArray(structured)).toBe(false);
    expect(structured.validate()).toBe(true);
    expect(structured).toMatchObject({ id: event.id, type: event.type, source: event.source, subject: event.subject, time: event.time, partitionkey: event.partitionkey, channelid: 'wa-sales', provider: 'zapthinker' });
    expect(structured.data).toEqual(event.data);
    expect(structured.toJSON()).toEqual(binary.toJSON());
  });

  it('is read back by fromKafkaMessage, byte-identical in structured form, as the SDK\'s own structured serialisation is', () => {
    for (const event of [messageEvent(), accountEvent()]) {
      const back = fromKafkaMessage(asConsumed(toKafkaMessage(event, 'structured')));
      expect(back).toEqual(event);
      expect(toStructured(back)).toBe(toStructured(event));
    }
    const event = messageEvent();
    const sdk = Kafka.structured(new CloudEvent<unknown>({ ...event }));
    expect(fromKafkaMessage({ key: sdk.key, value: sdk.value as string, headers: sdk.headers as IHeaders })).toEqual(event);
  });

  it('refuses structured records that are not chatbridge events, saying what is wrong', () => {
    const headers = { 'content-type': Buffer.from('application/cloudevents+json') };
    expect(() => fromKafkaMessage({ value: Buffer.from('{"specversion":"1.0","id":"x"}'), headers })).toThrow('missing attribute(s) source, type, time, partitionkey');
    expect(() => fromKafkaMessage({ value: Buffer.from('[1]'), headers })).toThrow('structured value is not an object');
    expect(() => fromKafkaMessage({ value: Buffer.from('not json'), headers })).toThrow('record value is not JSON');
    expect(() => fromKafkaMessage({ value: null, headers })).toThrow('record has no value');
    const old = { ...JSON.parse(toStructured(messageEvent())), specversion: '0.3' };
    expect(() => fromKafkaMessage({ value: JSON.stringify(old), headers })).toThrow('unsupported specversion "0.3"');
  });
});

describe('toDeadLetterMessage (records of topics.deadLetter)', () => {
  it('keeps a poison record\'s original key, headers and value bytes, and says where it was read', () => {
    const value = Buffer.from([0xff, 0x00, 0x7b]);
    const m = toDeadLetterMessage({
      reason: 'poison_record', origin: 'commands', error: 'x'.repeat(5000),
      record: { topic: 'chatbridge.commands', partition: 3, offset: '42', key: Buffer.from('wa').toString('base64'), value: value.toString('base64'), headers: { 'content-type': 'text/plain', trace: 't1' } },
    });
    expect(m.key).toEqual(Buffer.from('wa'));
    expect(m.value).toEqual(value);
    expect(m.headers).toMatchObject({ 'content-type': 'text/plain', trace: 't1', dlq_reason: 'poison_record', dlq_origin: 'commands', dlq_topic: 'chatbridge.commands', dlq_partition: '3', dlq_offset: '42' });
    expect((m.headers?.dlq_error as string).length).toBe(1000);
  });

  it('keeps a null key and value null', () => {
    const m = toDeadLetterMessage({ reason: 'poison_record', origin: 'commands', record: { topic: 't', partition: 0, offset: '0', key: null, value: null, headers: {} } });
    expect(m.key).toBeNull();
    expect(m.value).toBeNull();
  });

  it('writes an event as JSON with its id and the reason in headers', () => {
    const event = messageEvent();
    const m = toDeadLetterMessage({ reason: 'webhook_rejected', origin: 'crm', channelId: 'wa-sales', event, status: 400, attempts: 2 });
    expect(m.key).toBe(event.partitionkey);
    expect(JSON.parse(m.value as string)).toEqual(event);
    expect(m.headers).toStrictEqual({ dlq_reason: 'webhook_rejected', dlq_origin: 'crm', dlq_channelid: 'wa-sales', dlq_attempts: '2', dlq_status: '400', 'content-type': 'application/json', ce_id: event.id });
  });
});
