/**
 * Evolution API v2.3.6 on the wire, as the ZapThinker simulator speaks it (docs/providers.md#zapthinker): event names,
 * the socket envelope and its data, the sendText answer, and the small helpers Evolution and Baileys use for ids and
 * JIDs.
 */
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';

/** Message status strings produced by Evolution's utils/renderStatus.ts. */
export type EvolutionMessageStatus = 'ERROR' | 'PENDING' | 'SERVER_ACK' | 'DELIVERY_ACK' | 'READ' | 'PLAYED';

/** Device guessed from the message id (Baileys `getDevice`). */
export type EvolutionMessageSource = 'ios' | 'web' | 'android' | 'desktop' | 'unknown';

/** Connection states reported in `connection.update`. */
export type EvolutionConnectionState = 'open' | 'connecting' | 'close' | 'refused';

/** Event name used by `emitMalformed(instance, 'unknown-event')`; it is not in Evolution's `Events` enum. */
export const ZAPTHINKER_UNKNOWN_EVENT = 'chats.archived';

/** Socket event names (dotted form, Evolution `enum Events`). */
export const EVOLUTION_SOCKET_EVENTS: readonly string[] = [
  'application.startup',
  'instance.create',
  'instance.delete',
  'qrcode.updated',
  'connection.update',
  'status.instance',
  'messages.set',
  'messages.upsert',
  'messages.edited',
  'messages.update',
  'messages.delete',
  'send.message',
  'send.message.update',
  'contacts.set',
  'contacts.upsert',
  'contacts.update',
  'presence.update',
  'chats.set',
  'chats.update',
  'chats.upsert',
  'chats.delete',
  'groups.upsert',
  'groups.update',
  'group-participants.update',
  'call',
  'typebot.start',
  'typebot.change-status',
  'labels.edit',
  'labels.association',
  'creds.update',
  'messaging-history.set',
  'remove.instance',
  'logout.instance',
];

/** Config names accepted in `events` arrays (Evolution `EventController.events`; note GROUP_UPDATE, not GROUPS_UPDATE). */
export const EVOLUTION_CONFIG_EVENTS: readonly string[] = [
  'APPLICATION_STARTUP',
  'QRCODE_UPDATED',
  'MESSAGES_SET',
  'MESSAGES_UPSERT',
  'MESSAGES_EDITED',
  'MESSAGES_UPDATE',
  'MESSAGES_DELETE',
  'SEND_MESSAGE',
  'SEND_MESSAGE_UPDATE',
  'CONTACTS_SET',
  'CONTACTS_UPSERT',
  'CONTACTS_UPDATE',
  'PRESENCE_UPDATE',
  'CHATS_SET',
  'CHATS_UPSERT',
  'CHATS_UPDATE',
  'CHATS_DELETE',
  'GROUPS_UPSERT',
  'GROUP_UPDATE',
  'GROUP_PARTICIPANTS_UPDATE',
  'CONNECTION_UPDATE',
  'LABELS_EDIT',
  'LABELS_ASSOCIATION',
  'CALL',
  'TYPEBOT_START',
  'TYPEBOT_CHANGE_STATUS',
  'REMOVE_INSTANCE',
  'LOGOUT_INSTANCE',
  'INSTANCE_CREATE',
  'INSTANCE_DELETE',
  'STATUS_INSTANCE',
];

/** Evolution websocket envelope (ChannelStartupService.sendDataWebhook + WebsocketController.emit). */
export interface EvolutionEnvelope<T = unknown> {
  /** Dotted event name, e.g. `messages.upsert`. */
  event: string;
  /** Instance name. */
  instance: string;
  /** Event-specific payload. */
  data: T;
  /** `SERVER_URL`. */
  server_url: string;
  /** Local wall clock mislabelled as UTC (`Z`). */
  date_time: string;
  /** The instance's own WID. */
  sender: string;
  /** Instance token when exposed, else null. */
  apikey: string | null;
}

/** Baileys message key. */
export interface EvolutionMessageKey {
  /** Chat JID. */
  remoteJid: string;
  /** True when the instance itself sent the message. */
  fromMe: boolean;
  /** WhatsApp message id. */
  id: string;
  /** Sender inside a group. */
  participant?: string;
}

/** Baileys image message content (subset that Evolution forwards). */
export interface EvolutionImageMessage {
  /** Encrypted media URL on mmg.whatsapp.net. */
  url: string;
  /** MIME type. */
  mimetype: string;
  /** Optional caption. */
  caption?: string;
  /** Base64 sha256 of the plaintext file. */
  fileSha256: string;
  /** File length in bytes (Long serialised as string). */
  fileLength: string;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
  /** Base64 media key. */
  mediaKey: string;
  /** Base64 sha256 of the encrypted file. */
  fileEncSha256: string;
  /** Direct path on the CDN. */
  directPath: string;
  /** Media key timestamp (unix seconds, as string). */
  mediaKeyTimestamp: string;
}

/** Message content variants the simulator produces. */
export interface EvolutionMessageContent {
  /** Plain text (extendedTextMessage is folded into this by Evolution). */
  conversation?: string;
  /** Text with extras (used in the sendText REST response). */
  extendedTextMessage?: { text: string };
  /** Image. */
  imageMessage?: EvolutionImageMessage;
}

/** `messages.upsert` / `send.message` data (Evolution `prepareMessage`). */
export interface EvolutionMessageData {
  /** Baileys key. */
  key: EvolutionMessageKey;
  /** Contact push name. */
  pushName: string | null;
  /** Rendered status. */
  status: EvolutionMessageStatus;
  /** Message content. */
  message: EvolutionMessageContent;
  /** Context info (quotes, mentions), when present. */
  contextInfo?: Record<string, unknown>;
  /** Content type, e.g. `conversation`, `imageMessage`. */
  messageType: string;
  /** Unix seconds. */
  messageTimestamp: number;
  /** Evolution instance uuid. */
  instanceId: string;
  /** Device guessed from the id. */
  source: EvolutionMessageSource;
}

/** `messages.update` data. */
export interface EvolutionMessageUpdateData {
  /** Evolution's database id of the message (absent when not stored). */
  messageId?: string;
  /** WhatsApp message id. */
  keyId: string;
  /** Chat JID. */
  remoteJid: string;
  /** True for messages sent by the instance. */
  fromMe: boolean;
  /** Group participant or null-ish. */
  participant: string | undefined;
  /** New status. */
  status: EvolutionMessageStatus;
  /** Poll vote updates, when any. */
  pollUpdates?: unknown[];
  /** Evolution instance uuid. */
  instanceId: string;
}

/** `connection.update` data. */
export interface EvolutionConnectionUpdateData {
  /** Instance name. */
  instance: string;
  /** Own WID. */
  wuid: string;
  /** Profile name. */
  profileName: string;
  /** Profile picture URL or null. */
  profilePictureUrl: string | null;
  /** New state. */
  state: EvolutionConnectionState;
  /** Baileys status reason code. */
  statusReason: number;
}

/** `qrcode.updated` data. */
export interface EvolutionQrcodeData {
  /** QR code details. */
  qrcode: { instance: string; pairingCode: string | null; code: string; base64: string };
}

/** `presence.update` data. */
export interface EvolutionPresenceData {
  /** Chat JID. */
  id: string;
  /** Presence by participant JID. */
  presences: Record<string, { lastKnownPresence: 'available' | 'unavailable' | 'composing' | 'recording' | 'paused' }>;
}

/** sendText REST response (the Baileys WAMessage). */
export interface SendTextResponse {
  /** Message key. */
  key: EvolutionMessageKey;
  /** Sent content. */
  message: { extendedTextMessage: { text: string } };
  /** Unix seconds as string. */
  messageTimestamp: string;
  /** Always PENDING. */
  status: 'PENDING';
}

/** `bytes` random bytes as uppercase hex (Baileys message ids). */
export function upperHex(bytes: number): string {
  return randomBytes(bytes).toString('hex').toUpperCase();
}

/** Baileys getDevice: guesses the sender device from the message id. */
export function deviceFromMessageId(id: string): EvolutionMessageSource {
  if (/^3A.{18}$/.test(id)) return 'ios';
  if (/^3E.{20}$/.test(id)) return 'web';
  if (/^(.{21}|.{32})$/.test(id)) return 'android';
  if (/^(3F|.{18}$)/.test(id)) return 'desktop';
  return 'unknown';
}

/** Evolution createJid, without the BR/MX ninth-digit rewriting: keeps JIDs, strips formatting from numbers. */
export function toJid(number: string): string {
  if (/@(g\.us|s\.whatsapp\.net|lid|broadcast)/.test(number)) return number;
  let n = number.replace(/[\s+()]/g, '').split(':')[0].split('@')[0];
  if (n.includes('-') && n.length >= 24) return `${n.replace(/[^\d-]/g, '')}@g.us`;
  n = n.replace(/\D/g, '');
  if (n.length >= 18) return `${n}@g.us`;
  return `${n}@s.whatsapp.net`;
}

/** Evolution's error body (its HttpException filter). */
export function evolutionError(status: number, message: unknown): { status: number; error: string; response: { message: unknown } } {
  return { status, error: STATUS_CODES[status] ?? 'Error', response: { message } };
}
