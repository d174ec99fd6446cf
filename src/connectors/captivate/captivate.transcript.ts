import { isRecord, str } from '../mapper';
import { messageKey } from './captivate.frames';

/** Who wrote a transcript entry. */
export type TranscriptRole = 'user' | 'bot' | 'agent';

/** One message of a transcript, flattened, with its position and dedupe key. */
export interface TranscriptEntry {
  /** Position in the flattened transcript (append-only upstream, so stable between fetches). */
  index: number;
  role?: TranscriptRole;
  /** Same key as the live frame of the same message (see `messageKey`); undefined when the entry has no id. */
  key?: string;
  /** The upstream entry, unchanged. */
  entry: Record<string, unknown>;
  /** `event_id` of the manual's transcript group, when it holds this one reply only. */
  eventId?: string;
}

const ROLES: Record<string, TranscriptRole> = {
  user: 'user', bot: 'bot', chatbot: 'bot', ai_agent: 'bot', assistant: 'bot',
  agent: 'agent', livechat: 'agent', human_agent: 'agent', human: 'agent',
};

/** Normalises `from` (manual: `user | chatbot | livechat`, its example also `bot` and `"agent "`) or `role`. */
export function roleOf(entry: Record<string, unknown>): TranscriptRole | undefined {
  const raw = str(entry.from) ?? str(entry.role) ?? str(entry.sender);
  return raw ? ROLES[raw.trim().toLowerCase()] : undefined;
}

/**
 * Flattens every known transcript shape (docs/providers.md#captivate):
 * - REST `GET /api/transcript` (SDK ≥5): `{transcript: [{message_id | id, from?, content, text?, files?}]}`;
 * - the manual's `conversation_transcript`: `transcript: [{event_id, messages: [{from, messages: […]}]}]`;
 * - its example: `messages: [{from, messages: […] | {idChat, messages, actions}}]`.
 * Never throws; what it cannot read is skipped.
 */
export function transcriptEntries(body: unknown): TranscriptEntry[] {
  if (!isRecord(body)) return Array.isArray(body) ? collect(body) : [];
  const list = Array.isArray(body.transcript) ? body.transcript : Array.isArray(body.messages) ? body.messages : [];
  return collect(list);
}

function collect(list: unknown[]): TranscriptEntry[] {
  const out: TranscriptEntry[] = [];
  for (const item of list) {
    if (!isRecord(item)) continue;
    const inner = isGroup(item) ? (item.messages as unknown[]).filter(isRecord) : undefined;
    if (!inner) {
      push(out, item);
      continue;
    }
    const groupId = str(item.event_id);
    // A group's event_id identifies the frame that delivered its reply only when there is exactly one reply.
    const isReply = (e: Record<string, unknown>) => roleOf(e) === 'bot' || roleOf(e) === 'agent';
    const replies = inner.filter(isReply).length;
    for (const e of inner) push(out, e, replies === 1 && isReply(e) ? groupId : undefined);
  }
  return out;
}

/** The manual's `{event_id, messages: [{from, …}]}` group (its entries have `from`; the group itself has none). */
function isGroup(item: Record<string, unknown>): boolean {
  return roleOf(item) === undefined && Array.isArray(item.messages) && item.messages.some((m) => isRecord(m) && roleOf(m) !== undefined);
}

function push(out: TranscriptEntry[], entry: Record<string, unknown>, groupEventId?: string): void {
  const role = roleOf(entry);
  const eventId = str(entry.event_id) ?? groupEventId;
  const key = messageKey(entry, eventId);
  const e: TranscriptEntry = { index: out.length, entry };
  if (role) e.role = role;
  if (key) e.key = key;
  if (eventId) e.eventId = eventId;
  out.push(e);
}
