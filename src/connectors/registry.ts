// Before any options class is decorated: class-transformer needs their design-time types.
import 'reflect-metadata';
import type { ProviderName } from '../envelope/event-types';
import type { ProviderDefinition } from './connector.interface';
import { zapthinkerProvider } from './zapthinker/zapthinker.provider';
import { jwtWebSocketProvider } from './jwt-websocket/jwt-websocket.provider';
import { watchersProvider } from './watchers/watchers.provider';
import { captivateProvider } from './captivate/captivate.provider';
import { smartsuppProvider } from './smartsupp/smartsupp.provider';

/**
 * THE list of providers (docs/adding-a-provider.md): adding one is one line here and its folder; nothing is discovered
 * magically. The provider names (ProviderName), the config's `provider` values and the command types all come from here.
 */
export const PROVIDER_REGISTRY = {
  zapthinker: zapthinkerProvider as ProviderDefinition,
  'jwt-websocket': jwtWebSocketProvider as ProviderDefinition,
  watchers: watchersProvider as ProviderDefinition,
  captivate: captivateProvider as ProviderDefinition,
  smartsupp: smartsuppProvider as ProviderDefinition,
};

/** The providers this build can run. */
export function supportedProviders(): ProviderName[] {
  return Object.keys(PROVIDER_REGISTRY) as ProviderName[];
}

/** The definition of a provider, or undefined when this build does not include it. */
export function providerDefinition(name: string): ProviderDefinition | undefined {
  return (PROVIDER_REGISTRY as Record<string, ProviderDefinition | undefined>)[name];
}
