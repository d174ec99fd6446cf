import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BaseData } from '../../envelope/event-types';
import type { UpstreamFrame } from '../connector.interface';
import type { MapContext, MappedEvent } from '../mapper';
import { mapSmartsupp } from './smartsupp.mapper';

/** Recorded-shape frames (docs/providers.md#smartsupp, smartsupp-websocket@1.2.2 types); `$comment` says what each is. */
const FIXTURES = join(__dirname, '__fixtures__');
const ctx: MapContext = { channelId: 'site-chat', provider: 'smartsupp', receivedAt: new Date('2024-06-05T12:00:00Z') };
const RECEIVED = '2024-06-05T12:00:00.000Z';
const V = 'vR3kq8Zt1XyBw';
const CHANNEL = { id: 'site-chat', provider: 'smartsupp' };
const CONV = { conversation: { id: V } };
const AGENT = { id: 'ag_42', role: 'agent' };

function load(name: string): UpstreamFrame {
  const { event, payload } = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as UpstreamFrame;
  return { event, payload };
}

interface Case {
  type: string;
  conversation?: boolean;
  time?: string;
  stableId: boolean;
  /** `data` besides `channel` and `upstream`. */
  data: Record<string, unknown>;
  error?: RegExp;
}

const received = (id: string, text: string, time: string): Case => ({
  type: 'chatbridge.message.received', conversation: true, time, stableId: true,
  data: { ...CONV, message: { id, direction: 'inbound', text, sender: { id: V, role: 'contact' } } },
});
const IMAGE = { url: 'https://files.smartsupp.com/u/screenshot.png', mimeType: 'image/png', name: 'screenshot.png', size: 48213 };
const upload: Case = {
  type: 'chatbridge.message.sent', conversation: true, time: '2024-06-05T10:01:00.000Z', stableId: true,
  data: { ...CONV, message: { id: 'mUp4', direction: 'outbound', sender: AGENT, attachments: [IMAGE] } },
};
const joined: Case = {
  type: 'chatbridge.conversation.updated', conversation: true, time: '2024-06-05T10:00:03.000Z', stableId: true,
  data: { ...CONV, change: { kind: 'agent_joined', agent: AGENT, detail: { agentId: 'ag_42' } } },
};
const agentReply: Case = {
  type: 'chatbridge.message.sent', conversation: true, time: '2024-06-05T10:00:05.000Z', stableId: true,
  data: { ...CONV, message: { id: 'mAg3', direction: 'outbound', text: 'Hi! How can I help?', sender: AGENT } },
};
const provider = (conversation = false): Case => ({ type: 'chatbridge.provider.event', conversation, stableId: false, data: conversation ? CONV : {} });
const malformed = (error: RegExp, conversation = false): Case => ({ ...provider(conversation), error });

/** The exact canonical results of every fixture (in order). */
const CASES: Record<string, Case[]> = {
  'initialized.new-visitor.json': [],
  'initialized.gap-fill.json': [joined, agentReply],
  'chat.message_received.contact.json': [received('mVq1', 'Hello, is anyone there?', '2024-06-05T10:00:00.000Z')],
  'chat.message.ack.json': [received('mVq1', 'Hello, is anyone there?', '2024-06-05T10:00:00.000Z')],
  'chat.message_received.agent.json': [agentReply],
  'chat.message_received.trigger.json': [{
    type: 'chatbridge.message.sent', conversation: true, time: '2024-06-05T09:59:58.000Z', stableId: true,
    data: { ...CONV, message: { id: 'mTr5', direction: 'outbound', text: 'Welcome! Leave us a message.', sender: { id: 'trg_7', name: 'Welcome message', role: 'bot' } } },
  }],
  'chat.message_received.upload.json': [upload],
  'chat.upload_finish.ack.json': [upload],
  'chat.agent_typing.json': [{ type: 'chatbridge.typing', conversation: true, stableId: false, data: { ...CONV, typing: { active: true, sender: { role: 'agent' } } } }],
  'chat.contact_read.json': [{
    type: 'chatbridge.read', conversation: true, time: '2024-06-05T10:00:07.000Z', stableId: true,
    data: { ...CONV, read: { at: '2024-06-05T10:00:07.000Z', by: { id: V, role: 'contact' } } },
  }],
  'chat.agent_joined.json': [joined],
  'chat.agent_assigned.json': [{
    type: 'chatbridge.conversation.updated', conversation: true, time: '2024-06-05T10:00:04.000Z', stableId: true,
    data: { ...CONV, change: { kind: 'agent_assigned', agent: AGENT, detail: { assigned: 'ag_42', assignedBy: 'ag_1' } } },
  }],
  'chat.agent_left.no-message.json': [{
    type: 'chatbridge.conversation.updated', conversation: true, stableId: false,
    data: { ...CONV, change: { kind: 'agent_left', agent: { id: 'ag_42', role: 'agent', name: 'Alice' } } },
  }],
  'chat.closed.json': [{
    type: 'chatbridge.conversation.updated', conversation: true, time: '2024-06-05T10:05:00.000Z', stableId: true,
    data: { ...CONV, change: { kind: 'closed', agent: AGENT, detail: { closeType: 'agent_close', agentId: 'ag_42' } } },
  }],
  'chat.rated.json': [{ type: 'chatbridge.conversation.updated', conversation: true, stableId: true, data: { ...CONV, change: { kind: 'rated', detail: { value: 5, text: 'Great help' } } } }],
  'chat.deleted.json': [{ type: 'chatbridge.conversation.updated', conversation: true, stableId: true, data: { ...CONV, change: { kind: 'deleted' } } }],
  'account.updated.json': [{ type: 'chatbridge.account.status', stableId: false, data: { account: { status: 'offline' } } }],
  'account.updated.no-status.json': [provider()],
  'account.status_updated.json': [{ type: 'chatbridge.account.status', stableId: false, data: { account: { status: 'online' } } }],
  'agent.updated.json': [provider()],
  'agent.removed.json': [provider()],
  'visitor.updated.json': [provider(true)],
  'server.error.json': [{ type: 'chatbridge.notification', conversation: true, stableId: false, data: { ...CONV, notification: { level: 'error', message: 'Too many requests' } } }],
  'unknown.chat.visitor_banned.json': [provider()],
  'malformed.string-payload.json': [malformed(/payload is not an object/)],
  'malformed.message-without-id.json': [malformed(/message without id/)],
  'malformed.typing-without-is.json': [malformed(/typing\.is missing/)],
  'malformed.no-visitor.json': [malformed(/without a visitor id/)],
};

describe('mapSmartsupp', () => {
  it('has a case for every fixture', () => {
    expect(readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort()).toEqual(Object.keys(CASES).sort());
  });

  it.each(Object.entries(CASES))('%s', (name, expected) => {
    const frame = load(name);
    const out = mapSmartsupp(frame, ctx);
    expect(out).toHaveLength(expected.length);
    const wrapped = frame.payload as { visitorId?: string; data?: unknown };
    out.forEach((m, i) => {
      const want = expected[i];
      const { event } = m;
      expect(event.type).toBe(want.type);
      expect(m.stableId).toBe(want.stableId);
      expect(event.id).toMatch(/^[0-9a-f]{32}$/);
      expect(event.source).toBe('/chatbridge/smartsupp/site-chat');
      expect(event.time).toBe(want.time ?? RECEIVED);
      expect(event.subject).toBe(want.conversation ? V : undefined);
      expect(event.partitionkey).toBe(want.conversation ? `site-chat:${V}` : 'site-chat');
      const upstream = (event.data as BaseData).upstream;
      const payload = name === 'malformed.no-visitor.json' ? frame.payload : wrapped.data;
      expect(upstream).toEqual(want.error ? { event: frame.event, payload, error: expect.stringMatching(want.error) } : { event: frame.event, payload });
      const { upstream: _u, ...rest } = event.data as BaseData & Record<string, unknown>;
      expect(rest).toEqual({ channel: CHANNEL, ...want.data });
    });
  });

  it('gives an ack, its echo and a snapshot replay of one message the same event id', () => {
    const id = (name: string, i = 0) => mapSmartsupp(load(name), ctx)[i].event.id;
    expect(id('chat.message.ack.json')).toBe(id('chat.message_received.contact.json'));
    expect(id('chat.upload_finish.ack.json')).toBe(id('chat.message_received.upload.json'));
    expect(id('initialized.gap-fill.json', 0)).toBe(id('chat.agent_joined.json'));
    expect(id('initialized.gap-fill.json', 1)).toBe(id('chat.message_received.agent.json'));
    // Other channels never collide.
    expect(mapSmartsupp(load('chat.message.ack.json'), { ...ctx, channelId: 'other' })[0].event.id).not.toBe(id('chat.message.ack.json'));
  });

  it('keeps every snapshot message when no high-water mark is given', () => {
    const frame = load('initialized.gap-fill.json');
    const { since: _since, ...rest } = frame.payload as Record<string, unknown>;
    expect(mapSmartsupp({ event: frame.event, payload: rest }, ctx).map((m) => m.event.type)).toEqual([
      'chatbridge.message.received',
      'chatbridge.conversation.updated',
      'chatbridge.message.sent',
    ]);
  });

  it('skips the snapshot messages at exactly `since` whose ids were already published', () => {
    const frame = load('initialized.gap-fill.json');
    const payload = { ...(frame.payload as Record<string, unknown>), seen: ['mJn2'] };
    expect(mapSmartsupp({ event: frame.event, payload }, ctx).map((m) => (m.event.data as { message?: { id: string } }).message?.id)).toEqual(['mAg3']);
  });

  it('never throws on garbage', () => {
    const garbage: unknown[] = [null, undefined, 0, 'x', [], {}, { visitorId: 5 }, { visitorId: V }, { visitorId: V, data: [] }, { visitorId: V, data: { chat: 7, visitor: {} } }, { visitorId: V, data: { chat: { messages: [null, 1, { id: {} }] }, visitor: {} } }];
    const events = ['initialized', 'chat.message_received', 'chat.message', 'chat.agent_typing', 'chat.contact_read', 'chat.closed', 'chat.agent_assigned', 'chat.rated', 'chat.deleted', 'account.updated', 'account.status_updated', 'server.error', 'visitor.updated', 'zzz'];
    for (const event of events) {
      for (const payload of garbage) {
        let out: MappedEvent[] = [];
        expect(() => (out = mapSmartsupp({ event, payload }, ctx))).not.toThrow();
        for (const m of out) expect(typeof m.event.id).toBe('string');
      }
    }
  });
});
