import { ArrayUnique, IsArray, IsDefined, IsInt, IsOptional, IsString, IsUrl, Min, MinLength, ValidateIf } from 'class-validator';

/** `channels[].jwt-websocket` (docs/configuration.md; docs/providers.md#jwt-websocket). */
export class JwtWebSocketOptions {
  /** Socket endpoint, e.g. `wss://api.example.com/api/ws` (ws/wss/http/https; http(s) is upgraded as ws(s)). */
  @IsDefined() @IsUrl({ protocols: ['http', 'https', 'ws', 'wss'], require_tld: false, require_protocol: true }) url!: string;
  /** Static JWT sent as `?token=`; required unless `tokenFile` or `tokenUrl` supplies one. */
  @ValidateIf((o: JwtWebSocketOptions) => o.tokenFile === undefined && o.tokenUrl === undefined)
  @IsDefined({ message: 'token: required unless tokenFile or tokenUrl is set' })
  @IsString()
  @MinLength(1)
  token?: string;
  /** File holding the JWT (e.g. a mounted Kubernetes Secret), re-read at every connect. */
  @IsOptional() @IsString() @MinLength(1) tokenFile?: string;
  /** URL answering GET with the JWT (plain text or `{"token": "…"}`), fetched at every connect. */
  @IsOptional() @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true }) tokenUrl?: string;
  /** Channels subscribed after every connect, e.g. `conversation:conv-123`. */
  @IsOptional() @IsArray() @ArrayUnique() @IsString({ each: true }) @MinLength(1, { each: true }) subscribe: string[] = [];
  /** Interval between `ping` frames (ms). */
  @IsOptional() @IsInt() @Min(50) pingIntervalMs: number = 25_000;
  /** A socket that sends no frame at all this long after a ping is dead (ms). */
  @IsOptional() @IsInt() @Min(50) pongTimeoutMs: number = 10_000;
  /** Time allowed for one connection attempt: token, upgrade and the first frame (ms). */
  @IsOptional() @IsInt() @Min(100) connectTimeoutMs: number = 10_000;
  /** Attempts per failed subscription on one connection; unset = retry until the connection ends. */
  @IsOptional() @IsInt() @Min(1) subscribeRetryMaxAttempts?: number;
  /** The service never acks a subscribe: no error frame within this window counts as success (ms). */
  @IsOptional() @IsInt() @Min(0) subscribeConfirmMs: number = 2_000;
  /** With a token source, reconnect with a fresh token this long before the current one's `exp` (ms). */
  @IsOptional() @IsInt() @Min(0) tokenRefreshMarginMs: number = 60_000;
}
