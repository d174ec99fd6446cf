import type { ProviderDefinition } from '../connector.interface';
import { SMARTSUPP_COMMANDS } from './smartsupp.commands';
import { SmartsuppConnector } from './smartsupp.connector';
import { isSmartsuppEcho } from './smartsupp.echo';
import { mapSmartsupp } from './smartsupp.mapper';
import { SmartsuppOptions } from './smartsupp.options';

/** Smartsupp visitor SDK: socket.io 2.x, one socket per visitor (spread across replicas in a cluster); no webhook API upstream (socket only). */
export const smartsuppProvider: ProviderDefinition<SmartsuppOptions> = {
  name: 'smartsupp',
  optionsClass: SmartsuppOptions,
  createConnector: (ctx) => new SmartsuppConnector(ctx),
  map: mapSmartsupp,
  supportsWebhookMode: false,
  commands: SMARTSUPP_COMMANDS,
  // One socket per visitor: in a cluster the visitors of a channel are spread across the replicas.
  spreadsConversations: true,
  isEcho: isSmartsuppEcho,
};
