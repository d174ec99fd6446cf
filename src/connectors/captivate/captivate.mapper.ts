import type { Attachment, MessageInfo, Participant } from '../../envelope/event-types';
import type { UpstreamFrame } from '../connector.interface';
import { base, conversationData, isRecord, make, malformed, num, str, type MapContext, type MappedEvent, type Upstream } from '../mapper';
import { conversationOf, messageKey, TRANSCRIPT_MESSAGE, unwrapEvent, type CaptivateEvent } from './captivate.frames';
import { roleOf } from './captivate.transcript';

/**
 * Captivate Hub socket frame → canonical events. Pure: fixtures in __fixtures__/ drive its spec.
 * Event types and payloads: docs/providers.md#captivate (manual + captivate-chat-api SDK).
 */
export function mapCaptivate(frame: UpstreamFrame, ctx: MapContext): MappedEvent[] {
  const name = typeof frame.event === 'string' ? frame.event : String(frame.event);
  const up = { event: name, payload: frame.payload };
  if (name === TRANSCRIPT_MESSAGE) return transcriptMessage(frame.payload, up, ctx);
  const ev = unwrapEvent(frame.payload);
  if (!ev) return malformed(up, ctx, 'not a Captivate event frame ({event_type, event_payload} or {action, event})');
  up.event = ev.type;
  switch (ev.type) {
    case 'socket_connected':
      // The connection handshake, not an event of any conversation: the channel status says it.
      return [];
    case 'bot_message':
      return message(ev, 'bot', up, ctx);
    case 'livechat_message':
      return message(ev, 'agent', up, ctx);
    case 'conversation_start_success':
      return started(ev, up, ctx);
    case 'conversation_update':
      return updated(ev, up, ctx);
    default:
      // general_error, action, conversation_transcript, conversation_metadata, user_conversations, … kept whole.
      return [provider(ev, up, ctx)];
  }
}

function provider(ev: CaptivateEvent, up: Upstream, ctx: MapContext): MappedEvent {
  const conversationId = conversationOf(ev.payload);
  return make(
    {
      type: 'chatbridge.provider.event',
      upstreamKey: ev.eventId ? `evt:${ev.eventId}` : undefined,
      conversationId,
      data: { ...base(ctx), ...conversationData(conversationId), upstream: up },
    },
    ctx,
  );
}

function message(ev: CaptivateEvent, role: 'bot' | 'agent', up: Upstream, ctx: MapContext): MappedEvent[] {
  if (ev.payload.content === undefined || ev.payload.content === null) return malformed(up, ctx, `${ev.type}: event_payload.content missing`);
  const { text, attachments } = content(contentItems(ev.payload.content), ev.payload.files);
  const key = messageKey(ev.payload, ev.eventId);
  return [messageEvent({ role, text, attachments, key, conversationId: conversationOf(ev.payload) }, up, ctx)];
}

interface MessageParts {
  role: 'bot' | 'agent';
  text?: string;
  attachments: Attachment[];
  key?: string;
  conversationId?: string;
  time?: Date;
}

function messageEvent(p: MessageParts, up: Upstream, ctx: MapContext): MappedEvent {
  const sender: Participant = { role: p.role };
  const msg: MessageInfo = { direction: 'outbound', sender };
  // Only an upstream id is a message id; an event_id identifies the delivery, not the message.
  if (p.key?.startsWith('msg:')) msg.id = p.key.slice(4);
  if (p.text !== undefined) msg.text = p.text;
  if (p.attachments.length) msg.attachments = p.attachments;
  return make(
    {
      type: 'chatbridge.message.sent',
      upstreamKey: p.key,
      conversationId: p.conversationId,
      time: p.time,
      data: { ...base(ctx), ...conversationData(p.conversationId), message: msg, upstream: up },
    },
    ctx,
  );
}

function started(ev: CaptivateEvent, up: Upstream, ctx: MapContext): MappedEvent[] {
  const id = conversationOf(ev.payload);
  if (!id) return malformed(up, ctx, 'conversation_start_success: conversation_id missing');
  return [make({ type: 'chatbridge.conversation.started', upstreamKey: `start:${id}`, conversationId: id, data: { ...base(ctx), conversation: { id }, upstream: up } }, ctx)];
}

function updated(ev: CaptivateEvent, up: Upstream, ctx: MapContext): MappedEvent[] {
  const id = conversationOf(ev.payload);
  const kind = str(ev.payload.type) ?? 'unknown';
  const change: { kind: string; agent?: Participant; detail?: unknown } = { kind };
  const data = ev.payload.data;
  const info = isRecord(data) && isRecord(data.agentInfo) ? data.agentInfo : undefined;
  if (info) {
    const agent: Participant = { role: 'agent' };
    const agentId = str(info.id) ?? str(info.agentId);
    const agentName = str(info.name) ?? str(info.displayName);
    if (agentId) agent.id = agentId;
    if (agentName) agent.name = agentName;
    change.agent = agent;
  }
  if (data !== undefined) change.detail = data;
  return [
    make(
      {
        type: 'chatbridge.conversation.updated',
        upstreamKey: ev.eventId ? `evt:${ev.eventId}` : undefined,
        conversationId: id,
        data: { ...base(ctx), ...conversationData(id), change, upstream: up },
      },
      ctx,
    ),
  ];
}

/** A bot/agent reply recovered from a transcript by the connector: `{conversation_id, index, event_id?, entry}`. */
function transcriptMessage(payload: unknown, up: Upstream, ctx: MapContext): MappedEvent[] {
  const entry = isRecord(payload) && isRecord(payload.entry) ? payload.entry : undefined;
  const role = entry ? roleOf(entry) : undefined;
  if (!isRecord(payload) || !entry || (role !== 'bot' && role !== 'agent')) return malformed(up, ctx, 'transcript_message: no bot or agent entry');
  const key = messageKey(entry, str(entry.event_id) ?? str(payload.event_id));
  const raw = entry.content ?? entry.messages ?? entry.text;
  const { text, attachments } = content(contentItems(raw), entry.files);
  const conversationId = str(payload.conversation_id) ?? conversationOf(entry);
  const time = timeOf(entry.timestamp ?? entry.created_at ?? entry.createdAt);
  return [messageEvent({ role, text, attachments, key, conversationId, time }, up, ctx)];
}

/** Content items of a payload: an array, one item, a bare string, or the transcript's `{idChat, messages}`. */
function contentItems(raw: unknown): unknown[] {
  if (Array.isArray(raw)) return raw;
  if (typeof raw === 'string') return [{ type: 'text', text: raw }];
  if (isRecord(raw)) return Array.isArray(raw.messages) ? raw.messages : [raw];
  return [];
}

/** Text of the `text` items (joined by newlines) and the files of `files` items; buttons and cards stay in the payload. */
function content(items: unknown[], extraFiles: unknown): { text?: string; attachments: Attachment[] } {
  const texts: string[] = [];
  const attachments: Attachment[] = [];
  for (const item of items) {
    if (!isRecord(item)) continue;
    const t = str(item.text);
    if (t !== undefined && (item.type === undefined || item.type === 'text')) texts.push(t);
    if (Array.isArray(item.files)) attachments.push(...files(item.files));
  }
  if (Array.isArray(extraFiles)) attachments.push(...files(extraFiles));
  return texts.length ? { text: texts.join('\n'), attachments } : { attachments };
}

/** livechat files `{type, url, mimetype, filename}`. The manual's `mimetype` can be a kind ("image"); it is kept as given. */
function files(list: unknown[]): Attachment[] {
  const out: Attachment[] = [];
  for (const f of list) {
    if (!isRecord(f)) continue;
    const a: Attachment = {};
    const url = str(f.url) ?? (isRecord(f.storage) ? str(f.storage.presignedUrl) : undefined);
    if (url) a.url = url;
    const mime = str(f.mimetype) ?? str(f.mimeType);
    if (mime) a.mimeType = mime;
    const name = str(f.filename) ?? str(f.fileName);
    if (name) a.name = name;
    const size = num(f.size);
    if (size !== undefined) a.size = size;
    out.push(a);
  }
  return out;
}

/** ISO string or unix seconds/ms. */
function timeOf(v: unknown): Date | undefined {
  const n = num(v);
  if (n !== undefined) return n > 0 ? new Date(n < 1e12 ? n * 1000 : n) : undefined;
  const s = str(v);
  if (!s) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
