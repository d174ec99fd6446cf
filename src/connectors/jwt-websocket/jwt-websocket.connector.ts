import type { Logger } from 'pino';
import WebSocket, { type RawData } from 'ws';
import type { IncomingMessage } from 'node:http';
import { CommandError, ConnectorError, describeError } from '../../common/errors';
import { redactText } from '../../common/redact';
import type { CommandOutcome, Connector, ConnectorContext, ConnectorHooks, UpstreamCommand } from '../connector.interface';
import { HandshakeRefusal, networkError, refusalError, type ConnectErrorRules } from '../connect-error';
import { commandChannel, pingFrame, readErrorFrame, type ClientFrame } from './jwt-websocket.commands';
import type { JwtWebSocketOptions } from './jwt-websocket.options';
import { Subscriptions } from './jwt-websocket.subscriptions';
import { jwtExpiry, tokenSourceFor, type TokenSource } from './jwt-websocket.token';

/** Longest delay a Node timer accepts; later refreshes are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Raw RFC 6455 client for the Zyeta-style JWT WebSocket service (`<url>?token=<JWT>`, docs/providers.md#jwt-websocket).
 * Never reconnects by itself: every failure ends in a rejected connect() or one `lost` for the supervisor.
 * A `ws` socket cannot be reopened, so each attempt creates one and registers its listeners once, at
 * creation; events of an older socket are ignored.
 */
export class JwtWebSocketConnector implements Connector {
  private readonly options: JwtWebSocketOptions;
  /** Largest frame the client buffers (see ConnectorContext.maxPayloadBytes); undefined: the ws default. */
  private readonly maxPayload?: number;
  private readonly hooks: ConnectorHooks;
  private readonly log: Logger;
  private readonly tokens: TokenSource;
  private readonly subs: Subscriptions;
  private socket?: WebSocket;
  private pending?: { resolve: () => void; reject: (e: ConnectorError) => void; timer: NodeJS.Timeout };
  private closing = false;
  private refreshAt?: Date;
  private pingTimer?: NodeJS.Timeout;
  private silenceTimer?: NodeJS.Timeout;
  private refreshTimer?: NodeJS.Timeout;

  constructor(ctx: ConnectorContext<JwtWebSocketOptions>) {
    this.options = ctx.options;
    this.maxPayload = ctx.maxPayloadBytes;
    this.hooks = ctx.hooks;
    this.log = ctx.logger;
    this.tokens = tokenSourceFor(ctx.options);
    const retry = {
      backoff: ctx.policy.backoff,
      refusedBackoff: ctx.policy.authBackoff,
      maxAttempts: ctx.options.subscribeRetryMaxAttempts,
      failed: (channel: string, error: ConnectorError, retryInMs: number | undefined) => ctx.hooks.subscriptionFailed?.(channel, error, retryInMs),
    };
    this.subs = new Subscriptions(ctx.options.subscribe, (f) => this.send(f), retry, ctx.logger);
  }

  connect(): Promise<void> {
    this.closing = false;
    this.drop();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new ConnectorError('connect_timeout', `no confirmation from the upstream within ${this.options.connectTimeoutMs} ms`, { retriable: true })), this.options.connectTimeoutMs);
      const attempt = { resolve, reject, timer };
      this.pending = attempt;
      this.tokens
        .get()
        .then((token) => this.pending === attempt && this.open(token))
        .catch((err: unknown) => this.pending === attempt && this.fail(err instanceof ConnectorError ? err : new ConnectorError('connect_failed', redactText(describeError(err)), { retriable: true, cause: err })));
    });
  }

  /** Sends `subscribe` for every configured and listened channel; the service acks nothing, failures arrive as error frames. */
  subscribe(): Promise<void> {
    return this.subs.resubscribeAll();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.fail(new ConnectorError('closed', 'connector closed', { retriable: false }));
    this.drop(1000, 'client closing');
  }

  /**
   * `room.listen` / `room.unlisten` (the channel runtime refuses other types): `subscribe` / `unsubscribe` frames,
   * confirmed by a quiet window without an error frame.
   */
  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    const channel = commandChannel(command);
    const confirmMs = this.options.subscribeConfirmMs;
    if (command.type === 'room.listen') await this.subs.listen(channel, confirmMs);
    else await this.subs.unlisten(channel, confirmMs);
    return { result: { channel, subscriptions: this.subs.channels } };
  }

  private open(token: string): void {
    this.refreshAt = this.planRefresh(token);
    const url = new URL(this.options.url);
    url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
    url.searchParams.set('token', token);
    const socket = new WebSocket(url, { handshakeTimeout: this.options.connectTimeoutMs, perMessageDeflate: false, ...(this.maxPayload ? { maxPayload: this.maxPayload } : {}) });
    this.socket = socket;
    const current = () => this.socket === socket;
    // An upgrade answer other than 101: its status says whether the token was refused.
    socket.on('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume();
      if (current()) this.fail(refusalError(new HandshakeRefusal(res.statusCode ?? 0, ''), JWT_WEBSOCKET_REFUSALS));
    });
    // The service only talks after the upgrade; a ping it answers (with anything but `unauthorized`) confirms the session.
    socket.on('open', () => current() && this.sendRaw(socket, pingFrame()));
    socket.on('message', this.hooks.guard('message', (data: RawData) => current() && this.onMessage(socket, rawText(data))));
    socket.on('ping', () => current() && this.alive());
    socket.on('pong', () => current() && this.alive());
    socket.on('error', (err: Error) => {
      if (current() && this.pending) this.fail(networkError(err));
    });
    socket.on('close', (code: number, reason: Buffer) => current() && this.onClose(code, reason.toString('utf8')));
  }

  private onMessage(socket: WebSocket, text: string): void {
    this.alive();
    let frame: unknown = text;
    try {
      frame = JSON.parse(text);
    } catch {
      // Not JSON: published as a malformed provider event by the mapper.
    }
    const type = typeof frame === 'object' && frame !== null && 'type' in frame && typeof frame.type === 'string' ? frame.type : undefined;
    if (type !== 'pong') this.hooks.frame({ event: type ?? 'message', payload: frame });
    const error = readErrorFrame(frame);
    // `unauthorized` naming a channel refuses that subscription (insufficient permissions), not the token.
    if (error?.code === 'unauthorized' && !error.channel) {
      const err = new ConnectorError('unauthorized', `upstream refused the token: ${error.message ?? 'unauthorized'}`, { retriable: true, authFailure: true });
      if (this.pending) this.fail(err);
      else this.lose(socket, err);
      return;
    }
    if (this.pending) this.confirm();
    if (error) this.subs.onError(error);
  }

  private onClose(code: number, reason: string): void {
    if (this.pending) {
      this.fail(closeError(code, reason, true));
      return;
    }
    const socket = this.socket;
    if (socket) this.lose(socket, closeError(code, reason, false));
  }

  private confirm(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    this.pingTimer = setInterval(() => this.ping(), this.options.pingIntervalMs);
    if (this.refreshAt) this.armRefresh(this.refreshAt);
    p.resolve();
  }

  /** Rejects a pending connect and discards its socket; no `lost` follows. */
  private fail(err: ConnectorError): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    this.drop();
    p.reject(err);
  }

  /** The live connection ended: discard it and tell the supervisor once. */
  private lose(socket: WebSocket, err: ConnectorError, graceful = false): void {
    if (socket !== this.socket) return;
    this.drop(graceful ? 1000 : undefined, graceful ? err.code : undefined);
    if (this.closing) return;
    (err.planned ? this.log.info : this.log.warn).call(this.log, { code: err.code }, `jwt-websocket connection ended: ${err.message}`);
    this.hooks.lost(err);
  }

  /** Forgets the current socket (so its late events are ignored) and closes it: cleanly with a code, else at once. */
  private drop(code?: number, reason?: string): void {
    const socket = this.socket;
    this.socket = undefined;
    this.stopTimers();
    this.subs.reset();
    if (!socket) return;
    if (code !== undefined && socket.readyState === WebSocket.OPEN) socket.close(code, reason);
    else socket.terminate();
  }

  private ping(): void {
    const socket = this.socket;
    if (!socket) return;
    this.sendRaw(socket, pingFrame());
    // Silence, not a missing pong, is what marks a half-open socket dead: any frame re-arms this.
    this.silenceTimer ??= setTimeout(() => {
      this.silenceTimer = undefined;
      this.lose(socket, new ConnectorError('silent', `no frame within ${this.options.pongTimeoutMs} ms of a ping`, { retriable: true }));
    }, this.options.pongTimeoutMs);
  }

  private alive(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = undefined;
  }

  /** When to reconnect with a fresh token; undefined when the token has no `exp` or cannot be refreshed. */
  private planRefresh(token: string): Date | undefined {
    const exp = jwtExpiry(token);
    if (!exp) return undefined;
    const at = new Date(exp.getTime() - this.options.tokenRefreshMarginMs);
    if (at.getTime() > Date.now()) return this.tokens.refreshable ? at : undefined;
    if (!this.tokens.refreshable) {
      this.log.warn({ expiresAt: exp.toISOString() }, 'the jwt-websocket token expires soon and cannot be refreshed: set tokenFile or tokenUrl');
      return undefined;
    }
    // Refreshing at once would loop on a source that has nothing newer: use this token up to its exp instead.
    const expired = exp.getTime() <= Date.now();
    this.log.warn({ expiresAt: exp.toISOString() }, expired ? 'the token source returned an expired token' : 'the token source returned a token that expires within the refresh margin');
    return expired ? undefined : exp;
  }

  private armRefresh(at: Date): void {
    const socket = this.socket;
    if (!socket) return;
    const delay = at.getTime() - Date.now();
    this.refreshTimer = setTimeout(() => {
      if (socket !== this.socket) return;
      if (delay > MAX_TIMER_MS) return this.armRefresh(at);
      this.lose(socket, new ConnectorError('token_refresh', 'token expires soon; reconnecting with a fresh one', { retriable: true, planned: true }), true);
    }, Math.max(0, Math.min(delay, MAX_TIMER_MS)));
    this.refreshTimer.unref?.();
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.silenceTimer);
    clearTimeout(this.refreshTimer);
    this.pingTimer = this.silenceTimer = this.refreshTimer = undefined;
  }

  private send(frame: ClientFrame): Promise<void> {
    const socket = this.socket;
    if (!socket || this.pending || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new CommandError('not_connected', 'jwt-websocket channel is not connected', { retriable: true, sent: false }));
    }
    return new Promise<void>((resolve, reject) => {
      socket.send(JSON.stringify(frame), (err) => (err ? reject(new CommandError('send_failed', describeError(err), { retriable: true, sent: false, cause: err })) : resolve()));
    });
  }

  private sendRaw(socket: WebSocket, frame: ClientFrame): void {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame), () => undefined);
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

/** How a refused upgrade reads: 401/403 refuse the token; 404 is a wrong URL, retried at the slowest pace rather than hammered. */
export const JWT_WEBSOCKET_REFUSALS: ConnectErrorRules = {
  credential: 'token',
  authStatuses: [401, 403],
  wrongUrlStatuses: [404],
};

/**
 * A close. During the handshake phase a policy close (1008, or the 4401/4403 custom codes some JWT servers use)
 * means the token was refused; elsewhere a close is an ordinary, retriable loss.
 */
export function closeError(code: number, reason: string, connecting: boolean): ConnectorError {
  const detail = `${code}${reason ? ` ${redactText(reason)}` : ''}`;
  if (connecting && (code === 1008 || code === 4401 || code === 4403)) {
    return new ConnectorError('auth_rejected', `upstream closed the connection while authenticating (${detail})`, { retriable: true, authFailure: true });
  }
  return new ConnectorError(connecting ? 'closed_while_connecting' : 'disconnected', `socket closed (${detail})`, { retriable: true });
}
