import { createHash } from 'node:crypto';
import type { MessageInfo } from '../../envelope/event-types';
import type { UpstreamFrame } from '../connector.interface';
import { base, isRecord, make, str, type MapContext, type MappedEvent, type Upstream } from '../mapper';

/**
 * Zyeta-style WebSocket service frame `{type, data, timestamp}` → canonical events (docs/providers.md#jwt-websocket). Pure.
 * The service gives no ids, so the stable key is a hash of the canonical JSON of the whole frame (type,
 * timestamp, data, and a top-level error `code` if any): an exact replay dedupes, frames that differ in anything do not. Without a timestamp the frame has
 * no identity at all (two identical "ok" messages are two messages), so it gets a unique id.
 */
export function mapJwtWebSocket(frame: UpstreamFrame, ctx: MapContext): MappedEvent[] {
  const raw = frame.payload;
  const up = { event: frame.event, payload: raw };
  if (!isRecord(raw)) return [providerEvent(up, ctx, undefined, 'frame is not a JSON object')];
  const type = typeof raw.type === 'string' && raw.type !== '' ? raw.type : undefined;
  if (!type) return [providerEvent(up, ctx, undefined, 'frame has no "type"')];
  const key = contentKey(raw);
  const time = upstreamTime(raw.timestamp);
  const data = raw.data;
  switch (type) {
    case 'chat_message':
      return chatMessage(data, up, ctx, key, time);
    case 'notification':
      if (!isRecord(data)) return [providerEvent(up, ctx, undefined, 'notification: data is not an object')];
      return [make({ type: 'chatbridge.notification', upstreamKey: key, time, data: { ...base(ctx), notification: pick(data, { message: 'message', level: 'level' }), upstream: up } }, ctx)];
    case 'status_update':
      if (!isRecord(data)) return [providerEvent(up, ctx, undefined, 'status_update: data is not an object')];
      return [make({ type: 'chatbridge.entity.status', upstreamKey: key, time, data: { ...base(ctx), entity: pick(data, { type: 'entity_type', id: 'entity_id', status: 'status' }), upstream: up } }, ctx)];
    case 'pong':
      // Keepalive answer to our ping: carries nothing for consumers.
      return [];
    case 'error':
      // Each error answers one of our requests: two identical failures in the same second are two failures.
      return [providerEvent(up, ctx, undefined, undefined, time)];
    default:
      // Unknown types: published whole, never dropped.
      return [providerEvent(up, ctx, key, undefined, time)];
  }
}

function chatMessage(data: unknown, up: Upstream, ctx: MapContext, key: string | undefined, time: Date | undefined): MappedEvent[] {
  const conversationId = isRecord(data) ? str(data.conversation_id) : undefined;
  if (!isRecord(data) || !conversationId) return [providerEvent(up, ctx, undefined, 'chat_message: data.conversation_id missing')];
  const message: MessageInfo = { direction: 'inbound' };
  const text = typeof data.content === 'string' ? data.content : undefined;
  if (text !== undefined) message.text = text;
  const senderId = str(data.sender_id);
  message.sender = senderId ? { id: senderId, role: 'contact' } : { role: 'contact' };
  return [
    make(
      { type: 'chatbridge.message.received', upstreamKey: key, conversationId, time, data: { ...base(ctx), conversation: { id: conversationId }, message, upstream: up } },
      ctx,
    ),
  ];
}

function providerEvent(up: Upstream, ctx: MapContext, upstreamKey?: string, error?: string, time?: Date): MappedEvent {
  const upstream = error ? { ...up, error } : up;
  return make({ type: 'chatbridge.provider.event', upstreamKey, time, data: { ...base(ctx), upstream } }, ctx);
}

/** Copies the string fields present in `data` under their canonical names; absent fields stay absent. */
function pick<K extends string>(data: Record<string, unknown>, names: Record<K, string>): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const [to, from] of Object.entries(names) as Array<[K, string]>) {
    const v = str(data[from]);
    if (v !== undefined) out[to] = v;
  }
  return out;
}

/** `hash:<sha256>` of the canonical frame; undefined without a timestamp (see above). */
function contentKey(raw: Record<string, unknown>): string | undefined {
  if (typeof raw.timestamp !== 'string' && typeof raw.timestamp !== 'number') return undefined;
  try {
    return `hash:${createHash('sha256').update(canonicalJson(raw)).digest('hex')}`;
  } catch {
    return undefined; // not JSON-serialisable (cannot come off the wire): no identity rather than a throw
  }
}

/** JSON with object keys sorted at every level, so key order does not change the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    return `{${Object.keys(value).sort().filter((k) => value[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The upstream's ISO 8601 `timestamp`; undefined when absent or unparseable (then the time received is used). */
function upstreamTime(ts: unknown): Date | undefined {
  if (typeof ts !== 'string') return undefined;
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
