import type { MessageInfo, Participant } from '../../envelope/event-types';
import type { UpstreamFrame } from '../connector.interface';
import { base, isRecord, make, malformed, type MapContext, type MappedEvent } from '../mapper';

/**
 * Watchers.io bot socket event → canonical events. Pure: fixtures in __fixtures__/ drive its spec.
 * The only documented event is `message` {project, roomId, message: {id, text}, userId} (docs/providers.md#watchers);
 * it carries no time, so events are stamped with the time received. Everything else is a provider event.
 *
 * `botUserId` is the channel's own bot: Watchers delivers the bot's messages to its room listeners too,
 * so a `message` from that user is the echo of a send (`message.sent`), not an inbound message.
 */
export function mapWatchers(frame: UpstreamFrame, ctx: MapContext, botUserId?: string): MappedEvent[] {
  const up = { event: frame.event, payload: frame.payload };
  if (frame.event !== 'message') return [make({ type: 'chatbridge.provider.event', data: { ...base(ctx), upstream: up } }, ctx)];
  const value = frame.payload;
  if (!isRecord(value)) return malformed(up, ctx, 'message: payload is not an object');
  const roomId = idOf(value.roomId);
  if (!roomId) return malformed(up, ctx, 'message: roomId missing');
  if (!isRecord(value.message)) return malformed(up, ctx, 'message: message object missing', roomId);
  const id = idOf(value.message.id);
  if (!id) return malformed(up, ctx, 'message: message.id missing', roomId);

  const userId = idOf(value.userId);
  const own = userId !== undefined && userId === botUserId;
  const sender: Participant = { role: own ? 'bot' : 'contact' };
  if (userId) sender.id = userId;
  const message: MessageInfo = { id, direction: own ? 'outbound' : 'inbound', sender };
  const text = value.message.text;
  if (typeof text === 'string') message.text = text;
  return [
    make(
      {
        type: own ? 'chatbridge.message.sent' : 'chatbridge.message.received',
        // Message ids are per room (and rooms per project): all three identify the message.
        upstreamKey: `msg:${idOf(value.project) ?? ''}:${roomId}:${id}`,
        conversationId: roomId,
        data: { ...base(ctx), conversation: { id: roomId }, message, upstream: up },
      },
      ctx,
    ),
  ];
}

/** An id as Watchers sends it: a non-empty string or a finite number (`message.id` is numeric). */
function idOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v.length > 0 ? v : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
}

