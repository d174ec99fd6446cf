import { CommandError } from '../../common/errors';
import { buildCommandEvent, httpBody, socketFrame } from './captivate.commands';
import { socketUrl } from './captivate.connector';
import { statusError } from './captivate.http';
import { transcriptEntries } from './captivate.transcript';

const CONV = 'd1816568-2b18-4e8b-a09e-ec6f86eeccfd';

describe('captivate commands: exact wire format', () => {
  it('builds every command as the manual documents it', () => {
    expect(buildCommandEvent({ commandId: 'c1', type: 'conversation.start', userId: 'u1', userBasicInfo: { firstName: 'Sigrid' }, userData: { a: 1 }, ignored: true })).toEqual({
      event_type: 'conversation_start', event_payload: { userId: 'u1', userBasicInfo: { firstName: 'Sigrid' }, userData: { a: 1 } },
    });
    expect(buildCommandEvent({ commandId: 'c2', type: 'message.send', conversationId: CONV, text: 'hi' })).toEqual({
      event_type: 'user_message', event_payload: { type: 'message_create', client_msg_id: 'c2', conversation_id: CONV, content: { type: 'text', text: 'hi' } },
    });
    expect(buildCommandEvent({ commandId: 'c3', type: 'metadata', conversationId: CONV, metadata: { k: 'v' } })).toEqual({
      event_type: 'metadata', event_payload: { metadata: { k: 'v' }, client_msg_id: 'c3', conversation_id: CONV },
    });
    expect(buildCommandEvent({ commandId: 'c4', type: 'action', conversationId: CONV, actionId: 'escalateToHuman' })).toEqual({
      event_type: 'action', event_payload: { type: 'normal', id: 'escalateToHuman', data: {}, conversation_id: CONV },
    });
    expect(buildCommandEvent({ commandId: 'c5', type: 'transcript', conversationId: CONV })).toEqual({
      event_type: 'conversation_transcript_request', event_payload: { conversation_id: CONV },
    });
  });

  it('refuses incomplete commands without sending anything', () => {
    const bad = [
      { type: 'message.send', conversationId: CONV }, { type: 'message.send', text: 'x' }, { type: 'metadata', conversationId: CONV, metadata: 'x' },
      { type: 'metadata', conversationId: CONV, metadata: {}, target: 'everyone' }, { type: 'action', conversationId: CONV }, { type: 'transcript' }, { type: 'typing', conversationId: CONV },
    ];
    for (const cmd of bad) {
      expect(() => buildCommandEvent({ commandId: 'x', ...cmd })).toThrow(CommandError);
      try {
        buildCommandEvent({ commandId: 'x', ...cmd });
      } catch (err) {
        expect(err).toMatchObject({ sent: false, retriable: false });
      }
    }
  });

  it('wraps events for the socket and for HTTP (with the socket that gets the replies)', () => {
    const ev = { event_type: 'user_message', event_payload: { conversation_id: CONV } };
    expect(JSON.parse(socketFrame(ev))).toEqual({ action: 'sendMessage', event: ev });
    expect(JSON.parse(httpBody(ev, 'Vp6roemHLPECFOQ='))).toEqual({ action: 'sendMessage', event: { ...ev, socket_id: 'Vp6roemHLPECFOQ=' } });
    expect(JSON.parse(httpBody(ev, undefined))).toEqual({ action: 'sendMessage', event: ev });
  });

  it('puts the key in the casing asked for and keeps the stage path', () => {
    expect(socketUrl({ url: 'wss://channel.wss.captivatechat.ai', apiKey: 'k&1', apiKeyParam: 'apikey' })).toBe('wss://channel.wss.captivatechat.ai/?apikey=k%261');
    expect(socketUrl({ url: 'wss://channel-dev.wss.captivatechat.ai/dev', apiKey: 'k', apiKeyParam: 'apiKey' })).toBe('wss://channel-dev.wss.captivatechat.ai/dev?apiKey=k');
  });
});

describe('captivate failure classes', () => {
  it('classifies HTTP answers', () => {
    expect(statusError(503, 'x')).toMatchObject({ code: 'upstream_unavailable', retriable: true, sent: false });
    expect(statusError(429, 'x')).toMatchObject({ retriable: true, sent: false });
    expect(statusError(410, 'x')).toMatchObject({ code: 'socket_gone', retriable: true, sent: false });
    expect(statusError(403, 'x')).toMatchObject({ code: 'auth_rejected', retriable: false, sent: false });
    expect(statusError(400, 'x')).toMatchObject({ code: 'upstream_rejected', retriable: false, sent: false });
  });
});

describe('transcriptEntries', () => {
  it('reads the REST shape with the same keys as the live frames', () => {
    const entries = transcriptEntries({ transcript: [{ message_id: 'm1', from: 'user' }, { message_id: 'b1', from: 'bot' }, { id: 'x', role: 'assistant' }, { from: 'agent', event_id: 'e1' }, { from: 'bot' }] });
    expect(entries.map((e) => [e.index, e.role, e.key])).toEqual([[0, 'user', 'msg:m1'], [1, 'bot', 'msg:b1'], [2, 'bot', 'msg:x'], [3, 'agent', 'evt:e1'], [4, 'bot', undefined]]);
  });

  it("reads the manual's grouped shape: a group's event_id keys its only reply", () => {
    const entries = transcriptEntries({ transcript: [
      { event_id: 'g1', messages: [{ from: 'user', messages: [] }, { from: 'chatbot', messages: [] }] },
      { event_id: 'g2', messages: [{ from: 'chatbot', messages: [] }, { from: 'livechat', messages: [] }] },
    ] });
    expect(entries.map((e) => [e.role, e.key])).toEqual([['user', undefined], ['bot', 'evt:g1'], ['bot', undefined], ['agent', undefined]]);
    expect(transcriptEntries({ messages: [{ from: 'agent ', messages: { idChat: CONV, messages: [] } }] })[0].role).toBe('agent');
    for (const garbage of [null, 5, 'x', {}, { transcript: 'x' }, { transcript: [null, 1, []] }]) expect(() => transcriptEntries(garbage)).not.toThrow();
  });
});
