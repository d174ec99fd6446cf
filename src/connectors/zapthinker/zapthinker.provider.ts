import type { ProviderDefinition } from '../connector.interface';
import { ZAPTHINKER_COMMANDS } from './zapthinker.commands';
import { ZapThinkerConnector } from './zapthinker.connector';
import { isZapThinkerEcho } from './zapthinker.echo';
import { parseZapThinkerInbound } from './zapthinker.inbound';
import { mapZapThinker } from './zapthinker.mapper';
import { ZapThinkerOptions } from './zapthinker.options';

/** ZapThinker (Evolution API): socket.io v4, one namespace per instance; webhook mode upstream exists. */
export const zapthinkerProvider: ProviderDefinition<ZapThinkerOptions> = {
  name: 'zapthinker',
  optionsClass: ZapThinkerOptions,
  createConnector: (ctx) => new ZapThinkerConnector(ctx),
  map: mapZapThinker,
  supportsWebhookMode: true,
  inbound: parseZapThinkerInbound,
  commands: ZAPTHINKER_COMMANDS,
  isEcho: isZapThinkerEcho,
};
