import { IsIn, IsObject, IsOptional, IsString, MaxLength } from 'class-validator';
import { CommandError } from '../../common/errors';
import type { UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { NoCommandFields, type ProviderCommands } from '../provider-commands';

const TARGETS = ['default', 'bot', 'live', 'bot_live'];

/** `conversation.start`: who the conversation is with (all optional upstream, `userId` "anon" when absent). */
export class CaptivateStartFields {
  @IsOptional() @IsString() @MaxLength(512) userId?: string;
  @IsOptional() @IsObject() userBasicInfo?: Record<string, unknown>;
  @IsOptional() @IsObject() userData?: Record<string, unknown>;
}

/** `metadata`: the metadata object and which side of the conversation reads it. */
export class CaptivateMetadataFields {
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
  @IsOptional() @IsString() @IsIn(TARGETS) target?: string;
}

/** `action`: the action's id (e.g. `escalateToHuman`) and its data. */
export class CaptivateActionFields {
  @IsOptional() @IsString() @MaxLength(256) actionId?: string;
  @IsOptional() @IsObject() data?: Record<string, unknown>;
}

/** Command types Captivate channels accept (docs/commands.md plus Captivate's own), with their fields. */
export const CAPTIVATE_COMMANDS = {
  'conversation.start': CaptivateStartFields,
  'message.send': NoCommandFields,
  metadata: CaptivateMetadataFields,
  action: CaptivateActionFields,
  transcript: NoCommandFields,
} satisfies ProviderCommands;

/** An outbound event as the upstream reads it inside `{action: "sendMessage", event: …}`. */
export interface CaptivateWireEvent {
  event_type: string;
  event_payload: Record<string, unknown>;
}

/**
 * Builds the exact upstream event of a command (manual "Socket Event Types"; SDK Conversation.ts).
 * Throws CommandError `invalid_command` (never sent, not retriable) when a required field is missing.
 */
export function buildCommandEvent(cmd: UpstreamCommand): CaptivateWireEvent {
  // Typed by CAPTIVATE_COMMANDS, so a type added there without a case here does not compile.
  const type = cmd.type as keyof typeof CAPTIVATE_COMMANDS;
  switch (type) {
    case 'conversation.start': {
      const payload: Record<string, unknown> = {};
      // userId is optional upstream ("anon" when absent); userBasicInfo and userData are passed through.
      if (str(cmd.userId)) payload.userId = str(cmd.userId);
      if (isRecord(cmd.userBasicInfo)) payload.userBasicInfo = cmd.userBasicInfo;
      if (isRecord(cmd.userData)) payload.userData = cmd.userData;
      return { event_type: 'conversation_start', event_payload: payload };
    }
    case 'message.send': {
      const text = typeof cmd.text === 'string' ? cmd.text : undefined;
      if (text === undefined || text === '') throw invalid('message.send needs text');
      return {
        event_type: 'user_message',
        event_payload: { type: 'message_create', client_msg_id: cmd.commandId, conversation_id: need(cmd), content: { type: 'text', text } },
      };
    }
    case 'metadata': {
      if (!isRecord(cmd.metadata)) throw invalid('metadata needs a metadata object');
      const payload: Record<string, unknown> = { metadata: cmd.metadata };
      if (cmd.target !== undefined) {
        if (typeof cmd.target !== 'string' || !TARGETS.includes(cmd.target)) throw invalid(`metadata target must be one of ${TARGETS.join(', ')}`);
        payload.target = cmd.target;
      }
      payload.client_msg_id = cmd.commandId;
      payload.conversation_id = need(cmd);
      return { event_type: 'metadata', event_payload: payload };
    }
    case 'action': {
      const id = str(cmd.actionId);
      if (!id) throw invalid('action needs actionId (e.g. "escalateToHuman")');
      const data = cmd.data === undefined ? {} : cmd.data;
      if (!isRecord(data)) throw invalid('action data must be an object');
      return { event_type: 'action', event_payload: { type: 'normal', id, data, conversation_id: need(cmd) } };
    }
    case 'transcript':
      return transcriptRequestEvent(need(cmd));
    default:
      // Only a caller past the channel runtime's type check gets here.
      throw new CommandError('unsupported_command', `provider captivate does not support command type "${type satisfies never}"`, { retriable: false, sent: false });
  }
}

/** The socket frame of an event. */
export function socketFrame(ev: CaptivateWireEvent): string {
  return JSON.stringify({ action: 'sendMessage', event: ev });
}

/** The body of `POST /api/custom-channel/sockets/message` (SDK ≥5): the frame plus the socket that gets the replies. */
export function httpBody(ev: CaptivateWireEvent, socketId: string | undefined): string {
  return JSON.stringify({ action: 'sendMessage', event: socketId ? { ...ev, socket_id: socketId } : ev });
}

/** Keepalive: `metadata_request` is documented, read-only, and answered with one `conversation_metadata` frame. */
export function keepaliveEvent(conversationId: string): CaptivateWireEvent {
  return { event_type: 'metadata_request', event_payload: { conversation_id: conversationId } };
}

/** `conversation_transcript_request`: answered with one `conversation_transcript` frame; it acts in the conversation. */
export function transcriptRequestEvent(conversationId: string): CaptivateWireEvent {
  return { event_type: 'conversation_transcript_request', event_payload: { conversation_id: conversationId } };
}

function need(cmd: UpstreamCommand): string {
  const id = str(cmd.conversationId);
  if (!id) throw invalid(`${cmd.type} needs conversationId`);
  return id;
}

function invalid(message: string): CommandError {
  return new CommandError('invalid_command', message, { retriable: false, sent: false });
}
