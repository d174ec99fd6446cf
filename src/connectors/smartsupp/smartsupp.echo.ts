import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { UpstreamCommand } from '../connector.interface';
import { str } from '../mapper';

/**
 * Whether `event` is Smartsupp's echo of a `message.send`. The bridge is the visitor, and the server sends the
 * visitor's own `chat.message` back as `chat.message_received` (docs/providers.md#smartsupp): subType `contact`, mapped to an
 * inbound `message.received` from the contact; with `senderType: bot` it is stored as a trigger message, mapped
 * to an outbound `message.sent` from a bot. Same visitor (the conversation), same text. Pure.
 */
export function isSmartsuppEcho(command: UpstreamCommand, event: AnyCanonicalEvent): boolean {
  if (command.type !== 'message.send') return false;
  const asBot = command.senderType === 'bot';
  if (event.type !== (asBot ? 'chatbridge.message.sent' : 'chatbridge.message.received')) return false;
  const { message, conversation } = event.data;
  if (message.sender?.role !== (asBot ? 'bot' : 'contact')) return false;
  const visitorId = str(command.conversationId);
  return visitorId !== undefined && conversation?.id === visitorId && typeof command.text === 'string' && message.text === command.text;
}
