import { plainToInstance } from 'class-transformer';
import {
  IsBoolean, IsDefined, IsIn, IsInt, IsObject, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, validateSync,
} from 'class-validator';
import { describeError } from '../common/errors';
import { measureJson } from '../common/json-limits';
import { formatErrors } from '../config/config.loader';
import type { UpstreamCommand } from '../connectors/connector.interface';
import { CommandRequestError } from './command.types';

const ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const TYPE = /^[a-z][a-z0-9._-]{0,63}$/;

/**
 * A command (docs/commands.md): the canonical fields plus every provider field a connector reads. Unknown fields are a 400
 * (whitelist), so a typo is never silently dropped on the way upstream.
 */
export class CommandDto {
  /** The client's idempotency key. */
  @IsDefined() @IsString() @Matches(ID, { message: 'must be 1-128 characters of letters, digits, . _ : @ -, starting with a letter or digit' }) commandId!: string;
  @IsDefined() @IsString() @Matches(TYPE, { message: 'must be a command type such as message.send' }) type!: string;
  /** Required in the body on socket.io; on HTTP the path names it (a body value must then agree). */
  @IsOptional() @IsString() @Matches(/^[a-z0-9-]{1,64}$/, { message: 'must match [a-z0-9-]{1,64}' }) channelId?: string;
  @IsOptional() @IsString() @MinLength(1) @MaxLength(512) conversationId?: string;
  @IsOptional() @IsString() @MaxLength(65_536) text?: string;

  // ZapThinker (sendText)
  @IsOptional() @IsInt() @Min(0) @Max(600_000) delay?: number;
  @IsOptional() @IsBoolean() linkPreview?: boolean;
  // Watchers, jwt-websocket (room commands)
  @IsOptional() @IsString() @MinLength(1) @MaxLength(512) roomId?: string;
  @IsOptional() @IsString() @MinLength(1) @MaxLength(512) channel?: string;
  // Captivate
  @IsOptional() @IsString() @MaxLength(512) userId?: string;
  @IsOptional() @IsObject() userBasicInfo?: Record<string, unknown>;
  @IsOptional() @IsObject() userData?: Record<string, unknown>;
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
  @IsOptional() @IsString() @IsIn(['default', 'bot', 'live', 'bot_live']) target?: string;
  @IsOptional() @IsString() @MaxLength(256) actionId?: string;
  @IsOptional() @IsObject() data?: Record<string, unknown>;
  // Smartsupp (visitor)
  @IsOptional() @IsBoolean() typing?: boolean;
  @IsOptional() @IsIn(['contact', 'bot']) senderType?: string;
  @IsOptional() @IsBoolean() isOffline?: boolean;
  @IsOptional() @IsBoolean() preventOpenChat?: boolean;
  @IsOptional() @IsString() @MaxLength(1024) uploadToken?: string;
  @IsOptional() @IsString() @MaxLength(256) name?: string;
  @IsOptional() @IsString() @MaxLength(256) email?: string;
  @IsOptional() @IsString() @MaxLength(64) phone?: string;
  @IsOptional() @IsString() @MaxLength(16) lang?: string;
  @IsOptional() @IsString() @MaxLength(256) group?: string;
  @IsOptional() @IsInt() @Min(0) visits?: number;
  @IsOptional() @IsObject() variables?: Record<string, unknown>;
  @IsOptional() @IsObject() properties?: Record<string, unknown>;
}

/** A command body checked against CommandDto; the result keeps only the fields given. */
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
 * Validates a command body within `limits`; any problem is a CommandRequestError: `command_too_large`, or
 * `invalid_command` listing every problem in `details`. Never throws anything else, whatever the body.
 */
export function parseCommand(body: unknown, limits: CommandLimits): ParsedCommand {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CommandRequestError('invalid_command', 'a command must be a JSON object such as {"commandId": "…", "type": "message.send", "conversationId": "…", "text": "Hi"}', ['(body): must be a JSON object']);
  }
  checkCommandLimits(body, limits);
  let details: string[];
  try {
    details = formatErrors(validateSync(plainToInstance(CommandDto, body), { whitelist: true, forbidNonWhitelisted: true }));
  } catch (err) {
    // Not expected within the limits; still the body's fault, so a 400 rather than a 500 or a retried Kafka record.
    throw new CommandRequestError('invalid_command', 'invalid command', [`(body): cannot be validated: ${describeError(err)}`]);
  }
  if (details.length) throw new CommandRequestError('invalid_command', 'invalid command', details);
  const { channelId, ...command } = body as Record<string, unknown>;
  return { channelId: channelId as string | undefined, command: command as UpstreamCommand };
}
