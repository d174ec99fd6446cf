import { Transform } from 'class-transformer';
import { ArrayUnique, IsArray, IsDefined, IsInt, IsOptional, IsString, IsUrl, Min, MinLength } from 'class-validator';

/**
 * `channels[].watchers` (docs/configuration.md): one Watchers.io bot on one regional server.
 *
 * There is deliberately no region setting: the two Watchers docs pages disagree on the region hosts
 * (the "Bot post-message API" page swaps South America `bot.sa` and Asia `bot.hk` and omits Africa
 * `bot.za`; the "Bot REST API" page is the consistent one), so the exact URL is configured per channel.
 * Known hosts: EU (default) `wss://bot.watchers.io`, NA `wss://bot.us.watchers.io`,
 * SA (Santiago) `wss://bot.sa.watchers.io`, Asia (Hong Kong) `wss://bot.hk.watchers.io`,
 * Africa `wss://bot.za.watchers.io`. Check the project's region in the Watchers Admin panel.
 */
export class WatchersOptions {
  /** socket.io server URL, e.g. `wss://bot.watchers.io` (http/https/ws/wss); a path in it is the socket.io namespace. */
  @IsDefined() @IsUrl({ protocols: ['http', 'https', 'ws', 'wss'], require_tld: false, require_protocol: true }) url!: string;
  /** Bearer token (JWT) from the Admin panel, sent as the socket.io handshake `auth: { bearer }`. */
  @IsDefined() @IsString() @MinLength(1) bearer!: string;
  /** Project API key (Admin → Settings → APIKey), sent in every `external/*` emit. */
  @IsDefined() @IsString() @MinLength(1) apiKey!: string;
  /** The bot's id (Admin panel "Bot ID"): sender of `external/send`; messages from it are the bot's own echoes. */
  @IsDefined() @IsString() @MinLength(1) userId!: string;
  /** Rooms listened to (`external/listen`) after every connect; `room.listen` commands add more at runtime. */
  // Room ids look numeric ("144444"); unquoted YAML numbers are taken as the same strings.
  @IsOptional() @Transform(({ value }: { value: unknown }) => (Array.isArray(value) ? value.map((v) => (typeof v === 'number' ? String(v) : v)) : value)) @IsArray() @ArrayUnique() @IsString({ each: true }) rooms: string[] = [];
  /**
   * Base URL of the Bot REST API, e.g. `https://bot.watchers.io` (same region as `url`). When set,
   * `message.send` uses `POST <restUrl>/api/bot/sendMessage` in webhook mode and while the socket is down.
   */
  @IsOptional() @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true }) restUrl?: string;
  /** socket.io path on the server. */
  @IsOptional() @IsString() path = '/socket.io';
  /** Time allowed for one connection attempt, handshake and auth included (ms). */
  @IsOptional() @IsInt() @Min(100) connectTimeoutMs: number = 10_000;
  /** Time to wait for the ack of an `external/listen` or `external/send`, and for a REST answer (ms). */
  @IsOptional() @IsInt() @Min(100) ackTimeoutMs: number = 10_000;
}
