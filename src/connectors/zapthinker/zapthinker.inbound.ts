import type { InboundContext, InboundParse } from '../connector.interface';
import { isRecord } from '../mapper';

/**
 * Evolution's webhook body → the frame its socket delivers (pure). Evolution posts the envelope it emits on the
 * socket (`{event, instance, data, server_url, date_time, sender, apikey?}`) plus `destination`, the URL it
 * posted to; `destination` is dropped so the frame, and so the canonical event, is the socket one exactly.
 * With `byEvents` the URL ends in `/<event-kebab>` (`/messages-upsert`): the body's `event` decides, the suffix
 * is only routing.
 */
export function parseZapThinkerInbound(body: unknown, _ctx: InboundContext = {}): InboundParse {
  if (!isRecord(body)) return { ok: false, error: 'body must be an Evolution webhook envelope (a JSON object with "event" and "data")' };
  if (typeof body.event !== 'string' || body.event === '') return { ok: false, error: 'Evolution envelope without "event" (the event name, e.g. "messages.upsert")' };
  if (!('data' in body)) return { ok: false, error: `Evolution envelope of "${body.event}" without "data"` };
  const { destination: _destination, ...envelope } = body;
  return { ok: true, frames: [{ event: body.event, payload: envelope }] };
}

