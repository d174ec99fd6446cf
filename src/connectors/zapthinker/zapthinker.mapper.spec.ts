import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UpstreamFrame } from '../connector.interface';
import type { MapContext, MappedEvent } from '../mapper';
import type { BaseData, UpstreamInfo } from '../../envelope/event-types';
import { mapZapThinker } from './zapthinker.mapper';

/** Recorded-shape Evolution frames (docs/providers.md#zapthinker); `$comment` in each file says where it comes from. */
const FIXTURES = join(__dirname, '__fixtures__');
const ctx: MapContext = { channelId: 'wa-sales', provider: 'zapthinker', receivedAt: new Date('2024-06-05T13:20:00Z') };
const RECEIVED = '2024-06-05T13:20:00.000Z';
const HEX32 = /^[0-9a-f]{32}$/;
const CONTACT = '5511999999999@s.whatsapp.net';
const GROUP = '120363025246125888@g.us';
const CHANNEL = { id: 'wa-sales', provider: 'zapthinker' };

function load(name: string): UpstreamFrame {
  const { event, payload } = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as UpstreamFrame;
  return { event, payload };
}

function mapOne(frame: UpstreamFrame, context: MapContext = ctx): MappedEvent {
  const out = mapZapThinker(frame, context);
  expect(out).toHaveLength(1);
  return out[0];
}

/** `data.upstream` of a mapped event (every upstream-derived event has one). */
const upstreamOf = (event: MappedEvent['event']): UpstreamInfo => (event.data as BaseData).upstream;

/** What the mapper must publish as `upstream.payload`: the envelope, unchanged, minus the `apikey` credential. */
function withoutApikey(payload: unknown): unknown {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return payload;
  const { apikey: _apikey, ...rest } = payload as Record<string, unknown>;
  return rest;
}

interface Case {
  type: string;
  /** Conversation id: also the subject and the second half of the partition key. */
  conversation?: string;
  time: string;
  stableId: boolean;
  /** `data` besides `channel` and `upstream`. */
  data: Record<string, unknown>;
  /** `upstream.error`, for frames the mapper cannot interpret. */
  error?: RegExp;
}

const inboundFrom = (name: string, id = CONTACT) => ({ id, name, role: 'contact' });

/** The exact canonical result of every fixture. */
const CASES: Record<string, Case> = {
  'messages.upsert.issue-631.json': {
    // fromMe:true = sent from the phone; time from messageTimestamp (16:18:47Z), not date_time (13:18:47.612"Z").
    type: 'chatbridge.message.sent', conversation: CONTACT, time: '2024-06-05T16:18:47.000Z', stableId: true,
    data: {
      conversation: { id: CONTACT },
      message: { id: '4DA1D8D1E6F0A3B2C4D5', direction: 'outbound', text: 'Seu pedido saiu para entrega', sender: { role: 'agent' } },
    },
  },
  'messages.upsert.text-inbound.json': {
    type: 'chatbridge.message.received', conversation: CONTACT, time: '2024-06-05T13:18:47.000Z', stableId: true,
    data: {
      conversation: { id: CONTACT },
      message: { id: '3A554E20ECABF3D45BB2', direction: 'inbound', text: 'Hello', sender: inboundFrom('Giovanna') },
    },
  },
  'messages.upsert.extended-text.json': {
    type: 'chatbridge.message.received', conversation: CONTACT, time: '2024-06-05T13:19:00.000Z', stableId: true,
    data: {
      conversation: { id: CONTACT },
      message: { id: '3EB0C767D26A1C2E7A41', direction: 'inbound', text: 'Is this still available? https://shop.example.com/p/42', sender: inboundFrom('Giovanna') },
    },
  },
  'messages.upsert.image.json': {
    type: 'chatbridge.message.received', conversation: CONTACT, time: '2024-06-05T13:19:05.000Z', stableId: true,
    data: {
      conversation: { id: CONTACT },
      message: {
        id: '3A0F1B2C3D4E5F607182',
        direction: 'inbound',
        text: 'Photo of the damaged box',
        sender: inboundFrom('Giovanna'),
        attachments: [{ url: 'https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m232/up-oil-image-abc.enc?ccb=9-4', mimeType: 'image/jpeg', size: 48213 }],
      },
    },
  },
  'messages.upsert.group.json': {
    // The conversation is the group; the sender is the participant who wrote.
    type: 'chatbridge.message.received', conversation: GROUP, time: '2024-06-05T13:19:10.000Z', stableId: true,
    data: {
      conversation: { id: GROUP },
      message: { id: '3AD8E1B4C0F2A9D7E6B5', direction: 'inbound', text: 'Good morning team', sender: inboundFrom('Rafael', '5511977776666@s.whatsapp.net') },
    },
  },
  'messages.upsert.timestamp-long.json': {
    type: 'chatbridge.message.received', conversation: CONTACT, time: '2024-06-05T13:19:15.000Z', stableId: true,
    data: {
      conversation: { id: CONTACT },
      message: { id: '3A11223344556677AABB', direction: 'inbound', text: 'Long timestamp', sender: inboundFrom('Giovanna') },
    },
  },
  'messages.upsert.timestamp-string.json': {
    type: 'chatbridge.message.received', conversation: CONTACT, time: '2024-06-05T13:19:20.000Z', stableId: true,
    data: {
      conversation: { id: CONTACT },
      message: { id: '3A99887766554433CCDD', direction: 'inbound', text: 'String timestamp', sender: inboundFrom('Giovanna') },
    },
  },
  'send.message.json': {
    type: 'chatbridge.message.sent', conversation: CONTACT, time: '2024-06-05T13:19:25.000Z', stableId: true,
    data: {
      conversation: { id: CONTACT },
      message: { id: 'BAE594145F4C59B4', direction: 'outbound', text: 'Olá! Your order is confirmed.', sender: { role: 'agent' } },
    },
  },
  'messages.update.delivery-ack.json': {
    // No event time in messages.update: the time received. The id is the WhatsApp keyId, not Evolution's messageId.
    type: 'chatbridge.message.updated', conversation: CONTACT, time: RECEIVED, stableId: true,
    data: { conversation: { id: CONTACT }, message: { id: 'BAE594145F4C59B4', direction: 'outbound', status: 'delivered' } },
  },
  'messages.update.read.json': {
    type: 'chatbridge.message.updated', conversation: CONTACT, time: RECEIVED, stableId: true,
    data: { conversation: { id: CONTACT }, message: { id: 'BAE594145F4C59B4', direction: 'outbound', status: 'read' } },
  },
  'messages.delete.json': {
    type: 'chatbridge.message.updated', conversation: CONTACT, time: RECEIVED, stableId: true,
    data: { conversation: { id: CONTACT }, message: { id: '3A554E20ECABF3D45BB2', direction: 'inbound', deleted: true, status: 'deleted' } },
  },
  'messages.edited.json': {
    // Baileys protocolMessage: new text in editedMessage, edit time in timestampMs (ms).
    type: 'chatbridge.message.updated', conversation: CONTACT, time: '2024-06-05T13:19:30.000Z', stableId: true,
    data: { conversation: { id: CONTACT }, message: { id: '3A554E20ECABF3D45BB2', direction: 'inbound', status: 'edited', text: 'Hello, sorry: I meant tomorrow' } },
  },
  'messages.edited.message-shape.json': {
    type: 'chatbridge.message.updated', conversation: CONTACT, time: '2024-06-05T13:19:35.000Z', stableId: true,
    data: { conversation: { id: CONTACT }, message: { id: 'BAE594145F4C59B4', direction: 'outbound', status: 'edited', text: 'Olá! Your order ships today.' } },
  },
  'connection.update.open.json': {
    type: 'chatbridge.account.status', time: RECEIVED, stableId: false, data: { account: { status: 'open' } },
  },
  'qrcode.updated.json': {
    type: 'chatbridge.account.status', time: RECEIVED, stableId: false, data: { account: { status: 'qrcode_updated' } },
  },
  'logout.instance.json': {
    type: 'chatbridge.account.status', time: RECEIVED, stableId: false, data: { account: { status: 'logged_out' } },
  },
  'presence.update.composing.json': {
    type: 'chatbridge.typing', conversation: CONTACT, time: RECEIVED, stableId: false,
    data: { conversation: { id: CONTACT }, typing: { active: true, sender: { id: CONTACT, role: 'contact' } } },
  },
  'presence.update.available.json': {
    // Online status is not typing: kept whole as a provider event, in the conversation's partition.
    type: 'chatbridge.provider.event', conversation: CONTACT, time: RECEIVED, stableId: false, data: {},
  },
  'group-participants.update.json': {
    type: 'chatbridge.conversation.updated', conversation: GROUP, time: RECEIVED, stableId: false,
    data: { conversation: { id: GROUP }, change: { kind: 'add' } },
  },
  'unknown.chats.archived.json': {
    type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {},
  },
  'malformed.messages.upsert.data-null.json': {
    type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {}, error: /data\.key missing/,
  },
  'malformed.messages.upsert.missing-key.json': {
    type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {}, error: /data\.key missing/,
  },
  'malformed.bare-string.json': {
    type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {}, error: /not an Evolution envelope/,
  },
};

describe('mapZapThinker: recorded frames', () => {
  it('has an expectation for every fixture file (and a file for every expectation)', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(Object.keys(CASES).sort());
  });

  it.each(Object.entries(CASES))('%s → the exact canonical event', (name, c) => {
    const frame = load(name);
    const { event, stableId } = mapOne(frame);
    const upstream: Record<string, unknown> = { event: frame.event, payload: withoutApikey(frame.payload) };
    if (c.error) upstream.error = expect.stringMatching(c.error);
    const expected: Record<string, unknown> = {
      specversion: '1.0',
      id: expect.stringMatching(HEX32),
      source: '/chatbridge/zapthinker/wa-sales',
      type: c.type,
      time: c.time,
      datacontenttype: 'application/json',
      dataschema: `https://chatbridge.dev/schemas/${c.type}.json#/properties/data`,
      partitionkey: c.conversation ? `wa-sales:${c.conversation}` : 'wa-sales',
      channelid: 'wa-sales',
      provider: 'zapthinker',
      data: { channel: CHANNEL, ...c.data, upstream },
    };
    if (c.conversation) expected.subject = c.conversation;
    // toStrictEqual: a field the upstream did not give must be absent, not present as undefined.
    expect(event).toStrictEqual(expected);
    expect(stableId).toBe(c.stableId);
  });
});

describe('mapZapThinker: details that matter downstream', () => {
  it('takes the event time from data.messageTimestamp, never from the mislabelled date_time', () => {
    const frame = load('messages.upsert.issue-631.json');
    const { event } = mapOne(frame);
    const dateTime = (frame.payload as { date_time: string }).date_time;
    expect(event.time).toBe(new Date(1717604327 * 1000).toISOString());
    expect(event.time).not.toBe(new Date(dateTime).toISOString());
    expect(event.time).not.toBe(RECEIVED);
  });

  it('falls back to the time received when messageTimestamp is unusable', () => {
    for (const ts of [undefined, null, 0, -5, 'soon', { low: 'x' }, 1e300]) {
      const frame = load('messages.upsert.text-inbound.json');
      (frame.payload as { data: Record<string, unknown> }).data.messageTimestamp = ts;
      expect(mapOne(frame).event.time).toBe(RECEIVED);
    }
  });

  it('strips the apikey credential from every published payload and does not mutate the frame', () => {
    const withKey = ['messages.upsert.issue-631.json', 'messages.upsert.text-inbound.json', 'unknown.chats.archived.json', 'malformed.messages.upsert.data-null.json'];
    for (const name of withKey) {
      const frame = load(name);
      const key = (frame.payload as { apikey: string }).apikey;
      expect(key).toMatch(/^EVO-INSTANCE-TOKEN/);
      const before = JSON.stringify(frame);
      const out = mapZapThinker(frame, ctx);
      expect(JSON.stringify(out)).not.toContain(key);
      expect(out[0].event.data).toHaveProperty('upstream.payload.instance');
      expect(JSON.stringify(frame)).toBe(before);
    }
  });

  it('keeps a pinned id for a given upstream message, across releases (else a replay after an upgrade is not deduplicated)', () => {
    expect(mapOne(load('messages.upsert.text-inbound.json')).event.id).toBe('e241613d5df355598b211798d02dab17');
  });

  it('gives a replayed message the same id, whatever the envelope around it', () => {
    const first = mapOne(load('messages.upsert.text-inbound.json'));
    const replay = load('messages.upsert.text-inbound.json');
    Object.assign(replay.payload as object, { date_time: '2024-06-05T11:00:00.000Z', apikey: 'other' });
    const second = mapOne(replay, { ...ctx, receivedAt: new Date('2024-06-05T14:00:00Z') });
    expect(second.event.id).toBe(first.event.id);
  });

  it('gives different statuses of one message, and different edits, different ids', () => {
    const delivered = mapOne(load('messages.update.delivery-ack.json')).event.id;
    const read = mapOne(load('messages.update.read.json')).event.id;
    expect(delivered).not.toBe(read);
    expect(mapOne(load('messages.update.read.json')).event.id).toBe(read);

    const edit1 = load('messages.edited.json');
    const edit2 = load('messages.edited.json');
    Object.assign((edit2.payload as { data: Record<string, unknown> }).data, {
      editedMessage: { conversation: 'Hello, sorry: I meant Friday' },
      timestampMs: '1717593580000',
    });
    const id1 = mapOne(edit1).event.id;
    const id2 = mapOne(edit2).event.id;
    expect(id1).not.toBe(id2);
    expect(mapOne(load('messages.edited.json')).event.id).toBe(id1);
  });

  it('gives frames without an upstream identity a fresh id each time', () => {
    const a = mapOne(load('unknown.chats.archived.json')).event.id;
    const b = mapOne(load('unknown.chats.archived.json')).event.id;
    expect(a).not.toBe(b);
  });

  it('never marks an unknown event as an error', () => {
    const { event } = mapOne({ event: 'labels.association', payload: { event: 'labels.association', instance: 'sales', data: { label: { id: '1' } } } });
    expect(event.type).toBe('chatbridge.provider.event');
    expect(upstreamOf(event)).not.toHaveProperty('error');
    expect(upstreamOf(event).payload).toEqual({ event: 'labels.association', instance: 'sales', data: { label: { id: '1' } } });
  });

  it('emits one typing event per typing participant of a presence update', () => {
    const frame = load('presence.update.composing.json');
    const data = (frame.payload as { data: { id: string; presences: Record<string, unknown> } }).data;
    data.id = GROUP;
    data.presences = {
      '5511977776666@s.whatsapp.net': { lastKnownPresence: 'composing' },
      '5511966665555@s.whatsapp.net': { lastKnownPresence: 'paused' },
      '5511955554444@s.whatsapp.net': { lastKnownPresence: 'available' },
    };
    const out = mapZapThinker(frame, ctx).map((m) => m.event);
    expect(out.map((e) => [e.type, e.subject, e.type === 'chatbridge.typing' ? e.data.typing : undefined])).toEqual([
      ['chatbridge.typing', GROUP, { active: true, sender: { id: '5511977776666@s.whatsapp.net', role: 'contact' } }],
      ['chatbridge.typing', GROUP, { active: false, sender: { id: '5511966665555@s.whatsapp.net', role: 'contact' } }],
    ]);
  });

  it('reads fileLength as a protobuf Long and the caption of a document', () => {
    const frame = load('messages.upsert.image.json');
    const data = (frame.payload as { data: { message: Record<string, unknown> } }).data;
    data.message = { documentMessage: { url: 'https://mmg.example/d.enc', mimetype: 'application/pdf', fileName: 'invoice.pdf', fileLength: { low: 1234, high: 0, unsigned: true }, caption: 'Invoice' } };
    const { event } = mapOne(frame);
    expect(event.data).toMatchObject({
      message: { text: 'Invoice', attachments: [{ url: 'https://mmg.example/d.enc', mimeType: 'application/pdf', name: 'invoice.pdf', size: 1234 }] },
    });
  });
});

describe('mapZapThinker: never throws', () => {
  const EVENTS = [
    'messages.upsert', 'send.message', 'messages.update', 'send.message.update', 'messages.edited', 'messages.delete',
    'presence.update', 'connection.update', 'qrcode.updated', 'status.instance', 'logout.instance', 'remove.instance',
    'group-participants.update', 'groups.update', 'chats.delete', 'contacts.upsert', 'chats.archived', '',
  ];
  const key = { remoteJid: CONTACT, id: 'X1' };
  const GARBAGE_DATA: unknown[] = [
    undefined, null, 0, 42, Number.NaN, -1, true, 'text', [], [null], [[]], {}, { key: null }, { key: [] }, { key: 'k' },
    { key: { remoteJid: null, id: null } }, { key: { remoteJid: 5, id: {} } }, { key, message: null }, { key, message: [] },
    { key, message: { imageMessage: null, extendedTextMessage: null, conversation: null } },
    { key, message: { imageMessage: { fileLength: { low: null, high: null } }, videoMessage: [] } },
    { key, message: { editedMessage: null }, messageTimestamp: { low: 'x', high: null } },
    { key, editedMessage: { message: null }, timestampMs: { low: null } },
    { key, messageTimestamp: 1e300 }, { key, messageTimestamp: Number.POSITIVE_INFINITY }, { key, messageTimestamp: '12abc' },
    { keyId: null, remoteJid: null }, { keyId: 'K', status: null, update: null }, { keyId: 'K', status: 42 },
    { presences: null }, { presences: [] }, { presences: { a: null, b: [], c: { lastKnownPresence: null } } }, { id: null, presences: { x: { lastKnownPresence: 'composing' } } },
    { state: null }, { qrcode: null }, [{ id: null, action: null }], [undefined],
  ];
  const GARBAGE_PAYLOADS: unknown[] = [undefined, null, 0, 7, Number.NaN, '', 'str', true, [], [null], [{ data: null }], ...GARBAGE_DATA.map((data) => ({ event: 'x', data }))];

  it.each(EVENTS)('maps every garbage payload of %j to well-formed events', (name) => {
    for (const payload of GARBAGE_PAYLOADS) {
      let out: MappedEvent[] = [];
      expect(() => {
        out = mapZapThinker({ event: name, payload }, ctx);
      }).not.toThrow();
      expect(out.length).toBeGreaterThan(0);
      for (const { event } of out) {
        expect(event.specversion).toBe('1.0');
        expect(event.id).toMatch(HEX32);
        expect(Number.isNaN(Date.parse(event.time))).toBe(false);
        expect(event.partitionkey.startsWith('wa-sales')).toBe(true);
        expect(event.data).toHaveProperty('upstream');
        expect(() => JSON.stringify(event)).not.toThrow();
      }
    }
  });

  it('keeps the payload of a frame it cannot read, and says why', () => {
    for (const payload of [undefined, 42, [1, 2], 'bare']) {
      const { event } = mapOne({ event: 'messages.upsert', payload });
      expect(event.type).toBe('chatbridge.provider.event');
      expect(upstreamOf(event).payload).toEqual(payload);
      expect(upstreamOf(event).error).toEqual(expect.any(String));
    }
  });

  it('survives event names that are not strings', () => {
    for (const name of [undefined, null, 5, {}, []]) {
      expect(() => mapZapThinker({ event: name as unknown as string, payload: { data: null } }, ctx)).not.toThrow();
    }
  });
});
