import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BaseData, UpstreamInfo } from '../../envelope/event-types';
import type { UpstreamFrame } from '../connector.interface';
import type { MapContext, MappedEvent } from '../mapper';
import { canonicalJson, mapJwtWebSocket } from './jwt-websocket.mapper';

/** Recorded-shape frames of the JWT WebSocket service (docs/providers.md#jwt-websocket); `$comment` in each file says why it exists. */
const FIXTURES = join(__dirname, '__fixtures__');
const ctx: MapContext = { channelId: 'support', provider: 'jwt-websocket', receivedAt: new Date('2024-06-05T13:20:00Z') };
const RECEIVED = '2024-06-05T13:20:00.000Z';
const HEX32 = /^[0-9a-f]{32}$/;
const CHANNEL = { id: 'support', provider: 'jwt-websocket' };

function load(name: string): UpstreamFrame {
  const { event, payload } = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as UpstreamFrame;
  return { event, payload };
}

function mapOne(frame: UpstreamFrame, context: MapContext = ctx): MappedEvent {
  const out = mapJwtWebSocket(frame, context);
  expect(out).toHaveLength(1);
  return out[0];
}

const upstreamOf = (event: MappedEvent['event']): UpstreamInfo => (event.data as BaseData).upstream;

interface Case {
  type: string;
  conversation?: string;
  time: string;
  stableId: boolean;
  data: Record<string, unknown>;
  error?: RegExp;
}

/** The exact canonical result of every fixture (`null`: nothing is published). */
const CASES: Record<string, Case | null> = {
  'chat_message.json': {
    type: 'chatbridge.message.received', conversation: 'conv-123', time: '2023-08-15T10:30:00.000Z', stableId: true,
    data: { conversation: { id: 'conv-123' }, message: { direction: 'inbound', text: 'Hello there!', sender: { id: 'user-456', role: 'contact' } } },
  },
  'chat_message.no-timestamp.json': {
    type: 'chatbridge.message.received', conversation: 'conv-123', time: RECEIVED, stableId: false,
    data: { conversation: { id: 'conv-123' }, message: { direction: 'inbound', text: 'ok', sender: { id: 'user-456', role: 'contact' } } },
  },
  'chat_message.no-sender.json': {
    type: 'chatbridge.message.received', conversation: 'conv-777', time: '2023-08-15T10:31:00.000Z', stableId: true,
    data: { conversation: { id: 'conv-777' }, message: { direction: 'inbound', text: '', sender: { role: 'contact' } } },
  },
  'notification.json': {
    type: 'chatbridge.notification', time: '2023-08-15T10:30:05.000Z', stableId: true,
    data: { notification: { message: 'New comment on your post', level: 'info' } },
  },
  'status_update.json': {
    type: 'chatbridge.entity.status', time: '2023-08-15T10:30:10.000Z', stableId: true,
    data: { entity: { type: 'task', id: 'task-789', status: 'completed' } },
  },
  'pong.json': null,
  'error.subscription_failed.json': { type: 'chatbridge.provider.event', time: '2023-08-15T10:30:20.000Z', stableId: false, data: {} },
  'error.unauthorized.top-level-code.json': { type: 'chatbridge.provider.event', time: '2023-08-15T10:30:25.000Z', stableId: false, data: {} },
  'unknown.typing.json': { type: 'chatbridge.provider.event', time: '2023-08-15T10:30:30.000Z', stableId: true, data: {} },
  'malformed.not-json.json': { type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {}, error: /not a JSON object/ },
  'malformed.no-type.json': { type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {}, error: /no "type"/ },
  'malformed.chat_message.no-conversation.json': {
    type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {}, error: /conversation_id missing/,
  },
  'malformed.status_update.data-null.json': { type: 'chatbridge.provider.event', time: RECEIVED, stableId: false, data: {}, error: /status_update: data/ },
};

describe('mapJwtWebSocket: recorded frames', () => {
  it('has an expectation for every fixture file (and a file for every expectation)', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(Object.keys(CASES).sort());
  });

  it.each(Object.entries(CASES))('%s → the exact canonical result', (name, c) => {
    const frame = load(name);
    const out = mapJwtWebSocket(frame, ctx);
    if (c === null) {
      expect(out).toEqual([]);
      return;
    }
    expect(out).toHaveLength(1);
    const { event, stableId } = out[0];
    const upstream: Record<string, unknown> = { event: frame.event, payload: frame.payload };
    if (c.error) upstream.error = expect.stringMatching(c.error);
    const expected: Record<string, unknown> = {
      specversion: '1.0',
      id: expect.stringMatching(HEX32),
      source: '/chatbridge/jwt-websocket/support',
      type: c.type,
      time: c.time,
      datacontenttype: 'application/json',
      dataschema: `https://chatbridge.dev/schemas/${c.type}.json#/properties/data`,
      partitionkey: c.conversation ? `support:${c.conversation}` : 'support',
      channelid: 'support',
      provider: 'jwt-websocket',
      data: { channel: CHANNEL, ...c.data, upstream },
    };
    if (c.conversation) expected.subject = c.conversation;
    expect(event).toStrictEqual(expected);
    expect(stableId).toBe(c.stableId);
  });
});

describe('mapJwtWebSocket: identity from content', () => {
  it('keeps a pinned id for a given frame across releases (else a replay after an upgrade is not deduplicated)', () => {
    expect(mapOne(load('chat_message.json')).event.id).toBe('e2511a8bb02531daa6a3d7d62d061a36');
  });

  it('gives an exact replay the same id, whatever the key order or the time received', () => {
    const first = mapOne(load('chat_message.json'));
    const reordered: UpstreamFrame = {
      event: 'chat_message',
      payload: { timestamp: '2023-08-15T10:30:00Z', data: { content: 'Hello there!', sender_id: 'user-456', conversation_id: 'conv-123' }, type: 'chat_message' },
    };
    expect(mapOne(reordered, { ...ctx, receivedAt: new Date('2024-06-06T00:00:00Z') }).event.id).toBe(first.event.id);
  });

  it('gives frames that differ in timestamp, content or any top-level field different ids', () => {
    const base = mapOne(load('chat_message.json')).event.id;
    const later = load('chat_message.json');
    (later.payload as { timestamp: string }).timestamp = '2023-08-15T10:30:01Z';
    const edited = load('chat_message.json');
    (edited.payload as { data: { content: string } }).data.content = 'Hello there';
    expect(new Set([base, mapOne(later).event.id, mapOne(edited).event.id]).size).toBe(3);
    const a = mapOne({ event: 'presence', payload: { type: 'presence', code: 'a', data: {}, timestamp: 't' } }).event.id;
    const b = mapOne({ event: 'presence', payload: { type: 'presence', code: 'b', data: {}, timestamp: 't' } }).event.id;
    expect(a).not.toBe(b);
  });

  it('never dedupes error frames: each answers one request of ours', () => {
    const twice = [load('error.subscription_failed.json'), load('error.subscription_failed.json')].map((f) => mapOne(f).event.id);
    expect(twice[0]).not.toBe(twice[1]);
  });

  it('gives the same content in another channel another id', () => {
    expect(mapOne(load('chat_message.json'), { ...ctx, channelId: 'other' }).event.id).not.toBe(mapOne(load('chat_message.json')).event.id);
  });

  it('gives frames without a timestamp a fresh id each time', () => {
    expect(mapOne(load('chat_message.no-timestamp.json')).event.id).not.toBe(mapOne(load('chat_message.no-timestamp.json')).event.id);
  });

  it('canonical JSON sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: undefined, e: null })).toBe('{"b":[{"c":2,"d":1}],"e":null}');
  });

  it('keeps an unparseable timestamp in the identity but takes the time received', () => {
    const frame = load('notification.json');
    (frame.payload as { timestamp: string }).timestamp = 'yesterday';
    const { event, stableId } = mapOne(frame);
    expect(event.time).toBe(RECEIVED);
    expect(stableId).toBe(true);
  });
});

describe('mapJwtWebSocket: never throws', () => {
  const TYPES = ['chat_message', 'notification', 'status_update', 'error', 'pong', 'subscribe', '', 'x'];
  const GARBAGE_DATA: unknown[] = [
    undefined, null, 0, 42, Number.NaN, true, 'text', [], [null], {}, { conversation_id: null }, { conversation_id: 5, content: 7, sender_id: {} },
    { conversation_id: {} }, { conversation_id: 'c', content: null }, { message: [], level: {} }, { entity_type: null, entity_id: 3, status: [] },
    { code: null, channel: 5 }, { code: 'unauthorized' },
  ];
  const TIMESTAMPS: unknown[] = [undefined, null, 0, -1, 1e300, '', 'x', {}, [], '2023-08-15T10:30:00Z'];

  it.each(TYPES)('maps every garbage frame of type %j to well-formed events', (type) => {
    for (const data of GARBAGE_DATA) {
      for (const timestamp of TIMESTAMPS) {
        let out: MappedEvent[] = [];
        expect(() => {
          out = mapJwtWebSocket({ event: type, payload: { type, data, timestamp } }, ctx);
        }).not.toThrow();
        if (type !== 'pong') expect(out.length).toBe(1);
        for (const { event } of out) {
          expect(event.id).toMatch(HEX32);
          expect(Number.isNaN(Date.parse(event.time))).toBe(false);
          expect(event.partitionkey.startsWith('support')).toBe(true);
          expect(event.data).toHaveProperty('upstream');
          expect(() => JSON.stringify(event)).not.toThrow();
        }
      }
    }
  });

  it('keeps the payload of a frame it cannot read, and says why', () => {
    for (const payload of [undefined, null, 42, [1, 2], 'bare', { type: 5 }, { type: '' }]) {
      const { event } = mapOne({ event: 'message', payload });
      expect(event.type).toBe('chatbridge.provider.event');
      expect(upstreamOf(event).payload).toEqual(payload);
      expect(upstreamOf(event).error).toEqual(expect.any(String));
    }
  });

  it('never marks an unknown type or an error frame as malformed', () => {
    for (const name of ['unknown.typing.json', 'error.subscription_failed.json', 'error.unauthorized.top-level-code.json']) {
      expect(upstreamOf(mapOne(load(name)).event)).not.toHaveProperty('error');
    }
  });

  it('does not mutate the frame', () => {
    const frame = load('chat_message.json');
    const before = JSON.stringify(frame);
    mapJwtWebSocket(frame, ctx);
    expect(JSON.stringify(frame)).toBe(before);
  });
});
