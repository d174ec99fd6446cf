import { IsDefined, IsInt, IsOptional, IsString, IsUrl, Matches, Min } from 'class-validator';

/** `channels[].zapthinker` (docs/configuration.md). */
export class ZapThinkerOptions {
  /** Server base URL, e.g. `https://api.zapthinker.com` (http/https/ws/wss). */
  @IsDefined() @IsUrl({ protocols: ['http', 'https', 'ws', 'wss'], require_tld: false, require_protocol: true }) url!: string;
  /** Instance name; the socket joins namespace `/<instance>`. */
  @IsDefined() @IsString() @Matches(/^[^/\s]+$/, { message: 'must not contain "/" or spaces' }) instance!: string;
  /** Instance token or global API key (`apikey`). */
  @IsDefined() @IsString() apiKey!: string;
  /** socket.io path on the server. */
  @IsOptional() @IsString() path = '/socket.io';
  /** Time allowed for one connection attempt (ms). */
  @IsOptional() @IsInt() @Min(100) connectTimeoutMs: number = 10_000;
  /** Time allowed for one REST command (`sendText`) to answer (ms); plus the command's own `delay`. */
  @IsOptional() @IsInt() @Min(100) commandTimeoutMs: number = 15_000;
}
