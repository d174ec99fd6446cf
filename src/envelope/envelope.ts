import { createHash, randomUUID } from 'node:crypto';
import type { DurableCallback } from '../pipeline/durable';
import { EVENT_TYPES, type BridgeEventType, type EventDataMap, type EventType, type ProviderName } from './event-types';

/** A canonical CloudEvent 1.0 (docs/events.md). One shape for every sink. */
export interface CanonicalEvent<T extends EventType = EventType> {
  specversion: '1.0';
  id: string;
  source: string;
  type: T;
  subject?: string;
  /** @format date-time */
  time: string;
  datacontenttype: 'application/json';
  /** The JSON Schema of `data`: `DATA_SCHEMAS[type]` (docs/events.md#schemas). */
  dataschema: string;
  partitionkey: string;
  /** Absent only on the bridge's own events (`chatbridge.webhook.status`), which belong to no channel. */
  channelid?: string;
  provider?: ProviderName;
  data: EventDataMap[T];
}

/** Any canonical event (a union over the map, so `data` narrows with `type`). */
export type AnyCanonicalEvent = { [K in EventType]: CanonicalEvent<K> }[EventType];

/** A canonical event plus what the pipeline needs and sinks must not publish. */
export interface PipelineEvent {
  event: AnyCanonicalEvent;
  /** True when `id` derives from an upstream id, so seeing it again means a duplicate. */
  stableId: boolean;
  /** `performance.now()`-style ms when the frame arrived, for latency metrics. */
  receivedAt: number;
  /**
   * Set for events whose input is answered only once they are durable (inbound posts): called once by the durable
   * sink (Kafka) when the event is acknowledged or dead-lettered, or by the pipeline when there is no durable sink.
   */
  durable?: DurableCallback;
}

/**
 * Stable event id: a hash of the channel and the upstream's own identity of the event
 * (e.g. `msg:<jid>:<messageId>`). Hex only, so it is safe as a Standard Webhooks `webhook-id`
 * (which must not contain `.`) and as a Kafka header.
 */
export function stableEventId(channelId: string, upstreamKey: string): string {
  // The first 16 bytes in hex, written as one flat string: a slice of the whole hex digest would keep all 64
  // characters alive for as long as the dedupe window holds the id.
  return createHash('sha256').update(channelId).update('\0').update(upstreamKey).digest().toString('hex', 0, 16);
}

/** A fresh unique id for events the upstream gives no identity to. */
export function uniqueEventId(): string {
  return randomUUID().replace(/-/g, '');
}

/** `<channelId>:<conversationId>`, or `<channelId>` without a conversation. */
export function partitionKey(channelId: string, conversationId?: string): string {
  return conversationId ? `${channelId}:${conversationId}` : channelId;
}

/** What a mapper or service supplies to build one event. */
export interface EventInit<T extends EventType> {
  type: T;
  channelId: string;
  provider: ProviderName;
  /** The upstream's identity of this event; omitted → a unique id. */
  upstreamKey?: string;
  conversationId?: string;
  /** Upstream event time; omitted or invalid → the time received. */
  time?: Date;
  data: EventDataMap[T];
}

/** Where the per-type schemas (`docs/schemas/<type>.json`) say they live: their `$id` is this plus `<type>.json`. */
export const SCHEMA_BASE_URI = 'https://chatbridge.dev/schemas/';

/**
 * `dataschema` of each type, built once: the `data` part (`#/properties/data`) of the type's event schema
 * (docs/events.md#schemas). CloudEvents' `dataschema` describes `data`, which is what a binary-mode record carries.
 */
export const DATA_SCHEMAS = Object.fromEntries(EVENT_TYPES.map((t) => [t, `${SCHEMA_BASE_URI}${t}.json#/properties/data`])) as Readonly<Record<EventType, string>>;

/** Builds a canonical event. The only place envelopes are assembled. */
export function createEvent<T extends EventType>(init: EventInit<T>, receivedAt: Date = new Date()): { event: CanonicalEvent<T>; stableId: boolean } {
  const time = init.time && !Number.isNaN(init.time.getTime()) ? init.time : receivedAt;
  const event: CanonicalEvent<T> = {
    specversion: '1.0',
    id: init.upstreamKey ? stableEventId(init.channelId, init.upstreamKey) : uniqueEventId(),
    source: `/chatbridge/${init.provider}/${init.channelId}`,
    type: init.type,
    time: time.toISOString(),
    datacontenttype: 'application/json',
    dataschema: DATA_SCHEMAS[init.type],
    partitionkey: partitionKey(init.channelId, init.conversationId),
    channelid: init.channelId,
    provider: init.provider,
    data: init.data,
  };
  if (init.conversationId) event.subject = init.conversationId;
  return { event, stableId: Boolean(init.upstreamKey) };
}

/**
 * An event about the bridge itself rather than a channel (`chatbridge.webhook.status`): source
 * `/chatbridge/<kind>/<id>`, partitionkey `<kind>:<id>`, no `channelid`/`provider` extension.
 */
export function createBridgeEvent<T extends BridgeEventType>(type: T, kind: string, id: string, data: EventDataMap[T], at: Date = new Date()): PipelineEvent {
  const event: CanonicalEvent<T> = {
    specversion: '1.0',
    id: uniqueEventId(),
    source: `/chatbridge/${kind}/${id}`,
    type,
    time: at.toISOString(),
    datacontenttype: 'application/json',
    dataschema: DATA_SCHEMAS[type],
    partitionkey: `${kind}:${id}`,
    data,
  };
  return { event: event as AnyCanonicalEvent, stableId: false, receivedAt: performance.now() };
}

/** The structured-mode JSON form of an event (webhook body, stdout line, socket.io stream). */
export function toStructured(event: AnyCanonicalEvent): string {
  return JSON.stringify(event);
}
