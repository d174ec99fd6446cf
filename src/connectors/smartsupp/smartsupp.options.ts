import { IsDefined, IsInt, IsOptional, IsString, IsUrl, Matches, Max, Min, MinLength } from 'class-validator';

/** `channels[].smartsupp` (docs/configuration.md). One visitor socket per conversation, all under one account key. */
export class SmartsuppOptions {
  /** Visitor websocket server (Engine.IO 3 / socket.io 2.x), e.g. `https://websocket-visitors.smartsupp.com`. */
  @IsOptional() @IsUrl({ protocols: ['http', 'https', 'ws', 'wss'], require_tld: false, require_protocol: true }) url = 'https://websocket-visitors.smartsupp.com';
  /** Account key (`__SMARTSUPP_ACCOUNT_KEY__`), sent as `key` in every `visitor.connect`. */
  @IsDefined() @IsString() @MinLength(1) key!: string;
  /** socket.io path on the server. */
  @IsOptional() @IsString() @Matches(/^\//, { message: 'must start with "/"' }) path = '/socket';
  /** Time allowed for the socket to open (ms). */
  @IsOptional() @IsInt() @Min(100) connectTimeoutMs: number = 10_000;
  /** Time allowed for an acknowledgement (`visitor.connect`, `chat.message`, …) (ms). */
  @IsOptional() @IsInt() @Min(100) ackTimeoutMs: number = 10_000;
  /** `pageUrl` reported in `visitor.connect` (the SDK sends the browser page; null outside a browser). */
  @IsOptional() @IsString() pageUrl?: string;
  /** `pageTitle` reported in `visitor.connect`. */
  @IsOptional() @IsString() pageTitle?: string;
  /** `referer` reported in `visitor.connect`. */
  @IsOptional() @IsString() referer?: string;
  /** `domain` reported in `visitor.connect`. */
  @IsOptional() @IsString() domain?: string;
  /** `bundleVersion` reported in `visitor.connect`; the SDK sends `Websocket SDK 1.2.2`. */
  @IsOptional() @IsString() bundleVersion = 'Websocket SDK 1.2.2';
  /** Visitor sockets opened at once when a channel (re)starts, so a restart does not storm the server. */
  @IsOptional() @IsInt() @Min(1) @Max(10_000) startConcurrency: number = 100;
  /** Most visitors of the channel (each a socket, ~15 KB heap); `conversation.start` beyond it is refused. */
  @IsOptional() @IsInt() @Min(1) @Max(1_000_000) maxVisitors: number = 5_000;
  /** A visitor with no frame and no command for this long expires: socket closed, record removed (ms). */
  @IsOptional() @IsInt() @Min(100) @Max(2_147_483_647) visitorIdleMs: number = 86_400_000;
  /** A visitor whose chat closed (or was deleted) expires this long after, unless a new message reopens it (ms). */
  @IsOptional() @IsInt() @Min(0) @Max(2_147_483_647) closedVisitorGraceMs: number = 60_000;
}
