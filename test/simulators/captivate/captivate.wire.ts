import { randomBytes } from 'node:crypto';

/** What a client sent: over a socket, or over HTTP (`socketId` = the body's socket_id). */
export interface RecordedFrame {
  via: 'socket' | 'http';
  socketId?: string;
  at: number;
  text: string;
  json?: unknown;
}

/** A client frame of the manual: `{action: "sendMessage", event: {event_type, event_payload, socket_id?}}`. */
export type ClientFrame = { action?: unknown; event?: { event_type?: unknown; event_payload?: unknown; socket_id?: unknown } };

/** An API Gateway request-id-like event id (`Vp6x7GxOLPEFb7A=`). */
export function newEventId(): string {
  return randomBytes(11).toString('base64');
}

/** One hub event as sent to a socket: in the manual's `{action: "receiveMessage", event}` wrapper, or bare. */
export function eventFrameText(type: string, payload: Record<string, unknown>, eventId: string, wrap: boolean): string {
  const event = { event_type: type, event_payload: payload, event_id: eventId, accepts_response_payload: false };
  return JSON.stringify(wrap ? { action: 'receiveMessage', event } : event);
}

export function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** The `event.event_type` of a client frame. */
export function eventTypeOf(json: unknown): string | undefined {
  const e = asRecord(asRecord(json).event);
  return typeof e.event_type === 'string' ? e.event_type : undefined;
}
