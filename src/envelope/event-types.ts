import type { PROVIDER_REGISTRY } from '../connectors/registry';

/**
 * THE typed event map. Every canonical type and its `data` shape derive from here, so renaming a type breaks the
 * build rather than a consumer.
 */

/** Upstream providers chatbridge speaks to: the keys of the provider registry, the one list of them. */
export type ProviderName = keyof typeof PROVIDER_REGISTRY;

/**
 * States a channel reports (docs/events.md `chatbridge.channel.status`). The supervisor reports all but `inbound`:
 * a channel in webhook mode whose socket is closed, its events coming through `POST /v1/inbound/<id>`.
 */
export const CHANNEL_STATES = ['connecting', 'connected', 'reconnecting', 'disconnected', 'auth_failed', 'inbound'] as const;
export type ChannelState = (typeof CHANNEL_STATES)[number];

export interface ChannelRef {
  id: string;
  provider: ProviderName;
}

export interface Participant {
  id?: string;
  name?: string;
  role: 'contact' | 'agent' | 'bot' | 'system';
}

export interface Attachment {
  url?: string;
  mimeType?: string;
  name?: string;
  size?: number;
  caption?: string;
}

export interface MessageInfo {
  id?: string;
  direction: 'inbound' | 'outbound';
  text?: string;
  sender?: Participant;
  attachments?: Attachment[];
  /** Delivery status for `message.updated` (e.g. `delivered`, `read`), normalised lower case. */
  status?: string;
  /** True for a deletion in `message.updated`. */
  deleted?: boolean;
}

/** Where the event came from, kept whole so nothing the upstream said is lost. */
export interface UpstreamInfo {
  event: string;
  payload: unknown;
  /** Present when the frame could not be interpreted (malformed or unexpected shape). */
  error?: string;
}

/** Fields every upstream-derived `data` carries. */
export interface BaseData {
  channel: ChannelRef;
  conversation?: { id: string };
  upstream: UpstreamInfo;
}

export interface MessageData extends BaseData {
  message: MessageInfo;
}
export interface TypingData extends BaseData {
  typing: { active: boolean; sender?: Participant };
}
export interface ReadData extends BaseData {
  read: { at?: string; by?: Participant; messageIds?: string[] };
}
export interface ConversationData extends BaseData {
  change?: { kind: string; agent?: Participant; detail?: unknown };
}
export interface AccountStatusData extends BaseData {
  account: { status: string; detail?: unknown };
}
export interface NotificationData extends BaseData {
  notification: { message?: string; level?: string };
}
export interface EntityStatusData extends BaseData {
  entity: { type?: string; id?: string; status?: string };
}
export interface ChannelStatusData {
  channel: ChannelRef;
  status: {
    state: ChannelState;
    previous?: ChannelState;
    reason?: string;
    attempt?: number;
    nextRetryInMs?: number;
    /** The channel's mode when this was published; with reason `mode_changed`, the mode switched to. */
    mode?: 'socket' | 'webhook';
    /** With reason `mode_changed`: the mode switched from. */
    previousMode?: 'socket' | 'webhook';
  };
}
export interface CommandResultData {
  channel: ChannelRef;
  conversation?: { id: string };
  command: { commandId: string; type: string; status: 'sent' | 'failed'; attempts: number; upstreamMessageId?: string; error?: string; errorCode?: string };
}

/** `chatbridge.webhook.status`: an outbound webhook endpoint changed state (410 disabled it, or it was re-enabled). */
export interface WebhookStatusData {
  webhook: { id: string; url: string };
  status: { state: 'active' | 'disabled'; previous: 'active' | 'disabled'; reason: string; httpStatus?: number };
}

/** Canonical type name → `data` shape. */
export interface EventDataMap {
  'chatbridge.message.received': MessageData;
  'chatbridge.message.sent': MessageData;
  'chatbridge.message.updated': MessageData;
  'chatbridge.typing': TypingData;
  'chatbridge.read': ReadData;
  'chatbridge.conversation.started': ConversationData;
  'chatbridge.conversation.updated': ConversationData;
  'chatbridge.account.status': AccountStatusData;
  'chatbridge.notification': NotificationData;
  'chatbridge.entity.status': EntityStatusData;
  'chatbridge.provider.event': BaseData;
  'chatbridge.channel.status': ChannelStatusData;
  'chatbridge.command.result': CommandResultData;
  'chatbridge.webhook.status': WebhookStatusData;
}

/** Types of the bridge's own events, which have no channel (`channelid`/`provider` absent). */
export type BridgeEventType = 'chatbridge.webhook.status';

export type EventType = keyof EventDataMap;

// A record over EventType, so a type added to the map without a line here (or a line without a type) breaks the build.
const TYPE_SET: Record<EventType, true> = {
  'chatbridge.message.received': true,
  'chatbridge.message.sent': true,
  'chatbridge.message.updated': true,
  'chatbridge.typing': true,
  'chatbridge.read': true,
  'chatbridge.conversation.started': true,
  'chatbridge.conversation.updated': true,
  'chatbridge.account.status': true,
  'chatbridge.notification': true,
  'chatbridge.entity.status': true,
  'chatbridge.provider.event': true,
  'chatbridge.channel.status': true,
  'chatbridge.command.result': true,
  'chatbridge.webhook.status': true,
};

/** Every canonical type, in the order of the map (docs/events.md#types). */
export const EVENT_TYPES = Object.keys(TYPE_SET) as readonly EventType[];

