import type { InboundParse } from '../connector.interface';
import { unwrapEvent } from './captivate.frames';

/**
 * Captivate Hub's webhook body → the frame its socket delivers (pure). The webhook payload is undocumented
 * (docs/providers.md#captivate); the assumption is that Captivate posts the same `{action: "receiveMessage", event: {…}}`
 * frame it sends on the socket (the bare `{event_type, event_payload, event_id}` shape is read too).
 */
export function parseCaptivateInbound(body: unknown): InboundParse {
  const ev = unwrapEvent(body);
  if (!ev) {
    return { ok: false, error: 'body must be a Captivate event: {"action":"receiveMessage","event":{"event_type":"…","event_payload":{…}}} or {"event_type":"…","event_payload":{…}}' };
  }
  return { ok: true, frames: [{ event: ev.type, payload: body }] };
}
