import { isRecord, str } from '../mapper';

/** Frame event name the connector uses for a bot/agent reply recovered from a transcript (not an upstream name). */
export const TRANSCRIPT_MESSAGE = 'transcript_message';
/** Frame event name for a text frame that is not JSON. */
export const UNPARSEABLE = 'unparseable';

/** One Captivate event, whichever envelope it came in. */
export interface CaptivateEvent {
  type: string;
  payload: Record<string, unknown>;
  eventId?: string;
}

/**
 * Reads `{event_type, event_payload, event_id}` (the seed page's shape) or the manual's
 * `{action: "receiveMessage", event: {…}}` wrapper. Undefined when neither shape is there.
 */
export function unwrapEvent(raw: unknown): CaptivateEvent | undefined {
  if (!isRecord(raw)) return undefined;
  const inner = isRecord(raw.event) && str(raw.event.event_type) ? raw.event : raw;
  const type = str(inner.event_type);
  if (!type) return undefined;
  const payload = isRecord(inner.event_payload) ? inner.event_payload : {};
  const eventId = str(inner.event_id);
  // The manual's general_error example nests the real event inside a conversation_update payload.
  const nestedType = str(payload.event_type);
  if (nestedType && isRecord(payload.event_payload)) {
    return { type: nestedType, payload: payload.event_payload, ...(eventId ? { eventId } : {}) };
  }
  return { type, payload, ...(eventId ? { eventId } : {}) };
}

/** `conversation_id` of a payload (the transcript's `idChat` is the same id). */
export function conversationOf(payload: Record<string, unknown>): string | undefined {
  return str(payload.conversation_id) ?? str(payload.idChat);
}

/**
 * The dedupe identity of a bot/agent message. The upstream message id (`ch_msg_id`; transcripts call it
 * `message_id` or `id`) wins over the delivery's `event_id`, so a transcript entry and the live frame of the
 * same message get the same key. Undefined when neither id is there.
 */
export function messageKey(payload: Record<string, unknown>, eventId?: string): string | undefined {
  const id = str(payload.ch_msg_id) ?? str(payload.message_id) ?? str(payload.id);
  if (id) return `msg:${id}`;
  return eventId ? `evt:${eventId}` : undefined;
}
