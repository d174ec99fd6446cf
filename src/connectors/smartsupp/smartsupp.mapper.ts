import type { EventInit } from '../../envelope/envelope';
import type { Attachment, EventType, MessageInfo, Participant } from '../../envelope/event-types';
import type { UpstreamFrame } from '../connector.interface';
import { base, isRecord, make, malformed, num, str, type MapContext, type MappedEvent, type Upstream } from '../mapper';

/**
 * Smartsupp visitor socket event → canonical events. Pure: fixtures in __fixtures__/ drive its spec.
 * Event names and payloads: docs/providers.md#smartsupp (smartsupp-websocket@1.2.2). The conversation is the VISITOR:
 * one socket per visitor, stable across that visitor's chats (the chat id stays in `upstream.payload`).
 */

/**
 * What the connector hands the mapper. Server payloads do not name the visitor whose socket they came
 * in on, so the connector wraps them; `data` is the server's payload, published unchanged.
 */
export interface SmartsuppFrame {
  visitorId: string;
  data: unknown;
  /** `initialized` only: the newest message time already published; older snapshot messages are skipped. */
  since?: string;
  /** `initialized` only: ids of the messages at exactly `since` that were already published. */
  seen?: string[];
}

/** Frames the connector builds from acks (not server pushes): the snapshot and the returned Message objects. */
export const ACK_EVENTS = { initialized: 'initialized', message: 'chat.message', uploadFinish: 'chat.upload_finish', accountStatus: 'account.status_updated' } as const;

/** System event content types → `change.kind`. */
const EVENT_KINDS: Record<string, string> = {
  agent_join: 'agent_joined',
  agent_leave: 'agent_left',
  agent_assign: 'agent_assigned',
  agent_unassign: 'agent_unassigned',
  chat_close: 'closed',
};

/** Live conversation events → `change.kind` when they arrive without their event message. */
const LIVE_KINDS: Record<string, string> = {
  'chat.agent_joined': 'agent_joined',
  'chat.agent_left': 'agent_left',
  'chat.agent_assigned': 'agent_assigned',
  'chat.agent_unassigned': 'agent_unassigned',
  'chat.closed': 'closed',
};

export function mapSmartsupp(frame: UpstreamFrame, ctx: MapContext): MappedEvent[] {
  const wrapped = frame.payload;
  if (!isRecord(wrapped) || !str(wrapped.visitorId)) return malformed({ event: frame.event, payload: frame.payload }, ctx, 'frame without a visitor id');
  const visitorId = str(wrapped.visitorId) as string;
  const data = wrapped.data;
  const up: Upstream = { event: frame.event, payload: data };
  const m = new Builder(ctx, visitorId, up);
  switch (frame.event) {
    case ACK_EVENTS.initialized:
      return snapshot(m, data, str(wrapped.since), Array.isArray(wrapped.seen) ? wrapped.seen : []);
    case 'chat.message_received':
      return isRecord(data) ? message(m, data.message) : m.malformed('chat.message_received: payload is not an object');
    case ACK_EVENTS.message:
    case ACK_EVENTS.uploadFinish:
      return message(m, data);
    case 'chat.agent_typing':
      return typing(m, data);
    case 'chat.contact_read':
      return read(m, data);
    case 'chat.closed':
    case 'chat.agent_joined':
    case 'chat.agent_left':
    case 'chat.agent_assigned':
    case 'chat.agent_unassigned':
      return liveChange(m, frame.event, data);
    case 'chat.rated':
      return rated(m, data);
    case 'chat.deleted': {
      const chatId = isRecord(data) ? str(data.chatId) : undefined;
      return [m.make({ type: 'chatbridge.conversation.updated', upstreamKey: chatId && `deleted:${chatId}`, data: { ...m.conv(), change: { kind: 'deleted' }, upstream: up } })];
    }
    case 'account.updated':
      return isRecord(data) && str(data.status) ? [account(m, str(data.status) as string)] : [m.provider()];
    case ACK_EVENTS.accountStatus:
      return str(data) ? [account(m, str(data) as string)] : m.malformed('account.status_updated: status is not a string');
    case 'server.error':
      return serverError(m, data);
    case 'visitor.updated':
      return [m.provider(true)];
    default:
      // agent.updated, agent.removed and anything newer: published whole, never dropped.
      return [m.provider()];
  }
}

/** Builds events for one visitor's frame. */
class Builder {
  constructor(
    private readonly ctx: MapContext,
    readonly visitorId: string,
    readonly up: Upstream,
  ) {}

  base() {
    return base(this.ctx);
  }

  conv() {
    return { ...this.base(), conversation: { id: this.visitorId } };
  }

  /** An event of this visitor's conversation, or (`conversation: false`) of the channel only. */
  make<T extends EventType>(init: Omit<EventInit<T>, 'channelId' | 'provider' | 'conversationId'> & { conversation?: boolean }): MappedEvent {
    const { conversation = true, ...rest } = init;
    return make({ ...rest, conversationId: conversation ? this.visitorId : undefined } as Omit<EventInit<T>, 'channelId' | 'provider'>, this.ctx);
  }

  provider(withConversation = false): MappedEvent {
    const data = withConversation ? { ...this.conv(), upstream: this.up } : { ...this.base(), upstream: this.up };
    return this.make({ type: 'chatbridge.provider.event', conversation: withConversation, data });
  }

  malformed(reason: string): MappedEvent[] {
    return malformed(this.up, this.ctx, reason);
  }
}

/** ConnectedData: the gap-fill. Its chat's messages are published (by id, so those already seen dedupe). */
function snapshot(m: Builder, data: unknown, since: string | undefined, seen: unknown[]): MappedEvent[] {
  if (!isRecord(data) || !isRecord(data.visitor)) return m.malformed('initialized: ConnectedData without visitor');
  const chat = data.chat;
  if (chat === null || chat === undefined) return [];
  if (!isRecord(chat) || !Array.isArray(chat.messages)) return m.malformed('initialized: chat without messages');
  const from = since ? Date.parse(since) : NaN;
  const out: MappedEvent[] = [];
  for (const msg of chat.messages) {
    const at = isRecord(msg) ? Date.parse(String(msg.createdAt)) : NaN;
    // At exactly `since` only the ids already published are skipped: a message is never lost to a tie.
    if (!Number.isNaN(from) && !Number.isNaN(at) && (at < from || (at === from && isRecord(msg) && seen.includes(msg.id)))) continue;
    out.push(...message(m, msg));
  }
  return out;
}

/** One IMessage: a chat message (received/sent by subType) or a system event message (conversation change). */
function message(m: Builder, msg: unknown): MappedEvent[] {
  if (!isRecord(msg) || !str(msg.id)) return m.malformed(`${m.up.event}: message without id`);
  const id = str(msg.id) as string;
  const time = msg.createdAt ? new Date(String(msg.createdAt)) : undefined;
  const content = isRecord(msg.content) ? msg.content : {};
  if (msg.type === 'event') {
    const contentType = str(content.type) ?? 'unknown';
    const detail = isRecord(content.data) ? content.data : undefined;
    const agentId = detail ? str(detail.agentId) ?? str(detail.assigned) ?? str(detail.unassigned) : undefined;
    const change: { kind: string; agent?: Participant; detail?: unknown } = { kind: EVENT_KINDS[contentType] ?? contentType };
    if (agentId) change.agent = { id: agentId, role: 'agent' };
    if (detail) change.detail = detail;
    return [m.make({ type: 'chatbridge.conversation.updated', upstreamKey: `msg:${id}`, time, data: { ...m.conv(), change, upstream: m.up } })];
  }
  const sender = senderOf(msg, m.visitorId);
  if (!sender) return [m.make({ type: 'chatbridge.provider.event', upstreamKey: `msg:${id}`, time, data: { ...m.conv(), upstream: m.up } })];
  const inbound = sender.role === 'contact';
  const info: MessageInfo = { id, direction: inbound ? 'inbound' : 'outbound', sender };
  const text = str(content.text);
  if (text !== undefined) info.text = text;
  const attachments = attachmentsOf(msg, content);
  if (attachments.length) info.attachments = attachments;
  return [
    m.make({
      type: inbound ? 'chatbridge.message.received' : 'chatbridge.message.sent',
      upstreamKey: `msg:${id}`,
      time,
      data: { ...m.conv(), message: info, upstream: m.up },
    }),
  ];
}

function senderOf(msg: Record<string, unknown>, visitorId: string): Participant | undefined {
  switch (msg.subType) {
    case 'contact':
      return { id: str(msg.visitorId) ?? visitorId, role: 'contact' };
    case 'agent':
      return str(msg.agentId) ? { id: str(msg.agentId), role: 'agent' } : { role: 'agent' };
    case 'trigger': {
      const trigger = isRecord(msg.trigger) ? msg.trigger : {};
      const bot: Participant = { role: 'bot' };
      if (str(trigger.id)) bot.id = str(trigger.id);
      if (str(trigger.name)) bot.name = str(trigger.name);
      return bot;
    }
    case 'system':
      return { role: 'system' };
    default:
      return undefined;
  }
}

function attachmentsOf(msg: Record<string, unknown>, content: Record<string, unknown>): Attachment[] {
  const list = Array.isArray(msg.attachments) && msg.attachments.length ? msg.attachments : content.type === 'upload' && isRecord(content.data) ? [content.data] : [];
  return list.filter(isRecord).map((a) => {
    const out: Attachment = {};
    if (str(a.url)) out.url = str(a.url);
    if (str(a.fileType)) out.mimeType = str(a.fileType);
    if (str(a.fileName)) out.name = str(a.fileName);
    const size = num(a.size);
    if (size !== undefined) out.size = size;
    return out;
  });
}

function typing(m: Builder, data: unknown): MappedEvent[] {
  if (!isRecord(data) || !isRecord(data.typing) || typeof data.typing.is !== 'boolean') return m.malformed('chat.agent_typing: typing.is missing');
  return [m.make({ type: 'chatbridge.typing', data: { ...m.conv(), typing: { active: data.typing.is, sender: { role: 'agent' } }, upstream: m.up } })];
}

function read(m: Builder, data: unknown): MappedEvent[] {
  if (!isRecord(data)) return m.malformed('chat.contact_read: payload is not an object');
  const chatId = str(data.chatId);
  const at = str(data.lastReadAt);
  const readInfo: { at?: string; by: Participant } = { by: { id: m.visitorId, role: 'contact' } };
  if (at) readInfo.at = at;
  return [
    m.make({
      type: 'chatbridge.read',
      upstreamKey: chatId && at ? `read:${chatId}:${at}` : undefined,
      time: at ? new Date(at) : undefined,
      data: { ...m.conv(), read: readInfo, upstream: m.up },
    }),
  ];
}

/** Live agent/close events carry their system event message: mapped from it, so a snapshot replay dedupes. */
function liveChange(m: Builder, event: string, data: unknown): MappedEvent[] {
  if (!isRecord(data)) return m.malformed(`${event}: payload is not an object`);
  if (isRecord(data.message) && str(data.message.id) && data.message.type === 'event') return message(m, data.message);
  const who = data.agent ?? data.assigned ?? data.unassigned;
  const change: { kind: string; agent?: Participant } = { kind: LIVE_KINDS[event] };
  if (isRecord(who) && str(who.id)) change.agent = { id: str(who.id), role: 'agent', ...(str(who.nickname) ? { name: str(who.nickname) } : {}) };
  return [m.make({ type: 'chatbridge.conversation.updated', data: { ...m.conv(), change, upstream: m.up } })];
}

function rated(m: Builder, data: unknown): MappedEvent[] {
  if (!isRecord(data)) return m.malformed('chat.rated: payload is not an object');
  const chatId = str(data.chatId);
  const messageId = isRecord(data.message) ? str(data.message.id) : undefined;
  const change: { kind: string; detail?: unknown } = { kind: 'rated' };
  if (isRecord(data.rating)) change.detail = data.rating;
  return [
    m.make({
      type: 'chatbridge.conversation.updated',
      // The rate form message is published as a message under `msg:<id>`; the rating itself is its own event.
      upstreamKey: chatId && messageId ? `rated:${chatId}:${messageId}` : undefined,
      data: { ...m.conv(), change, upstream: m.up },
    }),
  ];
}

function account(m: Builder, status: string): MappedEvent {
  return m.make({ type: 'chatbridge.account.status', conversation: false, data: { ...m.base(), account: { status }, upstream: m.up } });
}

/** `server.error` `{message, code?, type?, event?}`: a well-formed upstream notice, not a malformed frame. */
function serverError(m: Builder, data: unknown): MappedEvent[] {
  if (!isRecord(data)) return m.malformed('server.error: payload is not an object');
  const notification: { message?: string; level: string } = { level: 'error' };
  if (str(data.message)) notification.message = str(data.message);
  return [m.make({ type: 'chatbridge.notification', data: { ...m.conv(), notification, upstream: m.up } })];
}
