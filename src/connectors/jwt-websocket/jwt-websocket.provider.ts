import type { ProviderDefinition } from '../connector.interface';
import { JWT_WEBSOCKET_COMMANDS, namedChannel } from './jwt-websocket.commands';
import { JwtWebSocketConnector } from './jwt-websocket.connector';
import { mapJwtWebSocket } from './jwt-websocket.mapper';
import { JwtWebSocketOptions } from './jwt-websocket.options';

/** Zyeta-style JWT WebSocket service: raw WS, `?token=<JWT>`, channel subscriptions; no webhook mode upstream. */
export const jwtWebSocketProvider: ProviderDefinition<JwtWebSocketOptions> = {
  name: 'jwt-websocket',
  optionsClass: JwtWebSocketOptions,
  createConnector: (ctx) => new JwtWebSocketConnector(ctx),
  map: mapJwtWebSocket,
  supportsWebhookMode: false,
  commands: JWT_WEBSOCKET_COMMANDS,
  conversationKey: namedChannel,
  // No isEcho: the service has no echo of a client's own frames, so an ambiguous command ends `ambiguous_no_echo`.
};
