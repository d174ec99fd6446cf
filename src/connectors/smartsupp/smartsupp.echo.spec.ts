import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { UpstreamCommand, UpstreamFrame } from '../connector.interface';
import type { MapContext } from '../mapper';
import { smartsuppProvider } from './smartsupp.provider';

/** Echo events are built from the recorded-shape fixtures by the provider's real mapper, so a mapper change shows here. */
const ctx: MapContext = { channelId: 'site-chat', provider: 'smartsupp', receivedAt: new Date('2024-06-05T12:00:00Z') };
const VISITOR = 'vR3kq8Zt1XyBw';
const TEXT = 'Hello, is anyone there?';

interface Received { visitorId: string; data: { message: { content: { text: string }; visitorId: string } } }

function event(name: string, edit: (p: Received) => void = () => undefined): AnyCanonicalEvent {
  const { event: ev, payload } = JSON.parse(readFileSync(join(__dirname, '__fixtures__', name), 'utf8')) as { event: string; payload: Received };
  edit(payload);
  const out = smartsuppProvider.map({ event: ev, payload } as UpstreamFrame, ctx);
  expect(out).toHaveLength(1);
  return out[0].event;
}

const send = (fields: Record<string, unknown> = {}): UpstreamCommand => ({ commandId: 'cmd-1', type: 'message.send', conversationId: VISITOR, text: TEXT, ...fields });
const isEcho = (command: UpstreamCommand, ev: AnyCanonicalEvent): boolean => (smartsuppProvider.isEcho as NonNullable<typeof smartsuppProvider.isEcho>)(command, ev);

describe('smartsupp echo: chat.message_received of the visitor’s own chat.message', () => {
  it('matches the visitor’s own message (mapped as received from the contact) by visitor and exact text', () => {
    const echo = event('chat.message_received.contact.json');
    expect(echo).toMatchObject({ type: 'chatbridge.message.received', data: { conversation: { id: VISITOR }, message: { text: TEXT, sender: { role: 'contact' } } } });
    expect(isEcho(send(), echo)).toBe(true);
    expect(isEcho(send({ senderType: 'contact' }), echo)).toBe(true);
  });

  it('matches a senderType bot message by its trigger echo (outbound, from a bot)', () => {
    const text = 'Welcome! Leave us a message.';
    const echo = event('chat.message_received.trigger.json');
    expect(echo).toMatchObject({ type: 'chatbridge.message.sent', data: { message: { text, sender: { role: 'bot' } } } });
    expect(isEcho(send({ senderType: 'bot', text }), echo)).toBe(true);
    expect(isEcho(send({ text }), echo)).toBe(false);
    expect(isEcho(send({ senderType: 'bot' }), event('chat.message_received.contact.json'))).toBe(false);
  });

  it('refuses another text, another visitor, another command type', () => {
    const echo = event('chat.message_received.contact.json');
    expect(isEcho(send({ text: `${TEXT}!` }), echo)).toBe(false);
    expect(isEcho(send({ conversationId: 'vOther' }), echo)).toBe(false);
    expect(isEcho(send({ conversationId: undefined }), echo)).toBe(false);
    expect(isEcho(send({ type: 'typing' }), echo)).toBe(false);
    const otherVisitor = event('chat.message_received.contact.json', (p) => {
      p.visitorId = 'vOther';
      p.data.message.visitorId = 'vOther';
    });
    expect(isEcho(send(), otherVisitor)).toBe(false);
  });

  it('refuses an agent’s reply with the same text', () => {
    const agent = event('chat.message_received.agent.json', (p) => (p.data.message.content.text = TEXT));
    expect(agent).toMatchObject({ type: 'chatbridge.message.sent', data: { message: { text: TEXT, sender: { role: 'agent' } } } });
    expect(isEcho(send(), agent)).toBe(false);
    expect(isEcho(send({ senderType: 'bot' }), agent)).toBe(false);
  });
});
