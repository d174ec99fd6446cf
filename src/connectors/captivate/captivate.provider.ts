import type { ProviderDefinition } from '../connector.interface';
import { CAPTIVATE_COMMANDS } from './captivate.commands';
import { CaptivateConnector } from './captivate.connector';
import { parseCaptivateInbound } from './captivate.inbound';
import { mapCaptivate } from './captivate.mapper';
import { CaptivateOptions } from './captivate.options';

/** Captivate Hub custom channel: raw WebSocket (`?apikey=`), sends over the socket or HTTP; the channel can toggle to webhooks upstream. */
export const captivateProvider: ProviderDefinition<CaptivateOptions> = {
  name: 'captivate',
  optionsClass: CaptivateOptions,
  createConnector: (ctx) => new CaptivateConnector(ctx),
  map: mapCaptivate,
  supportsWebhookMode: true,
  inbound: parseCaptivateInbound,
  commands: CAPTIVATE_COMMANDS,
  // No isEcho: Captivate sends no echo of the user's own `user_message`, so an ambiguous send ends `ambiguous_no_echo`.
};
