import { Transform } from 'class-transformer';
import { toBool } from '../../config/config.schema';
import { IsBoolean, IsDefined, IsIn, IsInt, IsOptional, IsString, IsUrl, Max, Min, ValidateIf } from 'class-validator';

/** `channels[].captivate` (docs/configuration.md; docs/providers.md#captivate). */
export class CaptivateOptions {
  /** Socket URL, e.g. `wss://channel.wss.captivatechat.ai` (the SDK adds the `/dev` stage path). */
  @IsDefined() @IsUrl({ protocols: ['ws', 'wss', 'http', 'https'], require_tld: false, require_protocol: true }) url!: string;
  /** Channel API key; sent as a query parameter on the socket and as `x-api-key` over HTTP. */
  @IsDefined() @IsString() apiKey!: string;
  /** Query parameter name: the manual says `apikey`, the SDK sends `apiKey`. */
  @IsOptional() @IsIn(['apikey', 'apiKey']) apiKeyParam: 'apikey' | 'apiKey' = 'apikey';
  /** HTTP API base (v5+ transport, transcripts), e.g. `https://channel.prod.captivat.io`. Required for `sendVia: http`. */
  @ValidateIf((o: CaptivateOptions) => o.sendVia === 'http' || o.httpUrl !== undefined)
  @IsDefined({ message: 'httpUrl: required when sendVia is http' })
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  httpUrl?: string;
  /** Where commands go in socket mode; webhook mode always uses HTTP. */
  @IsOptional() @IsIn(['socket', 'http']) sendVia: 'socket' | 'http' = 'socket';
  /** Time allowed from opening the socket to `socket_connected` (ms). */
  @IsOptional() @IsInt() @Min(100) connectTimeoutMs: number = 10_000;
  /** App-level keepalive period (ms); must stay under API Gateway's 10-minute idle timeout. */
  @IsOptional() @IsInt() @Min(10) @Max(599_999) keepaliveMs: number = 300_000;
  /** Planned reconnect after this connection age (ms); API Gateway closes at 2 h. */
  @IsOptional() @IsInt() @Min(100) @Max(7_200_000) maxConnectionAgeMs: number = 110 * 60_000;
  /** After every connect, ask each recent conversation for its transcript over the new socket (HTTP as the fallback) and publish missed replies. */
  @IsOptional() @Transform(toBool) @IsBoolean() transcriptOnReconnect: boolean = true;
  /** Time allowed for a command's upstream reply or HTTP answer (ms). */
  @IsOptional() @IsInt() @Min(100) commandTimeoutMs: number = 10_000;
  /** How many recently seen conversations are remembered (and gap-filled after a connect); in a cluster, in the state topic. */
  @IsOptional() @IsInt() @Min(0) @Max(100_000) recentConversations: number = 1000;
}
