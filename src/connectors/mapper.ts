import type { CanonicalEvent } from '../envelope/envelope';
import type { EventType, ProviderName } from '../envelope/event-types';
import type { UpstreamFrame } from './connector.interface';

/** Context a mapper needs besides the frame. */
export interface MapContext {
  channelId: string;
  provider: ProviderName;
  receivedAt: Date;
  /** The channel's validated provider options (e.g. the bot's own user id, to tell its echoes apart). */
  options?: unknown;
}

/** One mapped event and whether its id is derived from an upstream id. */
export interface MappedEvent {
  event: { [K in EventType]: CanonicalEvent<K> }[EventType];
  stableId: boolean;
}

/**
 * A pure function from one upstream frame to canonical events. It never throws on bad input:
 * what it cannot interpret becomes a `chatbridge.provider.event` with `upstream.error` set.
 */
export type Mapper = (frame: UpstreamFrame, ctx: MapContext) => MappedEvent[];

/** Narrowing helpers for untrusted payloads. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : undefined;
}
export function num(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}
