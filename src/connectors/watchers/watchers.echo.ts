import type { AnyCanonicalEvent } from '../../envelope/envelope';
import type { UpstreamCommand } from '../connector.interface';
import { commandRoom } from './watchers.commands';

/**
 * Whether `event` is Watchers' echo of a `message.send`: the bot's own message, delivered back to its room
 * listeners and mapped (by the bot's userId) to an outbound `message.sent` from the bot. Same room, same text. Pure.
 */
export function isWatchersEcho(command: UpstreamCommand, event: AnyCanonicalEvent): boolean {
  if (command.type !== 'message.send' || event.type !== 'chatbridge.message.sent') return false;
  const { message, conversation } = event.data;
  if (message.direction !== 'outbound' || message.sender?.role !== 'bot') return false;
  const room = commandRoom(command);
  return room !== undefined && conversation?.id === room && typeof command.text === 'string' && message.text === command.text;
}
