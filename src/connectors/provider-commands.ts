import type { ProviderDefinition, UpstreamCommand } from './connector.interface';
import { str } from './mapper';

/**
 * A class-validator class of the fields one command type takes beyond the canonical ones (docs/commands.md). The
 * command door validates a command's other fields against it, whitelisted: a field it does not declare is refused.
 */
export type CommandFieldsClass = new () => object;

/** A provider's commands: every type its connector executes, with the class of that type's own fields. */
export type ProviderCommands = Readonly<Record<string, CommandFieldsClass>>;

/** The fields class of a command type that takes nothing beyond the canonical fields. */
export class NoCommandFields {}

/**
 * The fields class of `type` for a provider, or undefined when the provider takes no command of that type. THE test
 * of whether a provider takes a command type: the door refuses it with it, and the channel runtime checks a command
 * accepted under an earlier configuration with it before handing it to the connector.
 */
export function commandFields(commands: ProviderCommands, type: string): CommandFieldsClass | undefined {
  return Object.prototype.hasOwnProperty.call(commands, type) ? commands[type] : undefined;
}

/** The command types a provider takes, for messages. */
export function commandTypesOf(commands: ProviderCommands): string[] {
  return Object.keys(commands);
}

/**
 * The conversation a command belongs to, as its provider names it (`ProviderDefinition.conversationKey`), else its
 * canonical `conversationId`: the key that keeps the commands of one conversation in order.
 */
export function commandConversation(provider: Pick<ProviderDefinition, 'conversationKey'> | undefined, command: UpstreamCommand): string | undefined {
  return provider?.conversationKey ? provider.conversationKey(command) : str(command.conversationId);
}
