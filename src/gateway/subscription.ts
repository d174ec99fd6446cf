import { plainToInstance } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsOptional, IsString, Matches, validateSync } from 'class-validator';
import { formatErrors } from '../config/config.loader';

/** Payload of the socket.io `subscribe` event: omitted lists match everything. */
export class SubscribeDto {
  /** Channel ids; the bridge's own events (no channel) are excluded when present. */
  @IsOptional() @IsArray() @ArrayMaxSize(1000) @IsString({ each: true })
  @Matches(/^[a-z0-9-]{1,64}$/, { each: true, message: 'each value in channels must be a channel id ([a-z0-9-]{1,64})' })
  channels?: string[];

  /** CloudEvent types, `*` matching any run of characters (as in webhook filters). */
  @IsOptional() @IsArray() @ArrayMaxSize(1000) @IsString({ each: true })
  @Matches(/^[A-Za-z0-9._*-]{1,200}$/, { each: true, message: 'each value in types must be an event type or glob (letters, digits, . _ - *)' })
  types?: string[];
}

/** What a subscriber asked for, as acknowledged. */
export interface Subscription {
  channels?: string[];
  types?: string[];
}

/** A `subscribe` payload that was refused: `details` lists every problem with its field. */
export class SubscriptionError extends Error {
  constructor(readonly details: string[]) {
    super('invalid subscription: expected {channels?: string[], types?: string[]}');
    this.name = 'SubscriptionError';
  }
}

/** Validates a `subscribe` payload (unknown keys and unknown channels included); throws SubscriptionError. */
export function parseSubscription(payload: unknown, isChannel: (id: string) => boolean): Subscription {
  if (payload === undefined || payload === null) return {};
  if (typeof payload !== 'object' || Array.isArray(payload)) throw new SubscriptionError(['(payload): must be an object']);
  const dto = plainToInstance(SubscribeDto, payload);
  const details = formatErrors(validateSync(dto, { whitelist: true, forbidNonWhitelisted: true }));
  if (!details.length) dto.channels?.forEach((id, i) => isChannel(id) || details.push(`channels[${i}]: unknown channel "${id}"`));
  if (details.length) throw new SubscriptionError(details);
  const out: Subscription = {};
  if (dto.channels) out.channels = [...new Set(dto.channels)];
  if (dto.types) out.types = [...new Set(dto.types)];
  return out;
}
