import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { UpstreamCommand } from '../connector.interface';
import { str } from '../mapper';

/**
 * Whether `event` is Evolution's echo of a `message.send`: a REST send by this instance comes back as
 * `send.message` (mapped to an outbound `message.sent`), never as `messages.upsert`, which is what a message
 * typed on the phone gives (docs/providers.md#zapthinker). Same chat, same text. Pure.
 */
export function isZapThinkerEcho(command: UpstreamCommand, event: AnyCanonicalEvent): boolean {
  if (command.type !== 'message.send' || event.type !== 'chatbridge.message.sent') return false;
  const { message, conversation, upstream } = event.data;
  if (upstream.event !== 'send.message' || message.direction !== 'outbound') return false;
  if (typeof command.text !== 'string' || message.text !== command.text) return false;
  const number = str(command.conversationId);
  return number !== undefined && conversation !== undefined && sameChat(number, conversation.id);
}

/**
 * Whether the `number` a command was sent to is the chat `jid`. Any JID other than a user's (`@g.us`, `@lid`,
 * `@broadcast`) is compared whole; a number is read as Evolution's createJid reads it (formatting stripped,
 * 18+ digits = a group), and a user JID is compared by phone, because Evolution (and WhatsApp's own
 * lookup) may add or drop the Brazilian ninth digit or the Mexican/Argentinian mobile digit.
 */
export function sameChat(number: string, jid: string): boolean {
  const target = number.replace(/:\d+(?=@|$)/, '');
  if (target.includes('@') && !target.endsWith('@s.whatsapp.net')) return target === jid;
  if (!jid.endsWith('@s.whatsapp.net')) return !target.includes('@') && groupJid(target) === jid;
  const digits = target.split('@')[0].replace(/\D/g, '');
  return digits.length > 0 && digits.length < 18 && phoneKey(digits) === phoneKey(jid.split('@')[0].replace(/:\d+$/, ''));
}

/** The group JID createJid makes of a bare group id, or undefined when `number` is a phone number. */
function groupJid(number: string): string | undefined {
  const bare = number.replace(/[\s+()]/g, '');
  if (bare.includes('-') && bare.length >= 24) return `${bare.replace(/[^\d-]/g, '')}@g.us`;
  const digits = bare.replace(/\D/g, '');
  return digits.length >= 18 ? `${digits}@g.us` : undefined;
}

/** A phone number without the optional mobile digit: BR `55 DD 9 XXXXXXXX` and MX/AR `52 1 …` / `54 9 …` (13 digits). */
function phoneKey(digits: string): string {
  if (digits.length !== 13) return digits;
  if (digits.startsWith('55') && digits[4] === '9') return digits.slice(0, 4) + digits.slice(5);
  if (digits.startsWith('52') || digits.startsWith('54')) return digits.slice(0, 2) + digits.slice(3);
  return digits;
}
