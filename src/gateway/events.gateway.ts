import { Inject } from '@nestjs/common';
import {
  ConnectedSocket, MessageBody, type OnGatewayDisconnect, type OnGatewayInit, SubscribeMessage, WebSocketGateway,
} from '@nestjs/websockets';
import type { Logger } from 'pino';
import type { Namespace, Socket } from 'socket.io';
import { ChannelRuntime } from '../channels/channel-runtime';
import { CommandService } from '../commands/command.service';
import { commandErrorBody, CommandRequestError, type SubmitResult } from '../commands/command.types';
import { API_RATE_LIMITER, API_TOKENS } from '../common/api-auth.guard';
import { apiError, NO_API_TOKENS, rateLimitError } from '../common/api-error';
import { authFailuresHandshakeError } from '../common/auth-failures';
import { describeError } from '../common/errors';
import { APP_CONFIG, ROOT_LOGGER } from '../common/injection';
import { AuthFailureLimiter, TokenRateLimiter } from '../common/rate-limit';
import { TokenSet } from '../common/token-match';
import type { AppConfig } from '../config/config.loader';
import { Metrics } from '../health/metrics';
import { EventStream } from './event-stream';
import { type ErrorAck, HandshakeError } from './gateway-errors';
import { parseSubscription, type Subscription, SubscriptionError } from './subscription';

/** A socket of the `/v1` namespace; `data.token` is the API token it authenticated with. */
type ApiSocket = Socket<Record<string, never>, Record<string, never>, Record<string, never>, { token?: string }>;

/** The ack of `subscribe` / `unsubscribe`: what the socket now receives (omitted list = all). */
export interface SubscribeAck {
  subscribed: Subscription | null;
}

/**
 * The socket.io API, namespace `/v1` on the HTTP server's port: the handshake authenticates with
 * `auth: {token}` (the tokens of CHATBRIDGE_API_TOKENS, as on HTTP); `command` goes to the command service like
 * `POST /v1/channels/:id/commands`; `subscribe` / `unsubscribe` set what the live event stream sends as `event`.
 * Every refusal is acked with the HTTP error JSON; nothing thrown reaches the client as a Nest `exception`.
 */
@WebSocketGateway({ namespace: '/v1' })
export class EventsGateway implements OnGatewayInit<Namespace>, OnGatewayDisconnect<ApiSocket> {
  private readonly tokens: TokenSet;
  private readonly log: Logger;

  constructor(
    @Inject(API_TOKENS) tokens: string[],
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) log: Logger,
    @Inject(AuthFailureLimiter) private readonly authFailures: AuthFailureLimiter,
    @Inject(API_RATE_LIMITER) private readonly rateLimiter: TokenRateLimiter,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(CommandService) private readonly commands: CommandService,
    @Inject(EventStream) private readonly stream: EventStream,
    @Inject(ChannelRuntime) private readonly channels: ChannelRuntime,
  ) {
    this.tokens = new TokenSet(tokens);
    this.log = log.child({ context: 'gateway' });
  }

  afterInit(namespace: Namespace): void {
    namespace.use((socket: ApiSocket, next) => {
      // Failed handshakes count against the address like HTTP 401s (api.authFailures).
      const { address } = socket.handshake;
      const wait = this.authFailures.check(address);
      if (!wait.ok) {
        this.metrics.refused.inc({ origin: 'socket.io', reason: 'auth_failures' });
        return next(authFailuresHandshakeError(wait.retryAfterMs));
      }
      try {
        socket.data.token = this.authenticate(socket.handshake.auth);
        next();
      } catch (err) {
        if (err instanceof HandshakeError && err.data.statusCode === 401) this.authFailures.fail(address);
        this.log.info({ address, reason: describeError(err) }, 'socket.io connection refused');
        next(err instanceof Error ? err : new Error(describeError(err)));
      }
    });
  }

  handleDisconnect(socket: ApiSocket): void {
    this.stream.unsubscribe(socket.id);
  }

  /** `command` (docs/api.md body plus `channelId`) → ack the HTTP 202 body `{commandId, channelId, status, duplicate}` or `{error}`. */
  @SubscribeMessage('command')
  async command(@ConnectedSocket() socket: ApiSocket, @MessageBody() body: unknown): Promise<SubmitResult | ErrorAck> {
    const rate = this.rateLimiter.take(socket.data.token ?? '');
    if (!rate.ok) {
      return { error: rateLimitError(rate.retryAfterMs) };
    }
    try {
      return await this.commands.submit(body, { door: 'socket.io' });
    } catch (err) {
      if (err instanceof CommandRequestError) return { error: commandErrorBody(err) };
      this.log.error({ err: describeError(err) }, 'socket.io command failed');
      return { error: apiError(500, 'the command could not be taken; try again') };
    }
  }

  /**
   * `subscribe` `{channels?, types?}` → replaces the socket's filter; ack `{subscribed}`, or `{error}` (400 with
   * details, 429 past the token's subscribers, 503 past all subscribers), counted in `chatbridge_refused_total`.
   */
  @SubscribeMessage('subscribe')
  subscribe(@ConnectedSocket() socket: ApiSocket, @MessageBody() body: unknown): SubscribeAck | ErrorAck {
    try {
      const subscription = parseSubscription(body, (id) => this.channels.get(id) !== undefined, this.config.api.stream);
      this.stream.subscribe(socket, subscription, socket.data.token ?? '');
      return { subscribed: subscription };
    } catch (err) {
      if (err instanceof SubscriptionError) {
        this.metrics.refused.inc({ origin: 'stream', reason: err.reason });
        return { error: apiError(err.statusCode, err.message, err.details ? { details: err.details } : {}) };
      }
      this.log.error({ err: describeError(err) }, 'socket.io subscribe failed');
      return { error: apiError(500, 'the subscription could not be set; try again') };
    }
  }

  /** `unsubscribe` → no more `event` messages; ack `{subscribed: null}`. */
  @SubscribeMessage('unsubscribe')
  unsubscribe(@ConnectedSocket() socket: ApiSocket): SubscribeAck {
    this.stream.unsubscribe(socket.id);
    return { subscribed: null };
  }

  /** The token of a handshake's `auth`, or a HandshakeError (401) saying what is wrong. */
  private authenticate(auth: Record<string, unknown> | undefined): string {
    if (!this.tokens.size) throw new HandshakeError(401, NO_API_TOKENS);
    const token = auth?.token;
    if (typeof token !== 'string' || !token) throw new HandshakeError(401, 'missing token: connect with auth: {token: "<API token>"}');
    if (!this.tokens.matchesAny([token])) throw new HandshakeError(401, 'invalid token');
    return token;
  }
}
