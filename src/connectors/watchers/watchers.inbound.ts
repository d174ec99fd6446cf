import type { InboundParse, UpstreamFrame } from '../connector.interface';
import { isRecord } from '../mapper';

/**
 * The bridge's inbound format for Watchers (pure). Watchers' Bot REST webhook payload is not documented
 * (docs/providers.md#watchers), so the bridge accepts the socket frames themselves: `{"event": "<socket event name>",
 * "data": <the event's payload>}`, or a list of them. `{"event":"message","data":{project, roomId, message, userId}}`
 * is the socket's `message` event exactly, so it maps to the same event with the same id.
 * A list is all or nothing: one bad item rejects the body, so nothing is half-published.
 */
export function parseWatchersInbound(body: unknown): InboundParse {
  const items = Array.isArray(body) ? body : [body];
  if (items.length === 0) return { ok: false, error: 'empty list: expected {"event": "<socket event name>", "data": <payload>} or a list of them' };
  const frames: UpstreamFrame[] = [];
  for (const [i, item] of items.entries()) {
    const where = Array.isArray(body) ? `item ${i}: ` : '';
    if (!isRecord(item) || typeof item.event !== 'string' || item.event === '') {
      return { ok: false, error: `${where}expected {"event": "<socket event name>", "data": <payload>}` };
    }
    frames.push({ event: item.event, payload: item.data });
  }
  return { ok: true, frames };
}
