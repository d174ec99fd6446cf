import 'reflect-metadata'; // class-transformer reads design-time types through it
import { Transform, Type } from 'class-transformer';
import {
  ArrayNotEmpty, IsArray, IsBoolean, IsDefined, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, MinLength, ValidateNested,
} from 'class-validator';
import { WebhookConfig } from '../sinks/webhook/webhook.config';

// Numeric fields carry an explicit `: number`: without it TypeScript emits `design:type Object` and
// class-transformer's implicit conversion leaves a `${VAR}`-interpolated "250" a string, which then fails @IsInt.

/** Reads `true`/`false` strings (from `${VAR}`) as booleans; implicit conversion would make "false" true. */
export function toBool({ obj, key }: { obj: Record<string, unknown>; key: string }): unknown {
  const raw = obj[key];
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return raw;
}

/** SASL settings for the Kafka client. */
export class KafkaSaslConfig {
  @IsDefined() @IsIn(['plain', 'scram-sha-256', 'scram-sha-512']) mechanism!: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  @IsDefined() @IsString() username!: string;
  @IsDefined() @IsString() password!: string;
}

/** Topic names (docs/configuration.md defaults). */
export class KafkaTopicsConfig {
  @IsOptional() @IsString() events = 'chatbridge.events';
  @IsOptional() @IsString() commands = 'chatbridge.commands';
  @IsOptional() @IsString() deadLetter = 'chatbridge.dlq';
  /** Compacted: one record per channel (key = channel id) with its runtime mode. */
  @IsOptional() @IsString() state = 'chatbridge.channels';
  /** Compacted: the command ledger, one record per commandId with its latest state (idempotency across restarts and replicas). */
  @IsOptional() @IsString() commandLedger = 'chatbridge.commands.ledger';
}

/** Producer tuning. Defaults suit a single replica bridging a few thousand events per second. */
export class KafkaProducerConfig {
  /** Most records in one produce request. */
  @IsOptional() @IsInt() @Min(1) @Max(10_000) batchSize: number = 500;
  /** Most record bytes in one produce request, below Kafka's default message.max.bytes (1,048,588); a larger record goes alone. */
  @IsOptional() @IsInt() @Min(1024) maxBatchBytes: number = 921_600;
  /** Events held in memory while Kafka is slow or down; beyond it events go to the dead-letter file. */
  @IsOptional() @IsInt() @Min(100) maxQueue: number = 100_000;
  /** Record bytes held in memory (with `maxQueue`, whichever is reached first); sized for a 512 MiB container. */
  @IsOptional() @IsInt() @Min(1_048_576) maxQueueBytes: number = 134_217_728;
  /** Queue depth at which a warning is logged and readiness reports backpressure. */
  @IsOptional() @IsInt() @Min(1) warnQueue: number = 10_000;
  @IsOptional() @IsIn(['none', 'gzip']) compression: 'none' | 'gzip' = 'gzip';
  /**
   * CloudEvents Kafka binding mode of `topics.events` records (docs/kafka.md): `binary` puts the attributes in `ce_`
   * headers and `data` in the value; `structured` puts the whole event in the value (`application/cloudevents+json`).
   */
  @IsOptional() @IsIn(['binary', 'structured']) cloudEventsMode: 'binary' | 'structured' = 'binary';
  /**
   * A produce request of the events sink or the command ledger starts at least this long after that producer's
   * previous one, unless its batch is full; what arrives meanwhile goes in it (ms, 0 = as soon as the previous one
   * is acknowledged). Fewer, fuller requests at moderate load, for at most this much more latency.
   */
  @IsOptional() @IsInt() @Min(0) @Max(100) lingerMs: number = 5;
  /** Time for one produce request (ms). */
  @IsOptional() @IsInt() @Min(100) requestTimeoutMs: number = 30_000;
  /** Longest wait between two attempts while Kafka is unavailable (ms). */
  @IsOptional() @IsInt() @Min(10) retryMaxDelayMs: number = 10_000;
}

/** The bridge's consumers of `topics.events` (webhook delivery, one consumer group per endpoint). */
export class KafkaConsumerConfig {
  /**
   * Group id of endpoint `<id>` = this prefix + `<id>`; replicas of one deployment share it, another
   * deployment on the same cluster must not. Omitted: `<clientId>.webhook.`.
   */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9._-]{1,200}$/, { message: 'must be letters, digits, ., _ or -' }) webhookGroupPrefix?: string;
  /** Longest time a fetch waits on the broker for new records (ms). */
  @IsOptional() @IsInt() @Min(10) @Max(60_000) maxWaitTimeMs: number = 500;
  /** A member silent this long is removed from the group and its partitions move (ms). */
  @IsOptional() @IsInt() @Min(6000) @Max(300_000) sessionTimeoutMs: number = 30_000;
  /** How often committed progress is written while deliveries finish (ms). */
  @IsOptional() @IsInt() @Min(10) @Max(60_000) commitIntervalMs: number = 1000;
  /** Group id of the consumer of `topics.commands` (replicas of one deployment share it). Omitted: `<clientId>.commands`. */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9._-]{1,200}$/, { message: 'must be letters, digits, ., _ or -' }) commandGroup?: string;
  /** A consumed record whose handler keeps failing (not a declared-retriable refusal) is dead-lettered after this many tries. */
  @IsOptional() @IsInt() @Min(1) @Max(100) poisonMaxTries: number = 3;
  /** A webhook source stops fetching a partition holding this many unfinished or uncommitted offsets, until they drain. */
  @IsOptional() @IsInt() @Min(10) @Max(1_000_000) webhookMaxOpenOffsets: number = 10_000;
}

export class KafkaConfig {
  @IsDefined() @IsArray() @ArrayNotEmpty() @IsString({ each: true }) brokers!: string[];
  @IsOptional() @IsString() clientId = 'chatbridge';
  @IsOptional() @Transform(toBool) @IsBoolean() ssl = false;
  @IsOptional() @ValidateNested() @Type(() => KafkaSaslConfig) sasl?: KafkaSaslConfig;
  @IsOptional() @ValidateNested() @Type(() => KafkaTopicsConfig) topics: KafkaTopicsConfig = new KafkaTopicsConfig();
  @IsOptional() @Transform(toBool) @IsBoolean() createTopics = false;
  /** Partitions of topics created by `createTopics` (omitted: the broker's default). */
  @IsOptional() @IsInt() @Min(1) topicPartitions?: number;
  @IsOptional() @ValidateNested() @Type(() => KafkaProducerConfig) producer: KafkaProducerConfig = new KafkaProducerConfig();
  @IsOptional() @ValidateNested() @Type(() => KafkaConsumerConfig) consumer: KafkaConsumerConfig = new KafkaConsumerConfig();
  /** Connection timeout for the first connect and metadata requests (ms). */
  @IsOptional() @IsInt() @Min(100) connectionTimeoutMs: number = 3000;
}

/** Reconnect policy shared by every channel's supervisor. */
export class ReconnectConfig {
  /** First reconnect delay (ms); each later one draws from [0, initialDelayMs × multiplier^attempt], capped at maxDelayMs (full jitter). 500 ms: a blip of a second or two costs a few seconds at most. */
  @IsOptional() @IsInt() @Min(1) initialDelayMs: number = 500;
  @IsOptional() @IsInt() @Min(1) maxDelayMs: number = 30_000;
  @IsOptional() @Min(1) multiplier: number = 2;
  /** Slower schedule once a refusal of the credentials counts as `auth_failed`. */
  @IsOptional() @IsInt() @Min(1) authInitialDelayMs: number = 5_000;
  @IsOptional() @IsInt() @Min(1) authMaxDelayMs: number = 300_000;
  /** A connection that lived this long resets the backoff; shorter ones keep growing it (flapping). */
  @IsOptional() @IsInt() @Min(0) stableAfterMs: number = 30_000;
  /** A credential that connected within this long is not `auth_failed` at its first refusals (0: never). */
  @IsOptional() @IsInt() @Min(0) authGraceMs: number = 3_600_000;
  /** Refusals in a row such a credential retries on the normal schedule… */
  @IsOptional() @IsInt() @Min(0) authGraceAttempts: number = 5;
  /** …or for this long after the first of them, whichever ends first. */
  @IsOptional() @IsInt() @Min(0) authGraceWindowMs: number = 60_000;
}

/** Duplicate suppression by event id. */
export class DedupeConfig {
  @IsOptional() @IsInt() @Min(0) maxEntries: number = 100_000;
  @IsOptional() @IsInt() @Min(1000) ttlMs: number = 6 * 3600_000;
}

/** Where events that could not be delivered are written when Kafka cannot take them. */
export class DeadLetterConfig {
  @IsOptional() @IsString() file = './.data/dead-letter.jsonl';
}

/**
 * Limits of what upstreams send, checked once where a frame enters (socket frame or inbound post) and once per event
 * after mapping. Past a limit the item is dead-lettered whole and a small `chatbridge.provider.event` says what was
 * refused; the channel goes on.
 */
export class LimitsConfig {
  /** Largest upstream frame (bytes of its JSON). */
  @IsOptional() @IsInt() @Min(1024) @Max(256 * 1024 * 1024) maxFrameBytes: number = 1024 * 1024;
  /** Deepest nesting of objects and arrays in a frame. */
  @IsOptional() @IsInt() @Min(8) @Max(1000) maxJsonDepth: number = 64;
  /** Largest canonical event (bytes of its JSON); below Kafka's default `message.max.bytes` (1,048,588), so a broker never refuses one. */
  @IsOptional() @IsInt() @Min(1024) @Max(256 * 1024 * 1024) maxEventBytes: number = 900 * 1024;
}

/** How an upstream in webhook mode authenticates its posts to `POST /v1/inbound/<channelId>`: a shared token or an HMAC. */
export class InboundAuthConfig {
  /** Shared token, sent in `header` (or as `Authorization: Bearer <token>`). */
  @IsOptional() @IsString() @MinLength(16, { message: 'must be at least 16 characters' }) token?: string;
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9-]{1,64}$/, { message: 'must be an HTTP header name' }) header = 'x-chatbridge-token';
  /** Key of the HMAC-SHA256 over the raw body, sent in `hmacHeader` as `sha256=<hex>`, bare hex or base64. */
  @IsOptional() @IsString() @MinLength(16, { message: 'must be at least 16 characters' }) hmacSecret?: string;
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9-]{1,64}$/, { message: 'must be an HTTP header name' }) hmacHeader = 'x-signature';
  /** Largest body accepted (bytes); larger posts get 413. */
  @IsOptional() @IsInt() @Min(1024) @Max(64 * 1024 * 1024) maxBodyBytes: number = 1024 * 1024;
  /** Posts of this channel in progress at once (reading, then waiting for Kafka's acknowledgement); beyond it 503 with Retry-After (memory ≤ maxInFlight × maxBodyBytes). */
  @IsOptional() @IsInt() @Min(1) @Max(10_000) maxInFlight: number = 16;
  /**
   * With Kafka, a post is answered 200 only once its events are acknowledged by Kafka; past this wait (or when one was
   * dead-lettered instead, e.g. while stopping) 503 with Retry-After, so the upstream sends it again (ms).
   */
  @IsOptional() @IsInt() @Min(100) @Max(120_000) ackTimeoutMs: number = 10_000;
}

/** Runtime switches between socket and webhook mode (`PUT /v1/channels/:id/mode`). */
export class ModeSwitchConfig {
  /** socket → webhook: the socket closes at the first accepted inbound post, or after this long at the latest (ms). */
  @IsOptional() @IsInt() @Min(0) overlapMs: number = 600_000;
  /** webhook → socket: how long the request waits for `connected` before answering 202 (ms). */
  @IsOptional() @IsInt() @Min(0) @Max(120_000) connectWaitMs: number = 30_000;
}

/** A token bucket: `perSecond` refill, `burst` capacity. */
export class RateLimitConfig {
  @IsOptional() @IsInt() @Min(1) perSecond: number = 50;
  @IsOptional() @IsInt() @Min(1) burst: number = 100;
}

/** The live event stream of socket.io subscribers (`subscribe` → `event`). */
export class StreamConfig {
  /** A subscriber with more events than this waiting to be written to its socket is disconnected (`slow_consumer`). */
  @IsOptional() @IsInt() @Min(1) @Max(1_000_000) maxBufferedEvents: number = 1000;
  /** The same in bytes (characters of the encoded messages); at least the largest event, or every subscriber of one is cut off. */
  @IsOptional() @IsInt() @Min(64 * 1024) @Max(1024 * 1024 * 1024) maxBufferedBytes: number = 4 * 1024 * 1024;
  /** Type globs in one subscription, and in one webhook's `types`. */
  @IsOptional() @IsInt() @Min(1) @Max(10_000) maxPatterns: number = 50;
  /** Characters of one type glob (subscriptions and webhook `types`). */
  @IsOptional() @IsInt() @Min(1) @Max(10_000) maxPatternLength: number = 200;
  /** Subscribed sockets per API token; past it `subscribe` is acked 429. */
  @IsOptional() @IsInt() @Min(1) @Max(100_000) maxSubscribersPerToken: number = 100;
  /** Subscribed sockets in all; past it `subscribe` is acked 503. */
  @IsOptional() @IsInt() @Min(1) @Max(100_000) maxSubscribers: number = 500;
}

/** Failed authentications from one address: `maxFailures` within `windowMs` block it for `windowMs` (0 = off). */
export class AuthFailuresConfig {
  @IsOptional() @IsInt() @Min(0) maxFailures: number = 20;
  @IsOptional() @IsInt() @Min(1000) windowMs: number = 60_000;
  /** Addresses remembered at once (least recently failing forgotten first). */
  @IsOptional() @IsInt() @Min(100) maxAddresses: number = 10_000;
}

/** The authenticated API (`/v1/*` and the socket.io namespace `/v1`). */
export class ApiConfig {
  /** Largest JSON request body (bytes); larger bodies get 413. `/v1/inbound/*` has its per-channel limit. */
  @IsOptional() @IsInt() @Min(1024) @Max(64 * 1024 * 1024) maxBodyBytes: number = 256 * 1024;
  /** Per bearer token, over HTTP and socket.io together; beyond it 429. */
  @IsOptional() @ValidateNested() @Type(() => RateLimitConfig) rateLimit: RateLimitConfig = new RateLimitConfig();
  @IsOptional() @ValidateNested() @Type(() => StreamConfig) stream: StreamConfig = new StreamConfig();
  /** Failed authentications per caller address (HTTP, socket.io, inbound); beyond it 429 for a window. */
  @IsOptional() @ValidateNested() @Type(() => AuthFailuresConfig) authFailures: AuthFailuresConfig = new AuthFailuresConfig();
  /**
   * How long an idle keep-alive connection of the HTTP server stays open (Node 20 to 24 default to 5 s). Above the idle
   * timeout of a load balancer or ingress in front (60 s for most), so that it never reuses a connection the bridge
   * just closed (a 502), and long enough that a caller's pool keeps its connections between bursts: new connections
   * under load are accepted one per event-loop turn.
   */
  @IsOptional() @IsInt() @Min(1000) keepAliveTimeoutMs: number = 65_000;
}

/** Retry schedule of commands whose upstream surely did not act (connect refused, 5xx, socket not open). */
export class CommandRetryConfig {
  @IsOptional() @IsInt() @Min(1) initialDelayMs: number = 500;
  @IsOptional() @IsInt() @Min(1) maxDelayMs: number = 10_000;
  @IsOptional() @Min(1) multiplier: number = 2;
  /** Most upstream attempts of one command. */
  @IsOptional() @IsInt() @Min(1) @Max(100) maxAttempts: number = 6;
}

/** The command gateway (docs/commands.md). */
export class CommandsConfig {
  /** A command not `sent` this long after it was accepted ends `failed` (`deadline_exceeded`), held or retrying (ms). */
  @IsOptional() @IsInt() @Min(100) deadlineMs: number = 120_000;
  /** After an ambiguous failure (timeout after the send), how long to wait for the upstream's echo (ms). */
  @IsOptional() @IsInt() @Min(100) echoTimeoutMs: number = 30_000;
  /** Unfinished commands per channel (held, queued, retrying); beyond it new ones get 503. */
  @IsOptional() @IsInt() @Min(1) maxPendingPerChannel: number = 1000;
  /** Commands the in-memory ledger keeps (the Kafka ledger keeps every one; memory keeps the newest this many). */
  @IsOptional() @IsInt() @Min(100) ledgerMaxEntries: number = 100_000;
  /** How long a command is remembered for repeats and `GET /v1/commands/:id` (ms). */
  @IsOptional() @IsInt() @Min(60_000) ledgerTtlMs: number = 24 * 3600_000;
  /**
   * Deepest nesting of a command body (the body is level 1, `metadata: {}` level 2), checked before validation on
   * every door; deeper is a 400. Capped well below what the validator's recursion can take.
   */
  @IsOptional() @IsInt() @Min(2) @Max(256) maxDepth: number = 32;
  @IsOptional() @ValidateNested() @Type(() => CommandRetryConfig) retry: CommandRetryConfig = new CommandRetryConfig();
}

/**
 * Several replicas sharing the channels (docs/operations.md). Each channel belongs to the partition of `topics.commands` its id
 * hashes to (Kafka's default partitioner); the replicas join one consumer group on that topic
 * (`kafka.consumer.commandGroup`), and the member assigned a partition holds the upstream connections of its
 * channels and executes their commands. Requires `kafka`.
 */
export class ClusterConfig {
  @IsOptional() @Transform(toBool) @IsBoolean() enabled = false;
  /** A replica silent this long leaves the group and its channels move (ms); also how long a replica that gets no assignment at start while Kafka is unreachable waits before it holds every channel. */
  @IsOptional() @IsInt() @Min(3000) @Max(300_000) sessionTimeoutMs: number = 10_000;
  /** Heartbeat period; a rebalance reaches each replica within about one period (ms). */
  @IsOptional() @IsInt() @Min(100) @Max(60_000) heartbeatIntervalMs: number = 1000;
  /** Longest time the group waits for every replica to rejoin during a rebalance (ms). */
  @IsOptional() @IsInt() @Min(1000) @Max(600_000) rebalanceTimeoutMs: number = 30_000;
  /**
   * Make before break: a replica that loses a channel in a rebalance, or leaves the group on SIGTERM, keeps the
   * channel's socket this much longer, so the replica taking it over connects first; events both receive share their
   * ids (ms). On SIGTERM within `shutdownGraceMs`.
   */
  @IsOptional() @IsInt() @Min(0) @Max(300_000) handoverOverlapMs: number = 5000;
}

/**
 * Fields every channel has; the provider block is validated by the provider's own options class and the
 * `inbound` block (InboundAuthConfig) by the loader, which also knows whether the provider can take webhooks.
 */
export class ChannelBaseConfig {
  @IsDefined() @IsString() @Matches(/^[a-z0-9-]{1,64}$/, { message: 'must match [a-z0-9-]{1,64}' }) id!: string;
  /** One of the registry's providers (src/connectors/registry.ts); the loader checks it there and names them. */
  @IsDefined() @IsString() provider!: string;
  @IsOptional() @IsIn(['socket', 'webhook']) mode: 'socket' | 'webhook' = 'socket';
}

/** The file's shape; `channels` are checked separately (two-phase, see config.loader.ts). */
export class FileConfig {
  @IsOptional() @ValidateNested() @Type(() => KafkaConfig) kafka?: KafkaConfig;
  @IsOptional() @ValidateNested() @Type(() => ReconnectConfig) reconnect: ReconnectConfig = new ReconnectConfig();
  @IsOptional() @ValidateNested() @Type(() => DedupeConfig) dedupe: DedupeConfig = new DedupeConfig();
  @IsOptional() @ValidateNested() @Type(() => DeadLetterConfig) deadLetter: DeadLetterConfig = new DeadLetterConfig();
  @IsOptional() @ValidateNested() @Type(() => LimitsConfig) limits: LimitsConfig = new LimitsConfig();
  /** Directory of small durable per-channel state (e.g. Smartsupp visitor ids). */
  @IsOptional() @IsString() stateDir = './.data/state';
  /** Time allowed on SIGTERM to flush in-flight work before exit (ms); keep below terminationGracePeriodSeconds. */
  @IsOptional() @IsInt() @Min(0) shutdownGraceMs: number = 20_000;
  @IsOptional() @ValidateNested() @Type(() => ModeSwitchConfig) modeSwitch: ModeSwitchConfig = new ModeSwitchConfig();
  @IsOptional() @ValidateNested() @Type(() => ApiConfig) api: ApiConfig = new ApiConfig();
  @IsOptional() @ValidateNested() @Type(() => CommandsConfig) commands: CommandsConfig = new CommandsConfig();
  @IsOptional() @ValidateNested() @Type(() => ClusterConfig) cluster: ClusterConfig = new ClusterConfig();
  /** Outbound webhook endpoints (docs/configuration.md, docs/webhooks.md); each block is checked by WebhookConfig, ids for uniqueness in the loader. */
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => WebhookConfig) webhooks: WebhookConfig[] = [];
  @IsOptional() @IsArray() channels: unknown[] = [];
}
