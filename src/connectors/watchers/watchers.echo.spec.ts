import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { UpstreamCommand, UpstreamFrame } from '../connector.interface';
import type { MapContext } from '../mapper';
import { watchersProvider } from './watchers.provider';

/** Echo events are built from the recorded-shape fixtures by the provider's real mapper, so a mapper change shows here. */
const BOT = 'bot-1';
const ROOM = '144444';
const TEXT = 'Hi! How can I help?';
const ctx: MapContext = { channelId: 'bot-eu', provider: 'watchers', receivedAt: new Date('2024-06-05T13:20:00Z'), options: { userId: BOT } };

interface Message { roomId: string; userId: string; message: { id: number; text: string } }

function event(name: string, edit: (p: Message) => void = () => undefined): AnyCanonicalEvent {
  const { event: ev, payload } = JSON.parse(readFileSync(join(__dirname, '__fixtures__', name), 'utf8')) as { event: string; payload: Message };
  edit(payload);
  const out = watchersProvider.map({ event: ev, payload } as UpstreamFrame, ctx);
  expect(out).toHaveLength(1);
  return out[0].event;
}

const send = (fields: Record<string, unknown> = {}): UpstreamCommand => ({ commandId: 'cmd-1', type: 'message.send', conversationId: ROOM, text: TEXT, ...fields });
const isEcho = (command: UpstreamCommand, ev: AnyCanonicalEvent): boolean => (watchersProvider.isEcho as NonNullable<typeof watchersProvider.isEcho>)(command, ev);

describe('watchers echo: the bot’s own message in its room', () => {
  it('matches the bot’s message (mapped as message.sent) by room and exact text; the room may be given as roomId', () => {
    const echo = event('message.bot-echo.json');
    expect(echo).toMatchObject({ type: 'chatbridge.message.sent', data: { conversation: { id: ROOM }, message: { direction: 'outbound', text: TEXT, sender: { id: BOT, role: 'bot' } } } });
    expect(isEcho(send(), echo)).toBe(true);
    expect(isEcho(send({ conversationId: undefined, roomId: ROOM }), echo)).toBe(true);
  });

  it('refuses another text, another room, another command type', () => {
    const echo = event('message.bot-echo.json');
    expect(isEcho(send({ text: 'Hi! How can I help' }), echo)).toBe(false);
    expect(isEcho(send({ conversationId: '155555' }), echo)).toBe(false);
    expect(isEcho(send({ type: 'room.listen' }), echo)).toBe(false);
    expect(isEcho(send(), event('message.bot-echo.json', (p) => (p.roomId = '155555')))).toBe(false);
  });

  it('refuses a user in the room writing the same text', () => {
    const inbound = event('message.inbound.json', (p) => (p.message.text = TEXT));
    expect(inbound).toMatchObject({ type: 'chatbridge.message.received', data: { conversation: { id: ROOM }, message: { text: TEXT } } });
    expect(isEcho(send(), inbound)).toBe(false);
  });
});
