import type { ProviderDefinition } from '../connector.interface';
import { commandRoom, WATCHERS_COMMANDS } from './watchers.commands';
import { WatchersConnector } from './watchers.connector';
import { isWatchersEcho } from './watchers.echo';
import { parseWatchersInbound } from './watchers.inbound';
import { mapWatchers } from './watchers.mapper';
import { WatchersOptions } from './watchers.options';

/** Watchers.io bot API: socket.io v4 with `auth: {bearer}`, `external/listen` per room, `external/send` or REST to post. */
export const watchersProvider: ProviderDefinition<WatchersOptions> = {
  name: 'watchers',
  optionsClass: WatchersOptions,
  createConnector: (ctx) => new WatchersConnector(ctx),
  // The bot's own messages come back to its room listeners: its user id tells them apart.
  map: (frame, ctx) => mapWatchers(frame, ctx, (ctx.options as WatchersOptions | undefined)?.userId),
  // The Bot REST API posts messages (and, per its docs, offers webhooks/long-polling), so commands have an HTTP path.
  supportsWebhookMode: true,
  inbound: parseWatchersInbound,
  commands: WATCHERS_COMMANDS,
  conversationKey: commandRoom,
  isEcho: isWatchersEcho,
};
