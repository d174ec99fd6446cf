import type { ChannelConfig } from '../config/config.loader';
import type { ChannelMode, ProviderDefinition } from '../connectors/connector.interface';

/** Key of the channel's mode in its durable state (`<stateDir>/<channelId>.json`). */
export const MODE_STATE_KEY = 'mode';

/** Why a mode switch or an inbound post was refused; the controllers turn `code` into an HTTP status. */
export class ChannelRequestError extends Error {
  constructor(
    /**
     * `unknown_channel` (404), `no_webhook_api` (422 for a switch, 409 for a post), `no_inbound_auth` (409),
     * `mode_not_persisted` (503), `socket_not_held` (409 for a reconnect).
     */
    readonly code: 'unknown_channel' | 'no_webhook_api' | 'no_inbound_auth' | 'mode_not_persisted' | 'socket_not_held',
    message: string,
  ) {
    super(message);
    this.name = 'ChannelRequestError';
  }
}

/** What `PUT /v1/channels/:id/mode` answers. */
export interface ModeSwitchResult {
  id: string;
  mode: ChannelMode;
  previousMode: ChannelMode;
  /** False when the channel already was in that mode (a no-op). */
  changed: boolean;
  /**
   * The upstream socket: `closing_after_first_inbound` (socket → webhook: it closes once the upstream's first post
   * was accepted, or after `modeSwitch.overlapMs`), `connected` or `connecting` (webhook → socket), `closed`;
   * `another_replica` in a cluster when another replica holds the channel: it applies the persisted switch.
   */
  socket: 'closing_after_first_inbound' | 'connected' | 'connecting' | 'closed' | 'another_replica';
  /** The channel's connection state now. */
  state: string;
  /** socket → webhook: the longest the socket stays open waiting for the first inbound post (ms). */
  overlapMs?: number;
}

/** True when the provider's upstream can post events to the bridge (and the bridge can read them). */
export function takesWebhooks(def: ProviderDefinition): boolean {
  return def.supportsWebhookMode && typeof def.inbound === 'function';
}

/**
 * True when the channel can take webhooks: its provider has a webhook API and the channel an `inbound` auth block
 * (the inbound receiver then takes its posts; the API shows it as `acceptsInbound`).
 */
export function takesInboundPosts(entry: { channel: ChannelConfig; definition: ProviderDefinition }): boolean {
  return takesWebhooks(entry.definition) && Boolean(entry.channel.inbound);
}

/**
 * The mode a channel starts in: a mode persisted by a runtime switch wins over the config's, unless the channel
 * can no longer take webhooks (provider or `inbound` block changed since). `source` names where it was persisted
 * (`stateDir`, `topic <name>`). Returns the mode and a note to log.
 */
export function startMode(configured: ChannelMode, persisted: unknown, canWebhook: boolean, source = 'stateDir'): { mode: ChannelMode; note?: { level: 'info' | 'warn'; msg: string } } {
  if (persisted !== 'socket' && persisted !== 'webhook') return { mode: configured };
  if (persisted === configured) return { mode: configured };
  if (persisted === 'webhook' && !canWebhook) {
    return { mode: configured, note: { level: 'warn', msg: 'a switch to webhook mode was persisted, but the channel has no inbound auth (or its provider no webhook API) now; starting in socket mode' } };
  }
  return { mode: persisted, note: { level: 'info', msg: `mode ${persisted} restored from ${source} (set by PUT /v1/channels/:id/mode); it overrides the config's mode ${configured}` } };
}
