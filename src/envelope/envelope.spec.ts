import { mapZapThinker } from '../connectors/zapthinker/zapthinker.mapper';
import type { UpstreamFrame } from '../connectors/connector.interface';
import type { MapContext } from '../connectors/mapper';
import { createEvent, partitionKey, stableEventId, toStructured, uniqueEventId } from './envelope';
import type { BaseData } from './event-types';

const ctx: MapContext = { channelId: 'wa-sales', provider: 'zapthinker', receivedAt: new Date('2024-06-05T13:20:00Z') };
const JID = '5511999999999@s.whatsapp.net';
const HEX = /^[0-9a-f]+$/;

function upsert(id: string, remoteJid = JID, text = 'Hello'): UpstreamFrame {
  return {
    event: 'messages.upsert',
    payload: {
      event: 'messages.upsert',
      instance: 'sales',
      data: { key: { remoteJid, fromMe: false, id }, pushName: 'Giovanna', message: { conversation: text }, messageTimestamp: 1717593527 },
      date_time: '2024-06-05T10:18:47.612Z',
    },
  };
}

function statusUpdate(status: string): UpstreamFrame {
  return {
    event: 'messages.update',
    payload: { event: 'messages.update', instance: 'sales', data: { keyId: 'BAE594145F4C59B4', remoteJid: JID, fromMe: true, status } },
  };
}

const idOf = (frame: UpstreamFrame, context: MapContext = ctx) => mapZapThinker(frame, context)[0].event.id;

const data = (channelId = 'wa-sales'): BaseData => ({ channel: { id: channelId, provider: 'zapthinker' }, upstream: { event: 'x', payload: {} } });

describe('event id stability', () => {
  it('gives the same upstream message the same id, whenever and however often it is mapped', () => {
    const first = idOf(upsert('3A554E20ECABF3D45BB2'));
    const later = idOf(upsert('3A554E20ECABF3D45BB2'), { ...ctx, receivedAt: new Date('2024-06-06T09:00:00Z') });
    // A replay may differ in content (e.g. an edit already applied): the id follows the upstream identity only.
    const replayed = idOf(upsert('3A554E20ECABF3D45BB2', JID, 'Hello (replayed)'));
    expect(later).toBe(first);
    expect(replayed).toBe(first);
  });

  it('gives different messages, conversations and channels different ids', () => {
    const base = idOf(upsert('3A554E20ECABF3D45BB2'));
    const ids = [
      base,
      idOf(upsert('3A554E20ECABF3D45BB3')),
      idOf(upsert('3A554E20ECABF3D45BB2', '5511888888888@s.whatsapp.net')),
      idOf(upsert('3A554E20ECABF3D45BB2'), { ...ctx, channelId: 'wa-support' }),
    ];
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('gives each status of one message its own id, and the same status the same id', () => {
    const delivered = idOf(statusUpdate('DELIVERY_ACK'));
    const read = idOf(statusUpdate('READ'));
    expect(read).not.toBe(delivered);
    expect(idOf(statusUpdate('READ'))).toBe(read);
    // And none of them collides with the message itself.
    expect(idOf(upsert('BAE594145F4C59B4'))).not.toBe(delivered);
  });

  it('keeps every stable id of earlier releases: the first 16 bytes of SHA-256(channel NUL key), in hex', () => {
    // Fixed here, not recomputed: consumers deduplicate by id across upgrades, so a change of how it is written must fail.
    expect(stableEventId('wa-sales', 'msg:5511@s.whatsapp.net:ABC')).toBe('327b09b7d75899c383791ec1ae7b3caa');
  });

  it('does not let the channel/key boundary shift (channel "a" + key "b:c" ≠ channel "a:b" + key "c")', () => {
    expect(stableEventId('a', 'b:c')).not.toBe(stableEventId('a:b', 'c'));
    expect(stableEventId('ab', 'c')).not.toBe(stableEventId('a', 'bc'));
  });

  it('makes ids lowercase hex, without "." (a Standard Webhooks webhook-id must not contain one)', () => {
    for (const id of [stableEventId('wa-sales', 'msg:5511@s.whatsapp.net:ABC.DEF'), uniqueEventId(), idOf(upsert('X'))]) {
      expect(id).toMatch(HEX);
      expect(id).toBe(id.toLowerCase());
      expect(id).not.toContain('.');
      expect(id).toHaveLength(32);
    }
  });

  it('gives events without an upstream key a fresh id every time', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { event, stableId } = createEvent({ type: 'chatbridge.provider.event', channelId: 'wa-sales', provider: 'zapthinker', data: data() }, ctx.receivedAt);
      expect(stableId).toBe(false);
      ids.add(event.id);
    }
    expect(ids.size).toBe(200);
  });

  it('marks events with an upstream key as stable', () => {
    const { event, stableId } = createEvent({ type: 'chatbridge.provider.event', channelId: 'wa-sales', provider: 'zapthinker', upstreamKey: 'k', data: data() });
    expect(stableId).toBe(true);
    expect(event.id).toBe(stableEventId('wa-sales', 'k'));
  });
});

describe('partitionKey', () => {
  it('is <channelId>:<conversationId> with a conversation', () => {
    expect(partitionKey('wa-sales', JID)).toBe(`wa-sales:${JID}`);
  });

  it('is <channelId> without one (undefined or empty)', () => {
    expect(partitionKey('wa-sales')).toBe('wa-sales');
    expect(partitionKey('wa-sales', '')).toBe('wa-sales');
  });
});

describe('createEvent', () => {
  const receivedAt = new Date('2024-06-05T13:20:00.000Z');

  it('builds the full CloudEvents envelope with subject and partition key from the conversation', () => {
    const { event } = createEvent(
      { type: 'chatbridge.provider.event', channelId: 'wa-sales', provider: 'zapthinker', conversationId: JID, time: new Date('2024-06-05T13:18:47Z'), data: data() },
      receivedAt,
    );
    expect(event).toStrictEqual({
      specversion: '1.0',
      id: expect.stringMatching(HEX),
      source: '/chatbridge/zapthinker/wa-sales',
      type: 'chatbridge.provider.event',
      subject: JID,
      time: '2024-06-05T13:18:47.000Z',
      datacontenttype: 'application/json',
      dataschema: 'https://chatbridge.dev/schemas/chatbridge.provider.event.json#/properties/data',
      partitionkey: `wa-sales:${JID}`,
      channelid: 'wa-sales',
      provider: 'zapthinker',
      data: data(),
    });
  });

  it('has no subject (not even undefined) without a conversation', () => {
    const { event } = createEvent({ type: 'chatbridge.provider.event', channelId: 'wa-sales', provider: 'zapthinker', data: data() }, receivedAt);
    expect(event).not.toHaveProperty('subject');
    expect(event.partitionkey).toBe('wa-sales');
    expect(JSON.parse(toStructured(event))).not.toHaveProperty('subject');
  });

  it('falls back to the time received when the upstream time is missing or invalid', () => {
    for (const time of [undefined, new Date(Number.NaN), new Date('not a date')]) {
      const { event } = createEvent({ type: 'chatbridge.provider.event', channelId: 'wa-sales', provider: 'zapthinker', time, data: data() }, receivedAt);
      expect(event.time).toBe('2024-06-05T13:20:00.000Z');
    }
  });

  it('writes time as RFC 3339 UTC', () => {
    const { event } = createEvent({ type: 'chatbridge.provider.event', channelId: 'c', provider: 'zapthinker', time: new Date(1717593527123), data: data('c') });
    expect(event.time).toBe('2024-06-05T13:18:47.123Z');
  });
});
