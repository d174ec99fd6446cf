import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { ArrayMaxSize, ArrayNotEmpty, IsArray, IsBoolean, IsInt, IsISO8601, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import { formatErrors } from '../../config/config.loader';
import { decodeCursor, type DeadLetterPageQuery } from './webhook.dead-letters';

/** Most ids one replay request may name. */
export const MAX_REPLAY_IDS = 10_000;
/** Most events one replay request re-submits (also the default `limit`). */
export const MAX_REPLAY_LIMIT = 10_000;

/** A date and time with a zone (`Z` or `±hh:mm`): a time without one would be read in the server's zone. */
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const TIME_MESSAGE = 'must be an ISO 8601 time with a zone, e.g. 2025-06-05T14:00:00Z';

/** The body of `POST /v1/webhooks/:id/replay`, as sent. */
@JSONSchema({ additionalProperties: false, description: 'At least one of from, to or ids; unknown keys are refused (400)' })
export class ReplayRequestDto {
  /** Dead-lettered at or after this time (ISO 8601 with a zone). */
  @IsOptional() @IsString() @Matches(ZONED_TIME, { message: TIME_MESSAGE }) @IsISO8601({ strict: true }, { message: TIME_MESSAGE }) from?: string;
  /** Dead-lettered before this time (exclusive). */
  @IsOptional() @IsString() @Matches(ZONED_TIME, { message: TIME_MESSAGE }) @IsISO8601({ strict: true }, { message: TIME_MESSAGE }) to?: string;
  /** CloudEvent ids (= `webhook-id`s) to replay. */
  @IsOptional() @IsArray() @ArrayNotEmpty() @ArrayMaxSize(MAX_REPLAY_IDS) @IsString({ each: true }) @Matches(/^[^\s.]{1,256}$/, { each: true, message: 'each id must be 1..256 characters without spaces or dots' }) ids?: string[];
  /** Most events to re-submit, oldest first. */
  @IsOptional() @IsInt() @Min(1) @Max(MAX_REPLAY_LIMIT) limit?: number;
  /** True: answer what would be replayed (the events, oldest first) without sending anything. */
  @IsOptional() @IsBoolean() dryRun?: boolean;
}

/** A validated replay request: times as epoch ms, `to` exclusive. */
export interface ReplayQuery {
  from?: number;
  to?: number;
  ids?: ReadonlySet<string>;
  limit: number;
  /** Select only: nothing is sent. */
  dryRun?: true;
}

/** Why a replay request was refused: `details` lists every problem with its field. */
export class ReplayRequestError extends Error {
  constructor(readonly details: string[]) {
    super(`invalid replay request: ${details.join('; ')}`);
    this.name = 'ReplayRequestError';
  }
}

/**
 * Validates a request body. Unknown keys, wrong types, an inverted range, and a body that names neither a
 * time nor ids are refused: replaying every dead letter by accident is not possible.
 */
export function parseReplayRequest(body: unknown): ReplayQuery {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ReplayRequestError(['(body): must be a JSON object with from, to or ids']);
  const dto = plainToInstance(ReplayRequestDto, body);
  // A malformed time fails both its format checks with the same message: report it once.
  const details = [...new Set(formatErrors(validateSync(dto, { whitelist: true, forbidNonWhitelisted: true })))];
  if (details.length) throw new ReplayRequestError(details);
  if (dto.from === undefined && dto.to === undefined && dto.ids === undefined) {
    throw new ReplayRequestError(['(body): give at least one of from, to or ids (replaying every dead letter at once is not allowed)']);
  }
  const from = dto.from === undefined ? undefined : Date.parse(dto.from);
  const to = dto.to === undefined ? undefined : Date.parse(dto.to);
  if (from !== undefined && to !== undefined && from >= to) throw new ReplayRequestError(['to: must be later than from']);
  return { from, to, ids: dto.ids ? new Set(dto.ids) : undefined, limit: dto.limit ?? MAX_REPLAY_LIMIT, ...(dto.dryRun ? { dryRun: true as const } : {}) };
}

/** Most dead letters one page lists, and how many without a `limit`. */
export const MAX_DEAD_LETTER_PAGE = 1000;
export const DEFAULT_DEAD_LETTER_PAGE = 100;

/** The query of `GET /v1/webhooks/:id/dead-letters`, as sent (strings: numbers are converted). */
@JSONSchema({ additionalProperties: false })
export class DeadLetterPageDto {
  /** Most dead letters in the page (default DEFAULT_DEAD_LETTER_PAGE). */
  @IsOptional() @IsInt() @Min(1) @Max(MAX_DEAD_LETTER_PAGE) limit?: number;
  /** The previous page's `nextCursor`. */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_-]{1,2048}$/, { message: "must be a page's nextCursor" }) cursor?: string;
}

/** A validated page request. */

/** Validates the query of a dead-letter page; a problem is a ReplayRequestError listing every one. */
export function parseDeadLetterPage(query: unknown): DeadLetterPageQuery {
  const dto = plainToInstance(DeadLetterPageDto, query ?? {}, { enableImplicitConversion: true });
  const details = formatErrors(validateSync(dto, { whitelist: true, forbidNonWhitelisted: true }));
  const cursor = dto.cursor === undefined || details.length ? undefined : decodeCursor(dto.cursor);
  if (dto.cursor !== undefined && !details.length && !cursor) details.push("cursor: must be a page's nextCursor");
  if (details.length) throw new ReplayRequestError(details);
  return { limit: dto.limit ?? DEFAULT_DEAD_LETTER_PAGE, ...(cursor ? { cursor } : {}) };
}
