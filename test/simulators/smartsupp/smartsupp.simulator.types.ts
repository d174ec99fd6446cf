/**
 * Wire shapes of the Smartsupp visitor websocket, as typed by smartsupp-websocket@1.2.2 (lib/types.d.ts,
 * lib/visitor.d.ts, lib/events.d.ts). See docs/providers.md#smartsupp.
 */

/** Message attachment. */
export interface SimAttachment {
  type: 'image' | 'file';
  fileName: string;
  fileType: string;
  url: string;
  expireAt: string;
  size: number;
  width: number | null;
  height: number | null;
}

/** IMessage. */
export interface SimMessage {
  id: string;
  type: 'message' | 'event';
  subType: 'agent' | 'contact' | 'trigger' | 'system';
  channel: { type: string; id: string | null };
  chatId: string;
  groupId: string | null;
  visitorId: string;
  agentId: string | null;
  trigger: { id: string; name: string } | null;
  createdAt: string;
  content: { type: string; text: string | null; data: unknown };
  tags: string[] | null;
  responseTime: number | null;
  attachments: SimAttachment[];
}

/** Agent. */
export interface SimAgent {
  id: string;
  status: 'online' | 'offline';
  groups: string[];
  nickname: string;
  fullname: string;
  description: string;
  avatar: string;
}

/** Visitor as returned in ConnectedData.visitor. */
export interface SimVisitorInfo {
  id: string;
  chatId: string | null;
  lang: string | null;
  name: string | null;
  email: string | null;
  phone: string | null;
  bannedAt: string | null;
  group: string | null;
  visits: number;
  variables: Record<string, string | number | boolean>;
}

/** ChatInfo. */
export interface SimChat {
  id: string;
  assignedIds: string[];
  rating: { value: number; text: string | null } | null;
  status: 'pending' | 'open' | 'closed';
  readInfo: { type: 'agent' | 'visitor'; lastReadAt: string | null };
  unreadInfo: { type: 'agent' | 'visitor'; count: number; lastReadAt: string | null };
  messages: SimMessage[];
}

/** ConnectedData: the ack of `visitor.connect`. */
export interface SimConnectedData {
  serverVersion: number;
  visitor: SimVisitorInfo;
  browser: { isMobile: boolean; isTablet: boolean; isDesktop: boolean; isSmartTV: boolean; isIE: boolean; isEdge: boolean } | null;
  account: { status: 'online' | 'offline'; agents: SimAgent[]; groups: Array<{ key: string; name: string; status: string }> };
  chat: SimChat | null;
}

/** Error object passed as the first ack argument or with `server.error`. */
export interface SimError {
  message: string;
  code?: number;
  type?: string;
  event?: string;
}

/** One client emit as the simulator received it. */
export interface RecordedEmit {
  socketId: string;
  /** The visitor the socket was initialized as (null before `visitor.connect`). */
  visitorId: string | null;
  event: string;
  /** Arguments after the event name, without the ack function. */
  args: unknown[];
  /** Whether the client asked for an acknowledgement. */
  ack: boolean;
  at: number;
}

/** One `visitor.connect` the simulator evaluated. */
export interface RecordedConnect {
  socketId: string;
  /** The headers of the socket's WebSocket upgrade request. */
  headers: Record<string, string | string[] | undefined>;
  data: Record<string, unknown>;
  key: unknown;
  requestedId: unknown;
  accepted: boolean;
  /** The visitor id answered (new or resumed). */
  visitorId?: string;
  at: number;
}

/** Kinds of broken frames `emitMalformed` produces. */
export type SmartsuppMalformedKind = 'string-payload' | 'message-without-id' | 'typing-without-is' | 'unknown-event';

/** Event name used by `emitMalformed(v, 'unknown-event')`: not in the SDK's event list. */
export const SMARTSUPP_UNKNOWN_EVENT = 'chat.visitor_banned';
