import { IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { CommandError, describeError } from '../../common/errors';
import { redactText } from '../../common/redact';
import type { RestPost } from '../../common/upstream-http';
import type { UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import type { ProviderCommands } from '../provider-commands';

/** Wire frames and REST requests of the Watchers bot API, and how its answers are read. Pure. */

/** `message.send` and `room.listen`: the room may be named by Watchers' own `roomId` instead of `conversationId`. */
export class WatchersRoomFields {
  @IsOptional() @IsString() @MinLength(1) @MaxLength(512) roomId?: string;
}

/** The command types this provider executes, with their fields. */
export const WATCHERS_COMMANDS = { 'message.send': WatchersRoomFields, 'room.listen': WatchersRoomFields } satisfies ProviderCommands;

/** `external/listen` payload (docs "Bot post-message API"). */
export interface ListenFrame {
  roomId: string;
  apiKey: string;
}

/** `external/send` payload. */
export interface SendFrame {
  roomId: string;
  apiKey: string;
  userId: string;
  text: string;
}

/** Credentials the frames and requests carry. */
export interface WatchersCredentials {
  apiKey: string;
  bearer: string;
  userId: string;
}

/** The `external/listen` frame for one room. */
export function listenFrame(roomId: string, creds: Pick<WatchersCredentials, 'apiKey'>): ListenFrame {
  return { roomId, apiKey: creds.apiKey };
}

/** The room a command targets: `conversationId` (the canonical field) or the provider field `roomId`. */
export function commandRoom(command: UpstreamCommand): string | undefined {
  return str(command.conversationId) ?? str(command.roomId);
}

/** Validates a `message.send` command's fields; throws a non-retriable CommandError when unusable. */
export function sendFields(command: UpstreamCommand): { roomId: string; text: string } {
  const roomId = commandRoom(command);
  if (!roomId) throw invalid('message.send needs conversationId (the Watchers roomId)');
  if (typeof command.text !== 'string' || command.text.length === 0) throw invalid('message.send needs a non-empty text');
  return { roomId, text: command.text };
}

/** The `external/send` frame. */
export function sendFrame(fields: { roomId: string; text: string }, creds: WatchersCredentials): SendFrame {
  return { roomId: fields.roomId, apiKey: creds.apiKey, userId: creds.userId, text: fields.text };
}

/**
 * Bot REST API `POST <restUrl>/api/bot/sendMessage` (docs "Bot REST API"). Chosen over the chat backend's
 * `/external/message/send` because it authenticates as the bot with the same three credentials the
 * socket uses (bearer, API key, bot id), so one channel config serves both paths.
 */
export function restSendRequest(restUrl: string, fields: { roomId: string; text: string }, creds: WatchersCredentials): RestPost {
  return {
    url: `${restUrl.replace(/\/+$/, '')}/api/bot/sendMessage`,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'X-Api-Key': creds.apiKey,
      Authorization: `Bearer ${creds.bearer}`,
      'X-Bot-Id': creds.userId,
    },
    body: JSON.stringify({ roomId: fields.roomId, text: fields.text }),
  };
}

/**
 * Whether an `external/listen` ack reports a failure. Its shape is undocumented, so the rule is:
 * failure = `{error: <non-empty>}`, `{status: "error" | "fail" | "failed"}`, `{success: false}`, `{ok: false}`,
 * or a string that names an error (error, fail, invalid, denied, forbidden, unauthorized, not found).
 * Anything else (nothing, `true`, `{status: "ok"}`, a room object) is success.
 */
export function listenAckError(ack: unknown): string | undefined {
  if (typeof ack === 'string') return ERRORISH.test(ack) ? ack : undefined;
  if (!isRecord(ack)) return undefined;
  if (!isEmpty(ack.error)) return describeAck(ack.error);
  const status = typeof ack.status === 'string' ? ack.status.toLowerCase() : undefined;
  if (status === 'error' || status === 'fail' || status === 'failed') return describeAck(ack.message ?? ack);
  if (ack.success === false || ack.ok === false) return describeAck(ack.message ?? ack.error ?? ack);
  return undefined;
}

/**
 * Whether an `external/send` ack reports a failure. The docs name the ack argument `error`, so any
 * non-empty value is a failure; empty = nothing, null, false, "", {} or [].
 */
export function sendAckError(ack: unknown): string | undefined {
  return isEmpty(ack) ? undefined : describeAck(ack);
}

const ERRORISH = /\b(error|fail(ed|ure)?|invalid|denied|forbidden|unauthori[sz]ed|not found)\b/i;

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  return isRecord(v) && Object.keys(v).length === 0;
}

function describeAck(v: unknown): string {
  return redactText(describeError(v)).slice(0, 300);
}

function invalid(message: string): CommandError {
  return new CommandError('invalid_command', message, { retriable: false, sent: false });
}

/** The upstream message id in a REST answer, where one is recognisable. */
export function restMessageId(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  const nested = isRecord(body.message) ? body.message : isRecord(body.result) ? body.result : undefined;
  return str(body.id) ?? (nested ? str(nested.id) ?? str(nested.message_id) : undefined);
}


