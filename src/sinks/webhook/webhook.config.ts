import 'reflect-metadata'; // class-transformer reads design-time types through it
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize, ArrayNotEmpty, IsArray, IsDefined, IsIn, IsInt, IsNumber, IsOptional, IsString, IsUrl, Matches, Max, Min,
  ValidateNested, ValidatorConstraint, Validate, type ValidatorConstraintInterface,
} from 'class-validator';
import { isValidSecret } from './webhook.signer';

// Numeric fields carry an explicit `: number` (see config.schema.ts): it is what makes `${VAR}` strings numbers.

/** docs/webhooks.md / Standard Webhooks: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];

/** `whsec_` + base64 of 24..64 bytes. The message never quotes the value. */
@ValidatorConstraint({ name: 'webhookSecret' })
class WebhookSecretConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return typeof value === 'string' && isValidSecret(value);
  }

  defaultMessage(): string {
    return 'must be whsec_ followed by the base64 of 24 to 64 random bytes';
  }
}

/** Numeric strings in a list (from `${VAR}`) become numbers; implicit conversion does not reach array items. */
function toNumberList({ value }: { value: unknown }): unknown {
  if (!Array.isArray(value)) return value;
  return value.map((v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v));
}

/** The per-endpoint circuit breaker: consecutive failures open it, a probe after `halfOpenAfterMs` closes it. */
export class WebhookBreakerConfig {
  /** Consecutive failed attempts (5xx, timeout, network, 503) that open the circuit. */
  @IsOptional() @IsInt() @Min(1) @Max(10_000) failures: number = 10;
  /** Time the circuit stays open before one probe attempt is let through (ms). */
  @IsOptional() @IsInt() @Min(10) halfOpenAfterMs: number = 30_000;
}

/** One outbound webhook endpoint (docs/configuration.md, docs/webhooks.md). */
export class WebhookConfig {
  /** Unique id, used in metrics, dead letters (`origin`) and the API. */
  @IsDefined() @IsString() @Matches(/^[a-z0-9-]{1,64}$/, { message: 'must match [a-z0-9-]{1,64}' }) id!: string;
  /** Where events are POSTed. */
  @IsDefined() @IsString() @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false }, { message: 'must be an http:// or https:// URL' }) url!: string;
  /** Signing secret, `whsec_<base64>`. */
  @IsDefined() @IsString() @Validate(WebhookSecretConstraint) secret!: string;
  /** The secret being rotated out: while set, every delivery carries a signature with each. Empty = none. */
  @IsOptional() @Transform(({ value }: { value: unknown }) => (value === '' ? undefined : value)) @IsString() @Validate(WebhookSecretConstraint) previousSecret?: string;
  /** Globs on the CloudEvent type (`*` matches any run of characters, dots included); omitted: every type. */
  @IsOptional() @IsArray() @ArrayNotEmpty() @IsString({ each: true }) @Matches(/^[A-Za-z0-9_.*-]+$/, { each: true, message: 'each entry must be a type glob of [A-Za-z0-9_.-] and *' }) types?: string[];
  /** Channel ids; omitted: every channel. */
  @IsOptional() @IsArray() @ArrayNotEmpty() @IsString({ each: true }) channels?: string[];
  /** Budget of one attempt: connect, send, response headers (ms). */
  @IsOptional() @IsInt() @Min(100) @Max(300_000) timeoutMs: number = 15_000;
  /** Partition keys delivered in parallel (events of one key always go one at a time, in order). */
  @IsOptional() @IsInt() @Min(1) @Max(1000) concurrency: number = 8;
  /** Most attempts started per second (omitted: no limit). */
  @IsOptional() @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(0.01) ratePerSecond?: number;
  /** Delay before each attempt (ms): the first is the first attempt; its length is the number of attempts. */
  @IsOptional() @Transform(toNumberList) @IsArray() @ArrayNotEmpty() @ArrayMaxSize(100) @IsInt({ each: true, message: 'must be a list of delays in ms (integers ≥ 0)' }) @Min(0, { each: true, message: 'must be a list of delays in ms (integers ≥ 0)' })
  retrySchedule: number[] = [...DEFAULT_RETRY_SCHEDULE_MS];
  /** Events held for this endpoint (queued, in flight, waiting to retry); beyond it they are dead-lettered. */
  @IsOptional() @IsInt() @Min(1) maxPending: number = 10_000;
  /**
   * With Kafka, where a NEW endpoint (no committed progress in its consumer group) starts reading the events
   * topic: `latest` = the end of the topic when the bridge started (nothing older is sent), `earliest` = the
   * oldest retained event (a backfill). Ignored once the group has committed progress.
   */
  @IsOptional() @IsIn(['latest', 'earliest']) startFrom: 'latest' | 'earliest' = 'latest';
  /** Circuit breaker tuning. */
  @IsOptional() @ValidateNested() @Type(() => WebhookBreakerConfig) circuitBreaker: WebhookBreakerConfig = new WebhookBreakerConfig();
}
