import type { Attachment, MessageInfo, Participant } from '../../envelope/event-types';
import type { UpstreamFrame } from '../connector.interface';
import { base, isRecord, make, malformed, num, str, type MapContext, type MappedEvent, type Upstream } from '../mapper';

/**
 * Evolution API (ZapThinker) socket event → canonical events. Pure: fixtures in __fixtures__/ drive its spec.
 * Event names and payload shapes: docs/providers.md#zapthinker (Evolution v2.3.6).
 */
export function mapZapThinker(frame: UpstreamFrame, ctx: MapContext): MappedEvent[] {
  const envelope = frame.payload;
  if (!isRecord(envelope)) return [providerEvent(frame, ctx, 'payload is not an Evolution envelope object')];
  const payload = withoutCredentials(envelope);
  const data = envelope.data;
  const up = { event: frame.event, payload };
  switch (frame.event) {
    case 'messages.upsert':
    case 'send.message':
      return messageEvent(frame.event, data, up, ctx);
    case 'messages.update':
    case 'send.message.update':
      return statusUpdate(data, up, ctx);
    case 'messages.edited':
      return edited(data, up, ctx);
    case 'messages.delete':
      return deleted(data, up, ctx);
    case 'presence.update':
      return presence(data, up, ctx);
    case 'connection.update':
      return account(str(isRecord(data) ? data.state : undefined) ?? 'unknown', up, ctx);
    case 'qrcode.updated':
      return account('qrcode_updated', up, ctx);
    case 'status.instance':
      return account(str(isRecord(data) ? data.status : undefined) ?? 'unknown', up, ctx);
    case 'logout.instance':
      return account('logged_out', up, ctx);
    case 'remove.instance':
      return account('removed', up, ctx);
    case 'group-participants.update':
    case 'groups.update':
    case 'chats.delete':
      return conversationUpdate(frame.event, data, up, ctx);
    default:
      // messages.set, contacts.*, chats.*, groups.upsert, call, labels.*, typebot.*, instance.*, …:
      // published whole as provider events, never dropped.
      return [providerEvent(frame, ctx, undefined, payload)];
  }
}

function providerEvent(frame: UpstreamFrame, ctx: MapContext, error?: string, payload: unknown = frame.payload): MappedEvent {
  const upstream = error ? { event: frame.event, payload, error } : { event: frame.event, payload };
  return make({ type: 'chatbridge.provider.event', data: { ...base(ctx), upstream } }, ctx);
}

function messageEvent(event: string, data: unknown, up: Upstream, ctx: MapContext): MappedEvent[] {
  if (!isRecord(data) || !isRecord(data.key)) return malformed(up, ctx, `${event}: data.key missing`);
  const key = data.key;
  const remoteJid = str(key.remoteJid);
  const id = str(key.id);
  if (!remoteJid || !id) return malformed(up, ctx, `${event}: data.key.remoteJid or data.key.id missing`);
  // `send.message` = sent through the REST API by this instance; `messages.upsert` with fromMe = sent from the phone.
  const outbound = event === 'send.message' || key.fromMe === true;
  const content = extractContent(data.message);
  const sender: Participant = outbound
    ? { role: 'agent' }
    : { id: str(key.participant) ?? remoteJid, role: 'contact', ...(str(data.pushName) ? { name: str(data.pushName) } : {}) };
  const message: MessageInfo = { id, direction: outbound ? 'outbound' : 'inbound', sender };
  if (content.text !== undefined) message.text = content.text;
  if (content.attachments.length) message.attachments = content.attachments;
  return [
    make(
      {
        type: outbound ? 'chatbridge.message.sent' : 'chatbridge.message.received',
        upstreamKey: `msg:${remoteJid}:${id}`,
        conversationId: remoteJid,
        time: unixTime(data.messageTimestamp),
        data: { ...base(ctx), conversation: { id: remoteJid }, message, upstream: up },
      },
      ctx,
    ),
  ];
}

const STATUS: Record<string, string> = {
  ERROR: 'error', PENDING: 'pending', SERVER_ACK: 'sent', DELIVERY_ACK: 'delivered', READ: 'read', PLAYED: 'played',
};

function statusUpdate(data: unknown, up: Upstream, ctx: MapContext): MappedEvent[] {
  if (!isRecord(data)) return malformed(up, ctx, `${up.event}: data missing`);
  const keyId = str(data.keyId) ?? str(data.messageId) ?? (isRecord(data.key) ? str(data.key.id) : undefined);
  const remoteJid = str(data.remoteJid) ?? (isRecord(data.key) ? str(data.key.remoteJid) : undefined);
  if (!keyId) return malformed(up, ctx, `${up.event}: keyId missing`);
  const rawStatus = str(data.status) ?? (isRecord(data.update) ? str(data.update.status) : undefined) ?? 'unknown';
  const status = STATUS[rawStatus] ?? rawStatus.toLowerCase();
  const message: MessageInfo = { id: keyId, direction: data.fromMe === false ? 'inbound' : 'outbound', status };
  return [
    make(
      {
        type: 'chatbridge.message.updated',
        upstreamKey: `status:${remoteJid ?? ''}:${keyId}:${rawStatus}`,
        conversationId: remoteJid,
        data: { ...base(ctx), ...(remoteJid ? { conversation: { id: remoteJid } } : {}), message, upstream: up },
      },
      ctx,
    ),
  ];
}

function edited(data: unknown, up: Upstream, ctx: MapContext): MappedEvent[] {
  if (!isRecord(data)) return malformed(up, ctx, 'messages.edited: data missing');
  const key = isRecord(data.key) ? data.key : {};
  const id = str(key.id);
  const remoteJid = str(key.remoteJid);
  const text = extractContent(editedContent(data)).text;
  // Evolution's Baileys channel sends the protocolMessage (edit time in `timestampMs`); other channels `messageTimestamp`.
  const time = unixTime(data.messageTimestamp) ?? unixTime(data.timestampMs, 1);
  const message: MessageInfo = { direction: key.fromMe === true ? 'outbound' : 'inbound', status: 'edited' };
  if (id) message.id = id;
  if (text !== undefined) message.text = text;
  return [
    make(
      {
        type: 'chatbridge.message.updated',
        // Several edits of one message are distinct events; their timestamps tell them apart.
        upstreamKey: id ? `edit:${remoteJid ?? ''}:${id}:${time?.getTime() ?? ''}:${text ?? ''}` : undefined,
        conversationId: remoteJid,
        time,
        data: { ...base(ctx), ...(remoteJid ? { conversation: { id: remoteJid } } : {}), message, upstream: up },
      },
      ctx,
    ),
  ];
}

/**
 * The new content of an edit. Baileys channel: `data` is the protocolMessage `{key, type, editedMessage, timestampMs}`;
 * other channels: `{key, message}`, where `message` may still be wrapped in `editedMessage.message.protocolMessage`.
 */
function editedContent(data: Record<string, unknown>): unknown {
  let content: unknown = isRecord(data.editedMessage) ? data.editedMessage : data.message;
  if (isRecord(content) && isRecord(content.editedMessage)) content = content.editedMessage.message ?? content.editedMessage;
  if (isRecord(content) && isRecord(content.protocolMessage) && isRecord(content.protocolMessage.editedMessage)) content = content.protocolMessage.editedMessage;
  return content;
}

function deleted(data: unknown, up: Upstream, ctx: MapContext): MappedEvent[] {
  // Evolution passes the Baileys key: {remoteJid, fromMe, id, participant?}.
  const key = isRecord(data) && isRecord(data.key) ? data.key : data;
  if (!isRecord(key) || !str(key.id)) return malformed(up, ctx, 'messages.delete: key.id missing');
  const id = str(key.id) as string;
  const remoteJid = str(key.remoteJid);
  return [
    make(
      {
        type: 'chatbridge.message.updated',
        upstreamKey: `delete:${remoteJid ?? ''}:${id}`,
        conversationId: remoteJid,
        data: {
          ...base(ctx),
          ...(remoteJid ? { conversation: { id: remoteJid } } : {}),
          message: { id, direction: key.fromMe === true ? 'outbound' : 'inbound', deleted: true, status: 'deleted' },
          upstream: up,
        },
      },
      ctx,
    ),
  ];
}

function presence(data: unknown, up: Upstream, ctx: MapContext): MappedEvent[] {
  if (!isRecord(data) || !isRecord(data.presences)) return malformed(up, ctx, 'presence.update: data.presences missing');
  const chat = str(data.id);
  const out: MappedEvent[] = [];
  for (const [jid, p] of Object.entries(data.presences)) {
    const state = isRecord(p) ? str(p.lastKnownPresence) : undefined;
    if (state === 'composing' || state === 'recording' || state === 'paused') {
      out.push(
        make(
          {
            type: 'chatbridge.typing',
            conversationId: chat ?? jid,
            data: { ...base(ctx), conversation: { id: chat ?? jid }, typing: { active: state !== 'paused', sender: { id: jid, role: 'contact' } }, upstream: up },
          },
          ctx,
        ),
      );
    }
  }
  // available/unavailable is online status, not typing: kept as a provider event.
  return out.length ? out : [make({ type: 'chatbridge.provider.event', conversationId: chat, data: { ...base(ctx), upstream: up } }, ctx)];
}

function account(status: string, up: Upstream, ctx: MapContext): MappedEvent[] {
  return [make({ type: 'chatbridge.account.status', data: { ...base(ctx), account: { status }, upstream: up } }, ctx)];
}

function conversationUpdate(event: string, data: unknown, up: Upstream, ctx: MapContext): MappedEvent[] {
  const first = Array.isArray(data) ? data[0] : data;
  const conv = isRecord(first) ? str(first.id) ?? str(first.remoteJid) : undefined;
  const kind = event === 'chats.delete' ? 'deleted' : event === 'groups.update' ? 'group_updated' : str(isRecord(first) ? first.action : undefined) ?? 'participants_updated';
  return [
    make(
      {
        type: 'chatbridge.conversation.updated',
        conversationId: conv,
        data: { ...base(ctx), ...(conv ? { conversation: { id: conv } } : {}), change: { kind }, upstream: up },
      },
      ctx,
    ),
  ];
}

/** Text and attachments of a Baileys message content object. */
function extractContent(message: unknown): { text?: string; attachments: Attachment[] } {
  const attachments: Attachment[] = [];
  if (!isRecord(message)) return { attachments };
  let text = str(message.conversation) ?? (isRecord(message.extendedTextMessage) ? str(message.extendedTextMessage.text) : undefined);
  for (const kind of ['imageMessage', 'videoMessage', 'audioMessage', 'documentMessage', 'stickerMessage'] as const) {
    const m = message[kind];
    if (!isRecord(m)) continue;
    const a: Attachment = {};
    if (str(m.url)) a.url = str(m.url);
    if (str(m.mimetype)) a.mimeType = str(m.mimetype);
    if (str(m.fileName)) a.name = str(m.fileName);
    const size = num(m.fileLength) ?? (isRecord(m.fileLength) ? num(m.fileLength.low) : undefined);
    if (size !== undefined) a.size = size;
    attachments.push(a);
    text = text ?? str(m.caption);
  }
  return text === undefined ? { attachments } : { text, attachments };
}

/** A unix time (seconds, or ms with `unitMs` 1) as a number, a string, or a protobuf Long `{low, high}`. */
function unixTime(v: unknown, unitMs = 1000): Date | undefined {
  let units = num(v);
  if (units === undefined && isRecord(v)) {
    const low = num(v.low);
    const high = num(v.high) ?? 0;
    if (low !== undefined) units = high * 2 ** 32 + (low >>> 0);
  }
  return units === undefined || units <= 0 ? undefined : new Date(units * unitMs);
}

/**
 * Evolution adds the instance `apikey` to the envelope when AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES is on.
 * It is a credential: it is removed before the payload is published. Everything else is kept unchanged.
 */
function withoutCredentials(envelope: Record<string, unknown>): Record<string, unknown> {
  if (!('apikey' in envelope)) return envelope;
  const { apikey: _omit, ...rest } = envelope;
  return rest;
}
