import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, IsDefined, IsOptional, IsString, Matches, MaxLength, MinLength, validateSync, type ValidatorOptions } from 'class-validator';
import { describeError } from '../common/errors';
import { measureJson } from '../common/json-limits';
import { formatErrors } from '../config/config.loader';
import type { ProviderDefinition, UpstreamCommand } from '../connectors/connector.interface';
import { commandFields, commandTypesOf, type CommandFieldsClass } from '../connectors/provider-commands';
import { providerDefinition, supportedProviders } from '../connectors/registry';
import { CommandRequestError } from './command.types';

const ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const TYPE = /^[a-z][a-z0-9._-]{0,63}$/;

/**
 * The canonical fields of a command (docs/commands.md), the same for every provider. The rest of a command is the
 * provider's: its `<provider>.commands.ts` declares each command type with the class of that type's own fields.
 */
export class CommandDto {
  /** The client's idempotency key. */
  @IsDefined() @IsString() @Matches(ID, { message: 'must be 1-128 characters of letters, digits, . _ : @ -, starting with a letter or digit' }) commandId!: string;
  @IsDefined() @IsString() @Matches(TYPE, { message: 'must be a command type such as message.send' }) type!: string;
  /** Required in the body on socket.io; on HTTP the path names it (a body value must then agree). */
  @IsOptional() @IsString() @Matches(/^[a-z0-9-]{1,64}$/, { message: 'must match [a-z0-9-]{1,64}' }) channelId?: string;
  @IsOptional() @IsString() @MinLength(1) @MaxLength(512) conversationId?: string;
  /** The message text (`message.send`, Smartsupp's typing preview), whatever the provider. */
  @IsOptional() @IsString() @MaxLength(65_536) text?: string;
}

/** The fields a class-validator class declares. */
function fieldsOf(cls: CommandFieldsClass): string[] {
  return getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false).map((m) => m.propertyName);
}

/** The names of the canonical fields; every other field of a command is held to the provider's class. */
const CANONICAL_FIELDS: ReadonlySet<string> = new Set(fieldsOf(CommandDto));

let anyProviderFields: ReadonlySet<string> | undefined;

/** The fields some command type of some provider in the registry takes (read once, on the first invalid command). */
function fieldsOfAnyProvider(): ReadonlySet<string> {
  anyProviderFields ??= new Set(supportedProviders().flatMap((name) => Object.values(providerDefinition(name)?.commands ?? {}).flatMap(fieldsOf)));
  return anyProviderFields;
}

/** A command body whose canonical fields passed CommandDto; the result keeps only the fields given. */
export interface ParsedCommand {
  channelId?: string;
  command: UpstreamCommand;
}

/** What a command body is held to before validation: class-transformer and class-validator recurse, so depth comes first. */
export interface CommandLimits {
  /** `api.maxBodyBytes`: the JSON size of the command (on HTTP the body parser holds the raw body to it first). */
  maxBytes: number;
  /** `commands.maxDepth`: nesting of objects and arrays, the body itself being level 1. */
  maxDepth: number;
}

/**
 * Checks a command body against its limits without recursion: over `maxBytes` is a 413 `command_too_large`, nested
 * deeper than `maxDepth` a 400 `invalid_command` naming each field that is too deep.
 */
export function checkCommandLimits(body: unknown, limits: CommandLimits): void {
  const measured = measureJson(body, limits);
  if (measured.exceeded === 'bytes') {
    throw new CommandRequestError('command_too_large', `command larger than the API limit of ${limits.maxBytes} bytes (api.maxBodyBytes)`, undefined, 'bytes');
  }
  if (measured.exceeded !== 'depth') return;
  const problem = `nested deeper than ${limits.maxDepth} levels (commands.maxDepth; the command itself is level 1)`;
  const fields = typeof body === 'object' && body !== null && !Array.isArray(body)
    ? Object.entries(body).filter(([, v]) => measureJson(v, { maxDepth: limits.maxDepth - 1, maxBytes: Infinity }).exceeded === 'depth').map(([k]) => k)
    : [];
  const details = fields.length ? fields.map((f) => `${f}: ${problem}`) : [`(body): ${problem}`];
  throw new CommandRequestError('invalid_command', 'invalid command', details, 'depth');
}

/**
 * Validates a command body's limits and canonical fields (the first half of validation: the channel, and so the
 * provider, is not known before); any problem is a CommandRequestError: `command_too_large`, or `invalid_command`
 * listing every problem in `details`. Never throws anything else, whatever the body. `checkProviderCommand` holds the
 * rest of the command to its channel's provider.
 */
export function parseCommand(body: unknown, limits: CommandLimits): ParsedCommand {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CommandRequestError('invalid_command', 'a command must be a JSON object such as {"commandId": "…", "type": "message.send", "conversationId": "…", "text": "Hi"}', ['(body): must be a JSON object']);
  }
  checkCommandLimits(body, limits);
  // Fields beyond the canonical ones are the provider's, checked once the channel is known. When the canonical ones
  // are invalid that check cannot come, so the fields no provider takes at all are listed with them.
  const details = problemsOf(CommandDto, body, {});
  if (details.length) {
    const unknown = Object.keys(body).filter((field) => !CANONICAL_FIELDS.has(field) && !fieldsOfAnyProvider().has(field));
    throw new CommandRequestError('invalid_command', 'invalid command', [...details, ...unknown.map((field) => `${field}: unknown key`)]);
  }
  const { channelId, ...command } = body as Record<string, unknown>;
  return { channelId: channelId as string | undefined, command: command as UpstreamCommand };
}

/**
 * The second half of validation, once the channel is known: a command type its provider does not execute is a 422
 * `unsupported_command` naming the provider and the types it takes (THE refusal of a type at the doors); the fields
 * beyond the canonical ones are held to that type's class, whitelisted, a problem being a 400 `invalid_command`
 * listing every one (an undeclared field is an `unknown key`, so a typo is never silently dropped on the way upstream).
 */
export function checkProviderCommand(provider: Pick<ProviderDefinition, 'name' | 'commands'>, channelId: string, command: UpstreamCommand): void {
  const fields = commandFields(provider.commands, command.type);
  if (!fields) {
    const types = commandTypesOf(provider.commands);
    const supported = types.length ? `it supports ${types.join(', ')}` : 'it takes no commands';
    throw new CommandRequestError('unsupported_command', `provider ${provider.name} (channel ${channelId}) does not support command type "${command.type}"; ${supported}`);
  }
  const own = Object.fromEntries(Object.entries(command).filter(([field]) => !CANONICAL_FIELDS.has(field)));
  // An empty class has no metadata, which class-validator would refuse as an unknown value: its fields are just none.
  const details = problemsOf(fields, own, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: false });
  if (details.length) throw new CommandRequestError('invalid_command', 'invalid command', details);
}

/** Every problem of `value` as a `cls`; a validator that throws (past any sane limit) is a 400 of its own. */
function problemsOf(cls: CommandFieldsClass, value: object, options: ValidatorOptions): string[] {
  try {
    return formatErrors(validateSync(plainToInstance(cls, value), options));
  } catch (err) {
    // Not expected within the limits; still the body's fault, so a 400 rather than a 500 or a retried Kafka record.
    throw new CommandRequestError('invalid_command', 'invalid command', [`(body): cannot be validated: ${describeError(err)}`]);
  }
}
