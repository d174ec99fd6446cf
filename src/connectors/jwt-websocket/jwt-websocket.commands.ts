import { IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { CommandError } from '../../common/errors';
import type { UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import type { ProviderCommands } from '../provider-commands';

/**
 * The service's wire format (docs/providers.md#jwt-websocket): client frames are `{type, data}` JSON, server frames
 * `{type, data, timestamp}`. Pure builders and readers only; the connector does the sending.
 */

/** A client → server frame. */
export interface ClientFrame {
  type: 'subscribe' | 'unsubscribe' | 'ping';
  data: Record<string, string>;
}

/** `room.listen` / `room.unlisten`: the service channel, as `roomId` or `channel` (e.g. `conversation:conv-123`). */
export class JwtWebSocketRoomFields {
  @IsOptional() @IsString() @MinLength(1) @MaxLength(512) roomId?: string;
  @IsOptional() @IsString() @MinLength(1) @MaxLength(512) channel?: string;
}

/** The command types this provider executes, with their fields. */
export const JWT_WEBSOCKET_COMMANDS = { 'room.listen': JwtWebSocketRoomFields, 'room.unlisten': JwtWebSocketRoomFields } satisfies ProviderCommands;

/** `{"type":"subscribe","data":{"channel":"conversation:conv-123"}}` */
export function subscribeFrame(channel: string): ClientFrame {
  return { type: 'subscribe', data: { channel } };
}

/** `{"type":"unsubscribe","data":{"channel":"conversation:conv-123"}}` */
export function unsubscribeFrame(channel: string): ClientFrame {
  return { type: 'unsubscribe', data: { channel } };
}

/** `{"type":"ping","data":{}}` */
export function pingFrame(): ClientFrame {
  return { type: 'ping', data: {} };
}

/** The service channel a command names (`roomId`, else `channel`): also its conversation, for ordering. */
export function namedChannel(command: UpstreamCommand): string | undefined {
  return str(command.roomId) ?? str(command.channel);
}

/** The channel a `room.listen` / `room.unlisten` command names; throws a non-retriable CommandError when none. */
export function commandChannel(command: UpstreamCommand): string {
  const channel = namedChannel(command);
  if (!channel) throw new CommandError('invalid_command', `${command.type} needs "roomId" (or "channel"), e.g. "conversation:conv-123"`, { retriable: false, sent: false });
  return channel;
}

/** An error frame as the service documents its codes; `code` may sit at the top level or under `data`. */
export interface ErrorFrame {
  code: string;
  message?: string;
  /** The channel the error is about, when the service names one (e.g. `subscription_failed`). */
  channel?: string;
}

/** Error codes documented by the service. */
export const ERROR_CODES: ReadonlySet<string> = new Set(['invalid_request', 'unauthorized', 'subscription_failed', 'internal_error']);

/**
 * Reads an error frame; undefined for other frames. The exact shape is undocumented (docs/providers.md#jwt-websocket), so
 * `{"type":"error","data":{"code":…}}`, a top-level `code`, and a `type` that is itself an error code are accepted.
 */
export function readErrorFrame(frame: unknown): ErrorFrame | undefined {
  if (!isRecord(frame)) return undefined;
  const type = str(frame.type);
  const topCode = str(frame.code);
  const isError = type === 'error' || (type !== undefined && ERROR_CODES.has(type)) || (type === undefined && topCode !== undefined);
  if (!isError) return undefined;
  const data = isRecord(frame.data) ? frame.data : {};
  const code = topCode ?? str(data.code) ?? (type !== 'error' ? type : undefined) ?? 'unknown';
  const out: ErrorFrame = { code };
  const message = str(data.message) ?? str(frame.message);
  const channel = str(data.channel) ?? str(frame.channel);
  if (message) out.message = message;
  if (channel) out.channel = channel;
  return out;
}
