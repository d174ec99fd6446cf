import { apiError, type ApiErrorBody } from '../common/api-error';
import type { UpstreamCommand } from '../connectors/connector.interface';

/** A command's life (docs/commands.md): accepted → sending → sent | failed. `sent` and `failed` are final. */
export type CommandStatus = 'accepted' | 'sending' | 'sent' | 'failed';

/** Where a command came in. */
export type CommandDoor = 'http' | 'socket.io' | 'kafka';

/** Where a command came in. */
export interface SubmitContext {
  door: CommandDoor;
  /** The channel of the request (URL, record key); must agree with a `channelId` in the body. */
  channelId?: string;
  /** A record another replica forwarded here (it counted the command already). */
  forwarded?: boolean;
}

/** Why a command failed, as `GET /v1/commands/:id` and `chatbridge.command.result` report it. */
export interface CommandFailure {
  /** Stable code: `upstream_rejected`, `deadline_exceeded`, `ambiguous_no_echo`, `unsupported_command`, … */
  code: string;
  message: string;
  /** False when the upstream surely did not act; true when it may have (and the echo did not settle it). */
  mayHaveActed: boolean;
}

/** One ledger entry: everything needed to answer a repeat of the command and to resume it after a restart. */
export interface CommandRecord {
  commandId: string;
  channelId: string;
  type: string;
  status: CommandStatus;
  /** Upstream attempts made (execute calls); a hold for a reconnecting channel or a ledger that refused `sending` adds none. */
  attempts: number;
  /** sha256 of the canonical JSON of `{channelId, command}`: the same id with another fingerprint is 409. */
  fingerprint: string;
  door: CommandDoor;
  acceptedAt: string;
  updatedAt: string;
  upstreamMessageId?: string;
  conversationId?: string;
  error?: CommandFailure;
  /** The upstream's reply when it gave one (e.g. an upload token, a transcript), up to 64 KiB of JSON. */
  result?: unknown;
  /** The validated command; dropped once final (a repeat only needs the fingerprint and the result). */
  command?: UpstreamCommand;
}

/** What `GET /v1/commands/:commandId` answers (docs/commands.md), and the ack of the socket.io `command` event. */
export interface CommandView {
  commandId: string;
  channelId: string;
  type: string;
  status: CommandStatus;
  attempts: number;
  upstreamMessageId?: string;
  conversationId?: string;
  error?: CommandFailure;
  /** The upstream's reply when it gave one (e.g. Smartsupp's upload token, Captivate's transcript), up to 64 KiB of JSON. */
  result?: unknown;
  acceptedAt: string;
  updatedAt: string;
}

/** A door's answer to an accepted command: 202 `{commandId, status}` (plus whether it was a repeat). */
export interface SubmitResult {
  commandId: string;
  channelId: string;
  status: CommandStatus;
  /** True when the commandId was known (the stored state is returned, nothing is sent again). */
  duplicate: boolean;
}

/** Why a door refused a command; `status` is the HTTP status the HTTP door answers. */
export type CommandRequestCode =
  | 'invalid_command' // 400: body fails validation (details list every problem)
  | 'unknown_channel' // 404
  | 'id_conflict' // 409: commandId reused with a different body
  | 'command_too_large' // 413: the command's JSON is over api.maxBodyBytes (socket.io and Kafka; HTTP's parser answers first)
  | 'unsupported_command' // 422: the channel's provider cannot do this type (message names the provider)
  | 'channel_busy' // 503: too many unfinished commands on the channel
  | 'ledger_unavailable' // 503: the durable ledger (Kafka) did not take the command; nothing was accepted
  | 'shutting_down' // 503
  | 'forward_failed'; // 503: accepted, but not handed to the replica holding the channel (send it again, same commandId)

export const REQUEST_STATUS: Record<CommandRequestCode, number> = {
  invalid_command: 400,
  unknown_channel: 404,
  id_conflict: 409,
  command_too_large: 413,
  unsupported_command: 422,
  channel_busy: 503,
  ledger_unavailable: 503,
  shutting_down: 503,
  forward_failed: 503,
};

/** A command a door must refuse, with the HTTP status and (for 400) every validation problem. */
export class CommandRequestError extends Error {
  readonly status: number;

  constructor(
    readonly code: CommandRequestCode,
    message: string,
    readonly details?: string[],
    /** Set when the command was refused at a size or depth limit (counted in chatbridge_refused_total). */
    readonly limit?: 'bytes' | 'depth',
  ) {
    super(message);
    this.name = 'CommandRequestError';
    this.status = REQUEST_STATUS[code];
  }
}

/** The API's error JSON of a refused command, for the HTTP and socket.io doors. */
export function commandErrorBody(err: CommandRequestError): ApiErrorBody {
  return apiError(err.status, err.message, err.details ? { details: err.details } : {});
}

/**
 * Durable storage of ledger records (with Kafka: a compacted topic keyed by commandId). The CommandLedger keeps
 * the bounded in-memory view and decides; a store only loads and writes.
 */
export interface LedgerStore {
  readonly name: string;
  /**
   * Reads every stored record (bounded in time; rejects when the store cannot be read), and keeps handing
   * `onRecord` the records other replicas write afterwards, where the store is shared.
   */
  load(onRecord: (record: CommandRecord) => void): Promise<void>;
  /** Resolves once the record is durable; rejects when it could not be stored. */
  write(record: CommandRecord): Promise<void>;
  stop(): Promise<void>;
}

/** What the three doors (HTTP, socket.io, Kafka) use of the command service: one validation, one ledger, one result. */
export interface CommandDoorApi {
  /**
   * Validates and accepts a command, or answers the stored state of a known commandId (never sent twice).
   * `channelId` comes from the door (HTTP path, Kafka record key) or from the body (socket.io, Kafka); both present
   * and different is `invalid_command`. Throws CommandRequestError.
   */
  submit(input: unknown, ctx: SubmitContext): Promise<SubmitResult>;
  /** The current state of a command, or undefined when unknown (or evicted from the bounded ledger). */
  get(commandId: string): CommandView | undefined;
  /** Which replica runs a command of this channel and conversation, as an ownership key (CommandService.ownerKey). */
  ownerKey(channelId: string, conversationId: unknown): string;
}
