import type { Logger } from 'pino';
import type { ConnectorError } from '../common/errors';
import type { ProviderName } from '../envelope/event-types';
import type { Mapper } from './mapper';

/** One frame as received from an upstream: its event name and its payload, untouched. */
export interface UpstreamFrame {
  event: string;
  payload: unknown;
}

/** What a connector reports to its supervisor. */
export interface ConnectorHooks {
  /** A frame arrived on the live connection. */
  frame(frame: UpstreamFrame): void;
  /** The live connection ended without `close()` being called. */
  lost(error: ConnectorError): void;
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
}

/** Everything a provider needs to build its connector. */
export interface ConnectorContext<O> {
  channelId: string;
  options: O;
  hooks: ConnectorHooks;
  logger: Logger;
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
  /** Whether the upstream can post events to us instead (SPEC §7). */
  supportsWebhookMode: boolean;
}
