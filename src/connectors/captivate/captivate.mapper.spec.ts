import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UpstreamFrame } from '../connector.interface';
import type { MapContext, MappedEvent } from '../mapper';
import type { BaseData } from '../../envelope/event-types';
import { mapCaptivate } from './captivate.mapper';

/** Recorded-shape Captivate frames (docs/providers.md#captivate, manual socket-event-types.md); `$comment` says where each comes from. */
const FIXTURES = join(__dirname, '__fixtures__');
const ctx: MapContext = { channelId: 'hub', provider: 'captivate', receivedAt: new Date('2024-06-05T13:20:00Z') };
const RECEIVED = '2024-06-05T13:20:00.000Z';
const HEX32 = /^[0-9a-f]{32}$/;
const CONV = 'd1816568-2b18-4e8b-a09e-ec6f86eeccfd';
const CHANNEL = { id: 'hub', provider: 'captivate' };

function load(name: string): UpstreamFrame {
  const { event, payload } = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as UpstreamFrame;
  return { event, payload };
}

function mapOne(frame: UpstreamFrame): MappedEvent {
  const out = mapCaptivate(frame, ctx);
  expect(out).toHaveLength(1);
  return out[0];
}

interface Case {
  type: string;
  conversation?: string;
  time?: string;
  stableId: boolean;
  /** `upstream.event` when it differs from the frame's event name. */
  upstreamEvent?: string;
  /** `data` besides `channel`, `conversation` and `upstream`. */
  data?: Record<string, unknown>;
  error?: RegExp;
}

const bot = { role: 'bot' };
const agent = { role: 'agent' };
const out = (extra: Record<string, unknown>) => ({ message: { direction: 'outbound', ...extra } });

/** The exact canonical result of every fixture (`null`: nothing is published). */
const CASES: Record<string, Case | null> = {
  'socket_connected.seed.json': null,
  'socket_connected.manual.json': null,
  'conversation_start_success.seed.json': { type: 'chatbridge.conversation.started', conversation: CONV, stableId: true },
  'conversation_start_success.manual.json': { type: 'chatbridge.conversation.started', conversation: `super-unique-user-id-${CONV}`, stableId: true },
  'bot_message.manual-example.json': {
    // No conversation_id in the manual's bot_message: the channel's partition. Buttons stay in upstream.payload.
    type: 'chatbridge.message.sent', stableId: true,
    data: out({ id: 'f14efe6e-773a-4a52-85f5-90b6d801f2d1', text: "Hi. I'm the Captivate Bot.\nYou can leave us your contact details or you can chat to us directly now!", sender: bot }),
  },
  'bot_message.with-conversation.json': {
    type: 'chatbridge.message.sent', conversation: CONV, stableId: true,
    data: out({ id: '7c1e2b8a-3f0d-4d5e-9a61-2b4c6d8e0f12', text: 'Here are our plans:', sender: bot }),
  },
  'bot_message.no-ch-msg-id.json': {
    // event_id keys the dedupe, but it is the delivery's id, not the message's: no message.id.
    type: 'chatbridge.message.sent', conversation: CONV, stableId: true, data: out({ text: 'Anything else?', sender: bot }),
  },
  'livechat_message.files.json': {
    type: 'chatbridge.message.sent', conversation: CONV, stableId: true,
    data: out({ text: 'hello', sender: agent, attachments: [{ url: 'https://fc-euc1-00-pics-bkt-00.s3.eu-central-1.amazonaws.com/9ca67af8/img_37o2ah9f8j.jpeg', mimeType: 'image' }] }),
  },
  'livechat_message.empty-conversation.json': {
    type: 'chatbridge.message.sent', stableId: true, data: out({ text: 'Our agents are currently busy at the moment.', sender: agent }),
  },
  'conversation_update.livechatAgentConnected.json': {
    type: 'chatbridge.conversation.updated', conversation: CONV, stableId: true,
    data: {
      change: {
        kind: 'livechatAgentConnected',
        agent: { role: 'agent', id: 'U024BE7LH', name: 'Sigrid Ramos' },
        detail: { agentInfo: { id: 'U024BE7LH', name: 'Sigrid Ramos', email: 'sigrid@example.com' } },
      },
    },
  },
  'conversation_update.livechatAgentDisconnected.json': {
    type: 'chatbridge.conversation.updated', conversation: CONV, stableId: true, data: { change: { kind: 'livechatAgentDisconnected' } },
  },
  'conversation_update.failedAgentAssignment.json': {
    type: 'chatbridge.conversation.updated', conversation: CONV, stableId: false, data: { change: { kind: 'failedAgentAssignment', detail: {} } },
  },
  'general_error.invalid-conversation.json': { type: 'chatbridge.provider.event', conversation: 'temp123-aaaaa-aaaa', stableId: true },
  'general_error.nested-in-conversation_update.json': { type: 'chatbridge.provider.event', conversation: CONV, stableId: false, upstreamEvent: 'general_error' },
  'general_error.413-message-link.json': { type: 'chatbridge.provider.event', conversation: CONV, stableId: true },
  'action.received.json': { type: 'chatbridge.provider.event', conversation: CONV, stableId: true },
  'conversation_transcript.manual.json': { type: 'chatbridge.provider.event', conversation: 'hart_acb3b13e-4818-40fa-b57e-d8a80feba5c1', stableId: true },
  'conversation_metadata.json': { type: 'chatbridge.provider.event', conversation: CONV, stableId: true },
  'unknown.user_conversations.json': { type: 'chatbridge.provider.event', stableId: true },
  'transcript_message.rest-bot.json': {
    type: 'chatbridge.message.sent', conversation: CONV, time: '2024-06-05T13:21:07.000Z', stableId: true,
    data: out({ id: '7c1e2b8a-3f0d-4d5e-9a61-2b4c6d8e0f12', text: 'Here are our plans:', sender: bot }),
  },
  'transcript_message.manual-group-agent.json': {
    type: 'chatbridge.message.sent', conversation: CONV, stableId: true,
    data: out({ text: 'hello', sender: agent, attachments: [{ url: 'https://files.example.com/a.png', mimeType: 'image/png', name: 'a.png', size: 2048 }] }),
  },
  'malformed.not-json.json': { type: 'chatbridge.provider.event', stableId: false, error: /not a Captivate event frame/ },
  'malformed.no-event-type.json': { type: 'chatbridge.provider.event', stableId: false, error: /not a Captivate event frame/ },
  'malformed.bot_message.no-content.json': { type: 'chatbridge.provider.event', stableId: false, error: /bot_message: event_payload\.content missing/ },
  'malformed.conversation_start_success.no-id.json': { type: 'chatbridge.provider.event', stableId: false, error: /conversation_id missing/ },
  'malformed.transcript_message.user-entry.json': { type: 'chatbridge.provider.event', stableId: false, error: /no bot or agent entry/ },
};

describe('mapCaptivate: recorded frames', () => {
  it('has an expectation for every fixture file (and a file for every expectation)', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(Object.keys(CASES).sort());
  });

  it.each(Object.entries(CASES))('%s → the exact canonical result', (name, c) => {
    const frame = load(name);
    if (c === null) {
      expect(mapCaptivate(frame, ctx)).toEqual([]);
      return;
    }
    const { event, stableId } = mapOne(frame);
    const upstream: Record<string, unknown> = { event: c.upstreamEvent ?? frame.event, payload: frame.payload };
    if (c.error) upstream.error = expect.stringMatching(c.error);
    const expected: Record<string, unknown> = {
      specversion: '1.0',
      id: expect.stringMatching(HEX32),
      source: '/chatbridge/captivate/hub',
      type: c.type,
      time: c.time ?? RECEIVED,
      datacontenttype: 'application/json',
      dataschema: `https://chatbridge.dev/schemas/${c.type}.json#/properties/data`,
      partitionkey: c.conversation ? `hub:${c.conversation}` : 'hub',
      channelid: 'hub',
      provider: 'captivate',
      data: { channel: CHANNEL, ...(c.conversation ? { conversation: { id: c.conversation } } : {}), ...(c.data ?? {}), upstream },
    };
    if (c.conversation) expected.subject = c.conversation;
    expect(event).toEqual(expected);
    expect(stableId).toBe(c.stableId);
  });
});

describe('mapCaptivate: stable ids', () => {
  const idOf = (name: string) => mapOne(load(name)).event.id;

  it('gives a transcript entry the id of the live frame of the same message', () => {
    // ch_msg_id (live) = message_id (REST transcript).
    expect(idOf('transcript_message.rest-bot.json')).toBe(idOf('bot_message.with-conversation.json'));
    // No message id: the transcript group's event_id = the live frame's event_id.
    expect(idOf('transcript_message.manual-group-agent.json')).toBe(idOf('livechat_message.files.json'));
  });

  it('gives the same frame the same id every time (replays dedupe), and the wrapper does not matter', () => {
    expect(idOf('bot_message.manual-example.json')).toBe(idOf('bot_message.manual-example.json'));
    expect(idOf('conversation_start_success.seed.json')).toBe(mapOne(load('conversation_start_success.seed.json')).event.id);
    const wrapped = load('bot_message.with-conversation.json');
    const bare = { event: wrapped.event, payload: { action: 'receiveMessage', event: wrapped.payload } };
    expect(mapOne(bare).event.id).toBe(idOf('bot_message.with-conversation.json'));
  });

  it('depends on the channel', () => {
    const frame = load('bot_message.with-conversation.json');
    expect(mapCaptivate(frame, { ...ctx, channelId: 'other' })[0].event.id).not.toBe(idOf('bot_message.with-conversation.json'));
  });
});

describe('mapCaptivate: never throws', () => {
  const TYPES = [
    'socket_connected', 'bot_message', 'livechat_message', 'conversation_start_success', 'conversation_update', 'general_error',
    'action', 'conversation_transcript', 'conversation_metadata', 'transcript_message', 'x', '',
  ];
  const PAYLOADS: unknown[] = [
    undefined, null, 0, 42, Number.NaN, '', 'text', true, [], [null], {}, { content: null }, { content: 'plain' }, { content: 5 },
    { content: [null, 1, 'x', [], { type: 'text', text: null }, { type: 'files', files: null }, { files: [null, 'x', { url: 5, size: 'big' }] }] },
    { content: { messages: null } }, { conversation_id: null, ch_msg_id: {} }, { conversation_id: 42, ch_msg_id: 7 },
    { type: null, data: null }, { type: 'livechatAgentConnected', data: { agentInfo: null } }, { data: { agentInfo: [] } },
    { event_type: 'general_error', event_payload: null }, { event_type: 5, event_payload: {} },
    { entry: null }, { entry: { from: 'bot', content: null, timestamp: 1e300 } }, { entry: { from: 7 } }, { entry: { role: 'agent', messages: 5, created_at: 'yesterday' } },
  ];
  const frames = (type: string): unknown[] => [
    ...PAYLOADS,
    ...PAYLOADS.map((p) => ({ event_type: type, event_payload: p, event_id: p })),
    ...PAYLOADS.map((p) => ({ action: 'receiveMessage', event: { event_type: type, event_payload: p } })),
    { action: 'receiveMessage', event: null }, { action: 'receiveMessage', event: { event_type: null } },
  ];

  it.each(TYPES)('maps every garbage frame of %j to well-formed events', (type) => {
    for (const payload of frames(type)) {
      let mapped: MappedEvent[] = [];
      expect(() => {
        mapped = mapCaptivate({ event: type, payload }, ctx);
      }).not.toThrow();
      for (const { event } of mapped) {
        expect(event.id).toMatch(HEX32);
        expect(Number.isNaN(Date.parse(event.time))).toBe(false);
        expect(event.partitionkey.startsWith('hub')).toBe(true);
        expect((event.data as BaseData).upstream.payload).toBe(payload);
        expect(() => JSON.stringify(event)).not.toThrow();
      }
    }
  });

  it('survives event names that are not strings', () => {
    for (const name of [undefined, null, 5, {}, []]) {
      expect(() => mapCaptivate({ event: name as unknown as string, payload: { event_payload: null } }, ctx)).not.toThrow();
    }
  });
});
