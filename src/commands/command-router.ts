import type { ChannelRuntime } from '../channels/channel-runtime';
import { untilConnected } from '../channels/channel-entry';
import { CommandError } from '../common/errors';
import type { CommandOutcome, ProviderDefinition, UpstreamCommand } from '../connectors/connector.interface';
import { commandFields } from '../connectors/provider-commands';

/** What the command gateway needs to know of a channel's provider. */
export type CommandTarget = Pick<ProviderDefinition, 'name' | 'commands' | 'conversationKey' | 'isEcho' | 'spreadsConversations'>;

/** Where the command gateway's commands meet the channels: which provider takes them, and the connector that sends them. */
export class CommandRouter {
  constructor(private readonly channels: ChannelRuntime) {}

  /** What the command gateway needs of a channel: provider, command types, echo matcher; undefined when unknown. */
  commandTarget(channelId: string): CommandTarget | undefined {
    return this.channels.entry(channelId)?.definition;
  }

  /** True while the channel's connection is `connected`. */
  connected(channelId: string): boolean {
    return this.channels.entry(channelId)?.link.state === 'connected';
  }

  /** Resolves true at the channel's next `connected` (at once when connected), false after `timeoutMs`. */
  whenConnected(channelId: string, timeoutMs: number): Promise<boolean> {
    const entry = this.channels.entry(channelId);
    return entry ? untilConnected(entry, timeoutMs) : Promise.resolve(false);
  }

  /**
   * Delivers a command through the channel's connector. Throws CommandError: `unknown_channel`,
   * `unsupported_command` (naming the provider), or whatever the connector reports.
   */
  async execute(channelId: string, command: UpstreamCommand): Promise<CommandOutcome> {
    const entry = this.channels.entry(channelId);
    if (!entry) throw new CommandError('unknown_channel', `no channel with id "${channelId}"`, { retriable: false, sent: false });
    const connector = entry.link.supervisor?.connection;
    // A command accepted under an earlier configuration may name a type this channel's provider does not take.
    if (!commandFields(entry.definition.commands, command.type) || !connector?.execute) {
      throw new CommandError('unsupported_command', `provider ${entry.channel.provider} does not support command type "${command.type}"`, { retriable: false, sent: false });
    }
    return connector.execute(command);
  }
}
