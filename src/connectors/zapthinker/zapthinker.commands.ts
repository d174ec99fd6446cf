import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';
import { CommandError } from '../../common/errors';
import type { RestPost } from '../../common/upstream-http';
import type { CommandOutcome, UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import type { ProviderCommands } from '../provider-commands';

/** REST requests of the Evolution (ZapThinker) send API (docs/providers.md#zapthinker) and how its answers are read. Pure. */

/** `message.send` (sendText): Evolution's own options besides `conversationId` and `text`. */
export class ZapThinkerSendFields {
  /** ms of "composing" before the send; Evolution answers only after it, so it is bounded well below the command deadline. */
  @IsOptional() @IsInt() @Min(0) @Max(600_000) delay?: number;
  @IsOptional() @IsBoolean() linkPreview?: boolean;
}

/** The command types this provider executes, with their fields. */
export const ZAPTHINKER_COMMANDS = { 'message.send': ZapThinkerSendFields } satisfies ProviderCommands;

/** `POST /message/sendText/{instance}` body: only the fields the bridge passes through. */
export interface SendTextBody {
  /** Bare number or JID (groups `…@g.us` included): the command's `conversationId`. */
  number: string;
  text: string;
  /** Evolution shows "composing" for this many ms before sending (and answers only after). */
  delay?: number;
  linkPreview?: boolean;
}

/** The REST base of a channel's `url`, which may be the socket's ws(s):// base: ws → http, wss → https. */
export function restBase(url: string): string {
  return url.replace(/^ws(s?):\/\//i, (_m, secure: string) => (secure ? 'https://' : 'http://')).replace(/\/+$/, '');
}

/** Validates a `message.send` command and builds the sendText body; throws a non-retriable CommandError when unusable. */
export function sendTextBody(command: UpstreamCommand): SendTextBody {
  const number = str(command.conversationId);
  if (!number) throw invalid('message.send needs conversationId (a number or a WhatsApp JID)');
  if (typeof command.text !== 'string' || command.text.trim().length === 0) throw invalid('message.send needs a non-empty text');
  const body: SendTextBody = { number, text: command.text };
  if (command.delay !== undefined) {
    if (!Number.isInteger(command.delay) || (command.delay as number) < 0) throw invalid('message.send: delay must be a non-negative integer (ms)');
    body.delay = command.delay as number;
  }
  if (command.linkPreview !== undefined) {
    if (typeof command.linkPreview !== 'boolean') throw invalid('message.send: linkPreview must be a boolean');
    body.linkPreview = command.linkPreview;
  }
  return body;
}

/** The sendText request: `POST <base>/message/sendText/<instance>` with the `apikey` header. */
export function sendTextRequest(base: string, instance: string, apiKey: string, body: SendTextBody): RestPost {
  return {
    url: `${base}/message/sendText/${encodeURIComponent(instance)}`,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', apikey: apiKey },
    body: JSON.stringify(body),
  };
}

/** What a 2xx sendText answer confirms: the WAMessage `key.id` and `key.remoteJid`, and the body itself. */
export function sendTextOutcome(body: unknown): CommandOutcome {
  const outcome: CommandOutcome = { result: body ?? null };
  const key = isRecord(body) && isRecord(body.key) ? body.key : undefined;
  const id = key ? str(key.id) : undefined;
  const jid = key ? str(key.remoteJid) : undefined;
  if (id) outcome.upstreamMessageId = id;
  if (jid) outcome.conversationId = jid;
  return outcome;
}

function invalid(message: string): CommandError {
  return new CommandError('invalid_command', message, { retriable: false, sent: false });
}
