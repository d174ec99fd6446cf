import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { UpstreamCommand, UpstreamFrame } from '../connector.interface';
import type { MapContext } from '../mapper';
import { sameChat } from './zapthinker.echo';
import { zapthinkerProvider } from './zapthinker.provider';

/** Echo events are built from the recorded-shape fixtures by the provider's real mapper, so a mapper change shows here. */
const ctx: MapContext = { channelId: 'wa-sales', provider: 'zapthinker', receivedAt: new Date('2024-06-05T13:20:00Z') };
const TEXT = 'Olá! Your order is confirmed.';
const JID = '5511999999999@s.whatsapp.net';

interface Key { remoteJid: string; fromMe: boolean; id: string; participant?: string }
interface MessageEnvelope { data: { key: Key; message: Record<string, unknown> } }

function frame(name: string, edit: (p: MessageEnvelope) => void = () => undefined): UpstreamFrame {
  const { event, payload } = JSON.parse(readFileSync(join(__dirname, '__fixtures__', name), 'utf8')) as { event: string; payload: MessageEnvelope };
  edit(payload);
  return { event, payload };
}

function mapped(f: UpstreamFrame): AnyCanonicalEvent {
  const out = zapthinkerProvider.map(f, ctx);
  expect(out).toHaveLength(1);
  return out[0].event;
}

const send = (conversationId: string, text = TEXT, type = 'message.send'): UpstreamCommand => ({ commandId: 'cmd-1', type, conversationId, text });
const isEcho = (command: UpstreamCommand, event: AnyCanonicalEvent): boolean => (zapthinkerProvider.isEcho as NonNullable<typeof zapthinkerProvider.isEcho>)(command, event);
const echoTo = (jid: string, text = TEXT) => mapped(frame('send.message.json', (p) => {
  p.data.key.remoteJid = jid;
  p.data.message = { conversation: text };
}));

describe('zapthinker echo: send.message resolves an ambiguous sendText', () => {
  it('matches the send.message echo by chat (bare number or JID) and exact text', () => {
    const echo = mapped(frame('send.message.json'));
    expect(echo).toMatchObject({ type: 'chatbridge.message.sent', data: { conversation: { id: JID }, message: { direction: 'outbound', text: TEXT } } });
    expect(isEcho(send('5511999999999'), echo)).toBe(true);
    expect(isEcho(send(JID), echo)).toBe(true);
    expect(isEcho(send('+55 (11) 99999-9999'), echo)).toBe(true);
  });

  it('matches a group by its whole JID, given as a JID or as the bare group id', () => {
    const echo = echoTo('120363025246125888@g.us', 'Good morning team');
    expect(isEcho(send('120363025246125888@g.us', 'Good morning team'), echo)).toBe(true);
    expect(isEcho(send('120363025246125888', 'Good morning team'), echo)).toBe(true);
    expect(isEcho(send('120363025246125999@g.us', 'Good morning team'), echo)).toBe(false);
    expect(isEcho(send('5511999999999', 'Good morning team'), echo)).toBe(false);
  });

  it('accepts the chat Evolution rewrote the number to (Brazilian ninth digit, Mexican mobile 1)', () => {
    expect(isEcho(send('5531999999999'), echoTo('553199999999@s.whatsapp.net'))).toBe(true);
    expect(isEcho(send('553199999999'), echoTo('5531999999999@s.whatsapp.net'))).toBe(true);
    expect(isEcho(send('5215512345678'), echoTo('525512345678@s.whatsapp.net'))).toBe(true);
    expect(isEcho(send('5531999999998'), echoTo('553199999999@s.whatsapp.net'))).toBe(false);
  });

  it('refuses another text, another chat, another command type', () => {
    const echo = mapped(frame('send.message.json'));
    expect(isEcho(send('5511999999999', `${TEXT} `), echo)).toBe(false);
    expect(isEcho(send('5511999999999', 'olá! your order is confirmed.'), echo)).toBe(false);
    expect(isEcho(send('5511999999998'), echo)).toBe(false);
    expect(isEcho(send('5511999999999@lid'), echo)).toBe(false);
    expect(isEcho(send('5511999999999', TEXT, 'typing'), echo)).toBe(false);
    expect(isEcho({ commandId: 'c', type: 'message.send', conversationId: '5511999999999' }, echo)).toBe(false);
  });

  it('refuses the contact writing the same text, and the same text typed on the phone (messages.upsert fromMe)', () => {
    const inbound = mapped(frame('messages.upsert.text-inbound.json', (p) => (p.data.message = { conversation: TEXT })));
    expect(inbound).toMatchObject({ type: 'chatbridge.message.received', data: { conversation: { id: JID }, message: { text: TEXT } } });
    expect(isEcho(send('5511999999999'), inbound)).toBe(false);
    const fromPhone = mapped(frame('messages.upsert.text-inbound.json', (p) => {
      p.data.key.fromMe = true;
      p.data.message = { conversation: TEXT };
    }));
    expect(fromPhone).toMatchObject({ type: 'chatbridge.message.sent', data: { message: { direction: 'outbound', text: TEXT } } });
    expect(isEcho(send('5511999999999'), fromPhone)).toBe(false);
  });

  it('refuses a status update of the sent message', () => {
    const update = mapped(frame('messages.update.delivery-ack.json'));
    expect(update.type).toBe('chatbridge.message.updated');
    expect(isEcho(send('5511999999999'), update)).toBe(false);
  });
});

describe('zapthinker echo: chat identity', () => {
  it.each([
    ['5511999999999', '5511999999999@s.whatsapp.net', true],
    ['5511999999999:12@s.whatsapp.net', '5511999999999@s.whatsapp.net', true],
    ['5511999999999@s.whatsapp.net', '5511999999999@s.whatsapp.net', true],
    ['5491187654321', '541187654321@s.whatsapp.net', true],
    ['4915112345678', '4915112345678@s.whatsapp.net', true],
    ['4915112345678', '491512345678@s.whatsapp.net', false],
    ['123456789012345678@lid', '123456789012345678@lid', true],
    ['123456789012345678', '123456789012345678@lid', false],
    ['5511988887777-1600000000@g.us', '5511988887777-1600000000@g.us', true],
    ['5511988887777-1600000000', '5511988887777-1600000000@g.us', true],
    ['', '5511999999999@s.whatsapp.net', false],
  ])('%s ~ %s → %s', (number, jid, same) => {
    expect(sameChat(number, jid)).toBe(same);
  });
});
