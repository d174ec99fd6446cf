import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UpstreamFrame } from '../connector.interface';
import type { MapContext, MappedEvent } from '../mapper';
import type { BaseData, UpstreamInfo } from '../../envelope/event-types';
import { mapWatchers } from './watchers.mapper';
import { watchersProvider } from './watchers.provider';

/** Recorded-shape Watchers frames (docs/providers.md#watchers); `$comment` in each file says where it comes from. */
const FIXTURES = join(__dirname, '__fixtures__');
const ctx: MapContext = { channelId: 'bot-eu', provider: 'watchers', receivedAt: new Date('2024-06-05T13:20:00Z') };
const RECEIVED = '2024-06-05T13:20:00.000Z';
const HEX32 = /^[0-9a-f]{32}$/;
const BOT = 'bot-1';
const ROOM = '144444';
const CHANNEL = { id: 'bot-eu', provider: 'watchers' };
/** sha256(`bot-eu\0msg:test:144444:102`), first 32 hex: must never change, or replays after an upgrade are not deduplicated. */
const PINNED = '7c72ca02303fe1ea48c6e703efb3e122';

function load(name: string): UpstreamFrame {
  const { event, payload } = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as UpstreamFrame;
  return { event, payload };
}

function mapOne(frame: UpstreamFrame, context: MapContext = ctx, bot: string | undefined = BOT): MappedEvent {
  const out = mapWatchers(frame, context, bot);
  expect(out).toHaveLength(1);
  return out[0];
}

const upstreamOf = (event: MappedEvent['event']): UpstreamInfo => (event.data as BaseData).upstream;

interface Case {
  type: string;
  conversation?: string;
  stableId: boolean;
  /** `data` besides `channel` and `upstream`. */
  data: Record<string, unknown>;
  error?: RegExp;
}

/** The exact canonical result of every fixture (no Watchers event carries a time: always the time received). */
const CASES: Record<string, Case> = {
  'message.inbound.json': {
    type: 'chatbridge.message.received', conversation: ROOM, stableId: true,
    data: { conversation: { id: ROOM }, message: { id: '102', direction: 'inbound', text: 'test', sender: { role: 'contact', id: '123' } } },
  },
  'message.bot-echo.json': {
    type: 'chatbridge.message.sent', conversation: ROOM, stableId: true,
    data: { conversation: { id: ROOM }, message: { id: '103', direction: 'outbound', text: 'Hi! How can I help?', sender: { role: 'bot', id: BOT } } },
  },
  'message.numeric-ids.json': {
    type: 'chatbridge.message.received', conversation: ROOM, stableId: true,
    data: { conversation: { id: ROOM }, message: { id: '104', direction: 'inbound', text: 'numbers', sender: { role: 'contact', id: '123' } } },
  },
  'message.no-text.json': {
    type: 'chatbridge.message.received', conversation: ROOM, stableId: true,
    data: { conversation: { id: ROOM }, message: { id: '105', direction: 'inbound', sender: { role: 'contact' } } },
  },
  'unknown.exception.json': { type: 'chatbridge.provider.event', stableId: false, data: {} },
  'malformed.bare-string.json': { type: 'chatbridge.provider.event', stableId: false, data: {}, error: /not an object/ },
  'malformed.message-null.json': {
    type: 'chatbridge.provider.event', conversation: ROOM, stableId: false, data: { conversation: { id: ROOM } }, error: /message object missing/,
  },
  'malformed.no-message-id.json': {
    type: 'chatbridge.provider.event', conversation: ROOM, stableId: false, data: { conversation: { id: ROOM } }, error: /message\.id missing/,
  },
  'malformed.no-room.json': { type: 'chatbridge.provider.event', stableId: false, data: {}, error: /roomId missing/ },
};

describe('mapWatchers: recorded frames', () => {
  it('has an expectation for every fixture file (and a file for every expectation)', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(Object.keys(CASES).sort());
  });

  it.each(Object.entries(CASES))('%s → the exact canonical event', (name, c) => {
    const frame = load(name);
    const { event, stableId } = mapOne(frame);
    const upstream: Record<string, unknown> = { event: frame.event, payload: frame.payload };
    if (c.error) upstream.error = expect.stringMatching(c.error);
    const expected: Record<string, unknown> = {
      specversion: '1.0',
      id: expect.stringMatching(HEX32),
      source: '/chatbridge/watchers/bot-eu',
      type: c.type,
      time: RECEIVED,
      datacontenttype: 'application/json',
      dataschema: `https://chatbridge.dev/schemas/${c.type}.json#/properties/data`,
      partitionkey: c.conversation ? `bot-eu:${c.conversation}` : 'bot-eu',
      channelid: 'bot-eu',
      provider: 'watchers',
      data: { channel: CHANNEL, ...c.data, upstream },
    };
    if (c.conversation) expected.subject = c.conversation;
    expect(event).toStrictEqual(expected);
    expect(stableId).toBe(c.stableId);
  });
});

describe('mapWatchers: details that matter downstream', () => {
  it('keeps a pinned id for a given upstream message, across releases', () => {
    expect(mapOne(load('message.inbound.json')).event.id).toBe(mapOne(load('message.inbound.json'), { ...ctx, receivedAt: new Date() }).event.id);
    expect(mapOne(load('message.inbound.json')).event.id).toBe(PINNED);
  });

  it('identifies a message by (project, roomId, message.id): numeric and string ids agree, other rooms and projects differ', () => {
    const inbound = load('message.inbound.json');
    const asNumbers = load('message.inbound.json');
    Object.assign(asNumbers.payload as object, { roomId: 144444 });
    (asNumbers.payload as { message: Record<string, unknown> }).message.id = '102';
    expect(mapOne(asNumbers).event.id).toBe(mapOne(inbound).event.id);

    const otherRoom = load('message.inbound.json');
    Object.assign(otherRoom.payload as object, { roomId: '155555' });
    const otherProject = load('message.inbound.json');
    Object.assign(otherProject.payload as object, { project: 'prod' });
    const ids = new Set([inbound, otherRoom, otherProject].map((f) => mapOne(f).event.id));
    expect(ids.size).toBe(3);
  });

  it('treats every message as inbound when the bot id is unknown, and only the bot id as the bot', () => {
    expect(mapWatchers(load('message.bot-echo.json'), ctx)[0].event.type).toBe('chatbridge.message.received');
    expect(mapOne(load('message.inbound.json'), ctx, '123').event.type).toBe('chatbridge.message.sent');
    expect(mapOne(load('message.no-text.json'), ctx, '').event.type).toBe('chatbridge.message.received');
  });

  it('reads the bot id from the channel options the provider mapper is given', () => {
    expect(watchersProvider.map(load('message.bot-echo.json'), { ...ctx, options: { userId: BOT } })[0].event.type).toBe('chatbridge.message.sent');
    expect(watchersProvider.map(load('message.bot-echo.json'), { ...ctx, options: { userId: 'someone-else' } })[0].event.type).toBe('chatbridge.message.received');
  });

  it('gives frames without an upstream identity a fresh id each time, and never marks unknown events as errors', () => {
    const a = mapOne(load('unknown.exception.json')).event;
    expect(a.id).not.toBe(mapOne(load('unknown.exception.json')).event.id);
    expect(upstreamOf(a)).not.toHaveProperty('error');
  });

  it('does not mutate the frame', () => {
    const frame = load('message.bot-echo.json');
    const before = JSON.stringify(frame);
    mapWatchers(frame, ctx, BOT);
    expect(JSON.stringify(frame)).toBe(before);
  });
});

describe('mapWatchers: never throws', () => {
  const message = { id: 1, text: 't' };
  const GARBAGE: unknown[] = [
    undefined, null, 0, 42, Number.NaN, true, '', 'text', [], [null], {}, { roomId: null }, { roomId: {} }, { roomId: [] },
    { roomId: ROOM }, { roomId: ROOM, message: 'm' }, { roomId: ROOM, message: [] }, { roomId: ROOM, message: { id: null } },
    { roomId: ROOM, message: { id: {} } }, { roomId: ROOM, message: { id: Number.NaN } }, { roomId: ROOM, message: { id: 1, text: 5 } },
    { roomId: ROOM, message, userId: {} }, { roomId: ROOM, message, userId: null, project: [] }, { roomId: ROOM, message, userId: Number.POSITIVE_INFINITY },
  ];

  it.each(['message', 'connect', 'exception', ''])('maps every garbage payload of %j to well-formed events', (name) => {
    for (const payload of GARBAGE) {
      let out: MappedEvent[] = [];
      expect(() => {
        out = mapWatchers({ event: name, payload }, ctx, BOT);
      }).not.toThrow();
      expect(out).toHaveLength(1);
      for (const { event } of out) {
        expect(event.id).toMatch(HEX32);
        expect(Number.isNaN(Date.parse(event.time))).toBe(false);
        expect(event.partitionkey.startsWith('bot-eu')).toBe(true);
        expect(upstreamOf(event).payload).toBe(payload);
        expect(() => JSON.stringify(event)).not.toThrow();
      }
    }
  });

  it('survives event names that are not strings', () => {
    for (const name of [undefined, null, 5, {}, []]) {
      expect(() => mapWatchers({ event: name as unknown as string, payload: { roomId: ROOM, message } }, ctx, BOT)).not.toThrow();
    }
  });
});
