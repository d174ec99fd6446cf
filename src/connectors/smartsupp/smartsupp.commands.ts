import { IsBoolean, IsIn, IsInt, IsObject, IsOptional, IsString, MaxLength, Min } from 'class-validator';
import { CommandError } from '../../common/errors';
import type { UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { NoCommandFields, type ProviderCommands } from '../provider-commands';
import type { SmartsuppOptions } from './smartsupp.options';

/**
 * The visitor SDK's wire format (docs/providers.md#smartsupp, smartsupp-websocket@1.2.2 lib/visitor.js). Pure builders
 * of socket.io emits; the connector sends them.
 */

/** `conversation.start`: the visitor's identity, sent with `visitor.connect` (IDENTITY_FIELDS). */
export class SmartsuppStartFields {
  @IsOptional() @IsString() @MaxLength(256) name?: string;
  @IsOptional() @IsString() @MaxLength(256) email?: string;
  @IsOptional() @IsString() @MaxLength(64) phone?: string;
  @IsOptional() @IsString() @MaxLength(16) lang?: string;
  @IsOptional() @IsString() @MaxLength(256) group?: string;
  @IsOptional() @IsInt() @Min(0) visits?: number;
  @IsOptional() @IsObject() variables?: Record<string, unknown>;
  @IsOptional() @IsObject() properties?: Record<string, unknown>;
}

/** `message.send`: the SDK's `chatMessage` options. */
export class SmartsuppSendFields {
  @IsOptional() @IsIn(['contact', 'bot']) senderType?: string;
  @IsOptional() @IsBoolean() isOffline?: boolean;
  @IsOptional() @IsBoolean() preventOpenChat?: boolean;
}

/** `typing`: on or off (default on). */
export class SmartsuppTypingFields {
  @IsOptional() @IsBoolean() typing?: boolean;
}

/** `upload.finish`: the token `upload.init` answered. */
export class SmartsuppUploadFinishFields {
  @IsOptional() @IsString() @MaxLength(1024) uploadToken?: string;
}

/** The command types this provider executes, with their fields. */
export const SMARTSUPP_COMMANDS = {
  'conversation.start': SmartsuppStartFields,
  'message.send': SmartsuppSendFields,
  typing: SmartsuppTypingFields,
  read: NoCommandFields,
  close: NoCommandFields,
  'upload.init': NoCommandFields,
  'upload.finish': SmartsuppUploadFinishFields,
} satisfies ProviderCommands;

/** One socket.io emit: event name, data, and whether the server acknowledges it. */
export interface Emit {
  event: string;
  data: unknown;
  ack: boolean;
}

/** Identity fields a `conversation.start` command may carry into `visitor.connect`. */
export const IDENTITY_FIELDS = ['name', 'email', 'phone', 'lang', 'group', 'visits', 'variables', 'properties'] as const;

/** Identity given at start, kept with the visitor and sent again on every connect (as the SDK does). */
export type VisitorIdentity = Partial<Record<(typeof IDENTITY_FIELDS)[number], unknown>>;

/**
 * `visitor.connect` data: `{pageUrl, pageTitle, referer, domain, bundleVersion, id, key, …identity}`.
 * `id` null asks the server for a new visitor.
 */
export function visitorConnectData(options: SmartsuppOptions, id: string | null, identity?: VisitorIdentity): Record<string, unknown> {
  return {
    pageUrl: options.pageUrl ?? null,
    pageTitle: options.pageTitle ?? null,
    referer: options.referer ?? null,
    domain: options.domain ?? null,
    bundleVersion: options.bundleVersion,
    ...identity,
    id,
    key: options.key,
  };
}

/** Identity fields of a `conversation.start` command (unknown fields are ignored, not forwarded). */
export function identityOf(command: UpstreamCommand): VisitorIdentity | undefined {
  const out: VisitorIdentity = {};
  let any = false;
  for (const field of IDENTITY_FIELDS) {
    if (command[field] !== undefined) {
      out[field] = command[field];
      any = true;
    }
  }
  return any ? out : undefined;
}

/** The emit for a visitor command (everything but `conversation.start`, which opens a socket). */
export function commandEmit(command: UpstreamCommand): Emit {
  // Typed by SMARTSUPP_COMMANDS, so a type added there without a case here (or in the connector) does not compile.
  const type = command.type as Exclude<keyof typeof SMARTSUPP_COMMANDS, 'conversation.start'>;
  switch (type) {
    case 'message.send': {
      const text = str(command.text);
      if (text === undefined) throw invalid('message.send needs "text"');
      // `chatMessage(options)`: {content:{type:'text', text}, type?, isOffline?, preventOpenChat?}.
      const data: Record<string, unknown> = { content: { type: 'text', text } };
      if (command.senderType === 'contact' || command.senderType === 'bot') data.type = command.senderType;
      if (typeof command.isOffline === 'boolean') data.isOffline = command.isOffline;
      if (typeof command.preventOpenChat === 'boolean') data.preventOpenChat = command.preventOpenChat;
      return { event: 'chat.message', data, ack: true };
    }
    case 'typing': {
      // `chatTyping(is, text = null)`: fire and forget.
      const is = typeof command.typing === 'boolean' ? command.typing : true;
      return { event: 'chat.typing', data: { typing: { is, text: str(command.text) ?? null } }, ack: false };
    }
    case 'read':
      return { event: 'chat.read', data: null, ack: false };
    case 'close':
      return { event: 'chat.close', data: null, ack: true };
    case 'upload.init':
      return { event: 'chat.upload_init', data: null, ack: true };
    case 'upload.finish': {
      const uploadToken = str(command.uploadToken) ?? str(command.token);
      if (!uploadToken) throw invalid('upload.finish needs "uploadToken" (the token from upload.init)');
      return { event: 'chat.upload_finish', data: { uploadToken }, ack: true };
    }
    default:
      // Only a caller past the channel runtime's type check gets here.
      throw new CommandError('unsupported_command', `provider smartsupp does not support command type "${type satisfies never}"`, { retriable: false, sent: false });
  }
}

/** The id of a Message an ack returned (`chat.message`, `chat.upload_finish`); a bare string id is accepted too. */
export function ackMessageId(result: unknown): string | undefined {
  if (typeof result === 'string' && result.length > 0) return result;
  return isRecord(result) ? str(result.id) : undefined;
}

/** The error object of a Node-style ack: `{message, code?, type?, event?}`. */
export interface AckError {
  message: string;
  code?: number;
  type?: string;
  event?: string;
}

/** Reads an ack's error argument; undefined when the ack succeeded. */
export function readAckError(err: unknown): AckError | undefined {
  if (err === null || err === undefined || err === false) return undefined;
  if (!isRecord(err)) return { message: typeof err === 'string' ? err : 'upstream error' };
  const out: AckError = { message: str(err.message) ?? 'upstream error' };
  if (typeof err.code === 'number') out.code = err.code;
  if (str(err.type)) out.type = str(err.type);
  if (str(err.event)) out.event = str(err.event);
  return out;
}

/** True for the server's "bad account key / not allowed" answer (`{type:'auth_error', code:403}`). */
export function isAuthError(err: AckError): boolean {
  return err.type === 'auth_error' || err.code === 401 || err.code === 403;
}

function invalid(message: string): CommandError {
  return new CommandError('invalid_command', message, { retriable: false, sent: false });
}
