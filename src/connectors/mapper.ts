import { createEvent, type CanonicalEvent, type EventInit } from '../envelope/envelope';
import type { ChannelRef, EventType, ProviderName } from '../envelope/event-types';
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

/** An upstream frame as an event keeps it (`data.upstream`). */
export interface Upstream {
  event: string;
  payload: unknown;
}

/** The `data.channel` every upstream-derived event carries. */
export function base(ctx: MapContext): { channel: ChannelRef } {
  return { channel: { id: ctx.channelId, provider: ctx.provider } };
}

/** `data.conversation` when the frame names one, else nothing. */
export function conversationData(id: string | undefined): { conversation?: { id: string } } {
  return id ? { conversation: { id } } : {};
}

/** One event of the mapped channel: its id, provider and receive time come from the context. */
export function make<T extends EventType>(init: Omit<EventInit<T>, 'channelId' | 'provider'>, ctx: MapContext): MappedEvent {
  return createEvent({ ...init, channelId: ctx.channelId, provider: ctx.provider } as EventInit<T>, ctx.receivedAt) as MappedEvent;
}

/**
 * What a frame the mapper cannot interpret becomes: one `chatbridge.provider.event` with the frame whole and
 * `upstream.error` saying why, in its conversation when the frame named one. Never dropped, never thrown.
 */
export function malformed(up: Upstream, ctx: MapContext, reason: string, conversationId?: string): MappedEvent[] {
  return [make({ type: 'chatbridge.provider.event', conversationId, data: { ...base(ctx), ...conversationData(conversationId), upstream: { ...up, error: reason } } }, ctx)];
}

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
