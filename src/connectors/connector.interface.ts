import type { Logger } from 'pino';
import type { ConnectorError } from '../common/errors';
import type { AnyCanonicalEvent } from '../envelope/envelope';
import type { ProviderName } from '../envelope/event-types';
import type { Mapper } from './mapper';
import type { ProviderCommands } from './provider-commands';
import type { SupervisorPolicy } from './supervisor';

/** One frame as received from an upstream: its event name and its payload, untouched. */
export interface UpstreamFrame {
  event: string;
  payload: unknown;
}

/** A channel's mode (docs/modes.md): the bridge holds the upstream socket, or the upstream posts to `/v1/inbound/<id>`. */
export type ChannelMode = 'socket' | 'webhook';

/** What an inbound parser made of one webhook body: the frames, or why it could not. */
export type InboundParse = { ok: true; frames: UpstreamFrame[] } | { ok: false; error: string };

/** Request details an inbound parser may use besides the body. */
export interface InboundContext {
  /** The path segment after `/v1/inbound/<channelId>/`, e.g. Evolution's `byEvents` suffix `messages-upsert`. */
  suffix?: string;
}

/** What a connector reports to its supervisor. */
export interface ConnectorHooks {
  /** A frame arrived on the live connection. */
  frame(frame: UpstreamFrame): void;
  /** The live connection ended without `close()` being called. */
  lost(error: ConnectorError): void;
  /**
   * Wraps a socket listener as a fault boundary: whatever it throws is reported with its arguments (dead-lettered,
   * counted) instead of reaching the socket library and the event loop. Every listener that handles upstream input
   * is registered through it. `where` names the listener in reports (e.g. the upstream event).
   */
  guard<A extends unknown[]>(where: string, fn: (...args: A) => void): (...args: A) => void;
  /** Reports input whose handling threw, for connectors that catch it themselves (nested supervisors). */
  fault(where: string, err: unknown, input: unknown[]): void;
  /**
   * One subscription (a room, an upstream channel) was refused or not confirmed: the connection stays up and the
   * connector retries that subscription alone, in `retryInMs` (undefined: not retried before the next connect).
   */
  subscriptionFailed?(subscription: string, error: ConnectorError, retryInMs: number | undefined): void;
}

/**
 * A connection to one upstream for one channel. Reconnect, backoff and resubscribe are NOT here:
 * the supervisor owns them and calls these methods.
 */
export interface Connector {
  /** Opens the connection; resolves once the upstream confirms it, rejects with a ConnectorError. */
  connect(): Promise<void>;
  /** (Re)sends subscriptions; called after every successful connect. */
  subscribe(): Promise<void>;
  /** Closes the connection; no `lost` follows. Safe to call in any state. */
  close(): Promise<void>;
  /**
   * Delivers one command upstream in the provider's exact wire format. Resolves when the upstream
   * confirmed it (ack, HTTP 2xx); rejects with a CommandError (`sent` says whether it may have acted).
   */
  execute?(command: UpstreamCommand): Promise<CommandOutcome>;
  /**
   * Providers that spread their conversations (`spreadsConversations`), in a cluster: the replica's share changed
   * (a rebalance). Re-reads `placement.owns`; conversations it no longer owns keep their sockets for the overlap.
   */
  placementChanged?(): void;
  /** Conversations whose upstream sockets this connector holds now (providers with one socket per conversation). */
  heldConversations?(): number;
}

/** A validated outbound command (docs/api.md), as the connector receives it. */
export interface UpstreamCommand {
  commandId: string;
  type: string;
  conversationId?: string;
  text?: string;
  /** Provider-specific fields (e.g. `roomId`, `metadata`, `typing`). */
  [field: string]: unknown;
}

/** What the upstream confirmed for a command. */
export interface CommandOutcome {
  upstreamMessageId?: string;
  /** The conversation the command created or used (e.g. `conversation.start`). */
  conversationId?: string;
  /** The upstream's reply, for the command result. */
  result?: unknown;
}

/** Small durable key/value store of one channel (e.g. Smartsupp visitor ids); `FileChannelStore` keeps it in the channel's state file. */
export interface ChannelStore {
  /** The value stored under `key`, if any. */
  get<T>(key: string): T | undefined;
  /** Stores `value` under `key` durably before returning (`undefined` removes it). */
  set(key: string, value: unknown): void;
  /**
   * Stores, as `set` does, the value whose JSON text is `json` (the text of one value, which its maker keeps in
   * serialized parts because it is large and rewritten often); `get` answers it parsed.
   */
  setJson(key: string, json: string): void;
}

/**
 * The shared registry of one channel's spread conversations (cluster mode): one JSON value per conversation, in the
 * compacted state topic, read by every replica. This replica's own saves come back through `watch` too.
 */
export interface ConversationRegistry {
  /** Resolves true once the records that existed at start were read, false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  /** Every known conversation's latest value. */
  all(): Map<string, unknown>;
  /** Stores a conversation's value (null removes it); written in the background, retried until it lands. */
  save(conversationId: string, value: unknown): void;
  /** Calls `listener` for every record read from now on (value null: removed); returns the unsubscribe. */
  watch(listener: (conversationId: string, value: unknown) => void): () => void;
}

/** Where a channel's conversations run when several replicas share it (`cluster.enabled`, `spreadsConversations`). */
export interface ConversationPlacement {
  /** True when this replica runs the conversation (its ownership key hashes to a partition this replica holds). */
  owns(conversationId: string): boolean;
  registry: ConversationRegistry;
  /** How long a conversation that went to another replica keeps its socket here (make before break). */
  handoverOverlapMs: number;
}

/** Everything a provider needs to build its connector. */
export interface ConnectorContext<O> {
  channelId: string;
  options: O;
  hooks: ConnectorHooks;
  logger: Logger;
  /** The channel's current mode; commands use the HTTP path in `webhook` mode where the provider has one. */
  mode(): ChannelMode;
  /** The channel's durable key/value store. */
  store: ChannelStore;
  /** Reconnect policy, for connectors that supervise sub-connections (Smartsupp visitors) or retry subscriptions. */
  policy: SupervisorPolicy;
  /**
   * Largest frame a socket client may buffer (`maxPayloadFor(limits.maxFrameBytes)`): a larger one closes the
   * connection (WebSocket 1009) instead of being read into memory; frames up to it reach the frame limits, which
   * dead-letter them whole. Absent: the client library's default.
   */
  maxPayloadBytes?: number;
  /** Cluster mode, for providers that spread their conversations: which ones this replica runs, and the shared registry. */
  placement?: ConversationPlacement;
  /** Cluster mode, every channel: its shared conversation registry (the same as `placement.registry`), for per-conversation state the next holder needs. */
  registry?: ConversationRegistry;
}

/** A provider plug-in: its options class, its connector factory and its pure mapper. */
export interface ProviderDefinition<O extends object = object> {
  name: ProviderName;
  /** class-validator class for the channel's `<provider>:` block. */
  optionsClass: new () => O;
  /** Builds the connector of one channel. */
  createConnector(ctx: ConnectorContext<O>): Connector;
  /** Upstream frame → canonical events (pure). */
  map: Mapper;
  /** Whether the upstream can post events to us instead (docs/modes.md); such providers also define `inbound`. */
  supportsWebhookMode: boolean;
  /** Webhook body → the same frames the socket delivers, so the mapper yields the same events and ids (pure). */
  inbound?(body: unknown, ctx: InboundContext): InboundParse;
  /**
   * The command types `execute` accepts, each with the class of its own fields (`<provider>.commands.ts`); the door
   * refuses any other type naming the provider, and validates the fields against the type's class.
   */
  commands: ProviderCommands;
  /**
   * The conversation a command belongs to, as the provider names it (e.g. Watchers' `roomId` when `conversationId` is
   * absent): commands of one conversation run in order. Default: the command's `conversationId`. Pure.
   */
  conversationKey?(command: UpstreamCommand): string | undefined;
  /**
   * One upstream socket per conversation (Smartsupp visitors): in a cluster every replica runs the channel and holds
   * the sockets of the conversations whose key (`<channelId>/<conversationId>`) hashes to its partitions, and the
   * commands of a conversation go to that replica. The channel's own holder still starts new conversations.
   */
  spreadsConversations?: boolean;
  /**
   * True when `event` (published from this channel) is the upstream's echo of `command` (e.g. Evolution's
   * `send.message` for a `sendText`). Resolves an ambiguous send (timeout after the request left) as `sent`
   * without sending again. Absent, or false for a type: such an ambiguity ends `failed` (`ambiguous_no_echo`). Pure.
   */
  isEcho?(command: UpstreamCommand, event: AnyCanonicalEvent): boolean;
}

/**
 * The socket clients' payload cap for a frame limit: four times it, so a frame over the limit is still read and
 * dead-lettered whole, while one that would cost far more memory than any frame allowed is refused by the client.
 */
export function maxPayloadFor(maxFrameBytes: number): number {
  return 4 * maxFrameBytes;
}
