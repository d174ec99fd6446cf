import type { Logger } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { backoffDelay } from '../../common/backoff';
import { CommandError, ConnectorError } from '../../common/errors';
import { upstreamHttp } from '../../common/upstream-http';
import { classifyConnectError, RefusalAwareWebSocket, type ConnectErrorRules } from '../connect-error';
import type { CommandOutcome, Connector, ConnectorContext, ConnectorHooks, UpstreamCommand } from '../connector.interface';
import type { SupervisorPolicy } from '../supervisor';
import {
  commandRoom, listenAckError, listenFrame, restMessageId, restSendRequest,
  sendAckError, sendFields, sendFrame, type WatchersCredentials,
} from './watchers.commands';
import type { WatchersOptions } from './watchers.options';

/** Key in the channel's durable state: rooms added by `room.listen`, listened again after every connect and restart. */
const LISTEN_ROOMS_KEY = 'listenRooms';

/** How one `external/listen` ended. */
type ListenOutcome = { ok: true; ack: unknown } | { ok: false; error: string; timedOut: boolean };

/**
 * socket.io v4 client of one Watchers.io bot (`auth: {bearer}`, websocket only, no upgrade).
 * The library's reconnection is off: the supervisor reconnects and then calls `subscribe()`, which
 * re-emits `external/listen` for every room, because room membership does not survive a reconnect.
 * A room whose listen is refused or not acked is retried on its own with backoff; the connection stays up.
 * The socket and its listeners are created once, so no handler is ever doubled.
 */
export class WatchersConnector implements Connector {
  private readonly socket: Socket;
  private readonly hooks: ConnectorHooks;
  private readonly log: Logger;
  private readonly options: WatchersOptions;
  private readonly creds: WatchersCredentials;
  private readonly policy: SupervisorPolicy;
  private readonly mode: () => 'socket' | 'webhook';
  private readonly store: ConnectorContext<WatchersOptions>['store'];
  private readonly addedRooms: Set<string>;
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly retryAttempts = new Map<string, number>();
  private pending?: { resolve: () => void; reject: (e: ConnectorError) => void; timer: NodeJS.Timeout };
  private closing = false;
  /** Bumped on every connect and close: acks and retries of an older connection are ignored. */
  private session = 0;

  constructor(ctx: ConnectorContext<WatchersOptions>) {
    const { options } = ctx;
    this.options = options;
    this.hooks = ctx.hooks;
    this.log = ctx.logger;
    this.policy = ctx.policy;
    this.mode = ctx.mode;
    this.store = ctx.store;
    this.creds = { apiKey: options.apiKey, bearer: options.bearer, userId: options.userId };
    const saved = ctx.store.get<unknown>(LISTEN_ROOMS_KEY);
    this.addedRooms = new Set(Array.isArray(saved) ? saved.filter((r): r is string => typeof r === 'string') : []);
    this.socket = io(options.url, {
      transports: [RefusalAwareWebSocket],
      transportOptions: { websocket: { maxPayload: ctx.maxPayloadBytes } },
      upgrade: false,
      path: options.path,
      autoConnect: false,
      reconnection: false,
      forceNew: true,
      timeout: options.connectTimeoutMs,
      auth: { bearer: options.bearer },
    });
    this.socket.on('connect', () => this.settle());
    this.socket.on('connect_error', (err: Error) => this.settle(classifyConnectError(err, WATCHERS_REFUSALS)));
    this.socket.on('disconnect', (reason: string) => this.onDisconnect(reason));
    this.socket.onAny(this.hooks.guard('onAny', (event: string, ...args: unknown[]) => {
      // A server emit that asks for an ack carries a callback last; it is not part of the payload.
      const data = args.filter((a) => typeof a !== 'function');
      this.hooks.frame({ event, payload: data.length <= 1 ? data[0] : data });
    }));
  }

  /** Opens the socket; resolves on the server's CONNECT (the bearer accepted), rejects with a classified error. */
  connect(): Promise<void> {
    this.closing = false;
    this.session++;
    this.clearRetries();
    if (this.socket.connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // Covers the namespace CONNECT too, which the manager's own timeout does not.
      const timer = setTimeout(() => this.settle(new ConnectorError('connect_timeout', 'connection attempt timed out', { retriable: true })), this.options.connectTimeoutMs);
      this.pending = { resolve, reject, timer };
      this.socket.connect();
    });
  }

  /** Asks for every room (configured and added); resolves once all were emitted, acks are followed up alone. */
  async subscribe(): Promise<void> {
    const session = this.session;
    for (const room of this.rooms()) void this.listen(room, session);
  }

  /** Closes the socket and cancels pending room retries; no `lost` follows. */
  async close(): Promise<void> {
    this.closing = true;
    this.session++;
    this.clearRetries();
    this.settle(new ConnectorError('closed', 'connector closed', { retriable: false }));
    this.socket.disconnect();
  }

  /** `message.send` (socket, or REST in webhook mode / while down) and `room.listen`; the channel runtime refuses other types. */
  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    return command.type === 'room.listen' ? this.listenCommand(command) : this.send(command);
  }

  private rooms(): string[] {
    return [...new Set([...this.options.rooms, ...this.addedRooms])];
  }

  /** One `external/listen` with ack; a failure schedules a retry of this room only. */
  private listen(room: string, session: number): Promise<ListenOutcome> {
    return new Promise<ListenOutcome>((resolve) => {
      this.socket.timeout(this.options.ackTimeoutMs).emit('external/listen', listenFrame(room, this.creds), (err: Error | null, ack?: unknown) => {
        if (session !== this.session) return resolve({ ok: false, error: 'connection replaced', timedOut: false });
        const timedOut = Boolean(err) && this.socket.connected;
        const error = err ? (timedOut ? `no ack within ${this.options.ackTimeoutMs} ms` : 'socket disconnected') : listenAckError(ack);
        if (error === undefined) {
          this.retryAttempts.delete(room);
          this.log.debug({ room }, 'listening to room');
          return resolve({ ok: true, ack });
        }
        if (this.socket.connected) this.scheduleListenRetry(room, session, new ConnectorError(timedOut ? 'ack_timeout' : 'listen_refused', `external/listen for room ${room}: ${error}`, { retriable: true }));
        resolve({ ok: false, error, timedOut });
      });
    });
  }

  /** A refused or unacked room is retried alone and reported; the connection and the other rooms stay as they are. */
  private scheduleListenRetry(room: string, session: number, error: ConnectorError): void {
    const attempt = this.retryAttempts.get(room) ?? 0;
    this.retryAttempts.set(room, attempt + 1);
    const delay = backoffDelay(this.policy.backoff, attempt);
    this.log.debug({ room, attempt: attempt + 1, retryInMs: delay, code: error.code }, 'external/listen failed; retrying this room');
    this.hooks.subscriptionFailed?.(room, error, delay);
    clearTimeout(this.retryTimers.get(room));
    const timer = setTimeout(() => {
      this.retryTimers.delete(room);
      if (session === this.session && this.socket.connected) void this.listen(room, session);
    }, delay);
    timer.unref?.();
    this.retryTimers.set(room, timer);
  }

  private clearRetries(): void {
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    this.retryAttempts.clear();
  }

  private async listenCommand(command: UpstreamCommand): Promise<CommandOutcome> {
    const roomId = commandRoom(command);
    if (!roomId) throw new CommandError('invalid_command', 'room.listen needs conversationId or roomId', { retriable: false, sent: false });
    if (this.mode() === 'webhook') {
      throw new CommandError('webhook_mode', 'room.listen needs the socket; the channel is in webhook mode', { retriable: false, sent: false });
    }
    if (!this.addedRooms.has(roomId) && !this.options.rooms.includes(roomId)) {
      this.addedRooms.add(roomId);
      this.store.set(LISTEN_ROOMS_KEY, [...this.addedRooms]);
    }
    if (!this.socket.connected) {
      throw new CommandError('not_connected', 'socket not connected; the room is kept and listened to on the next connect', { retriable: true, sent: false });
    }
    const outcome = await this.listen(roomId, this.session);
    if (outcome.ok) return { conversationId: roomId, result: outcome.ack ?? null };
    const message = `external/listen for room ${roomId} failed: ${outcome.error}; retried in the background`;
    throw new CommandError(outcome.timedOut ? 'ack_timeout' : 'listen_failed', message, { retriable: false, sent: outcome.timedOut });
  }

  private async send(command: UpstreamCommand): Promise<CommandOutcome> {
    const fields = sendFields(command);
    if (this.mode() === 'socket' && this.socket.connected) return this.sendOverSocket(fields);
    if (this.options.restUrl) return this.sendOverRest(fields, this.options.restUrl);
    if (this.mode() === 'webhook') {
      throw new CommandError('no_http_path', 'webhook mode sends over the Bot REST API; set watchers.restUrl', { retriable: false, sent: false });
    }
    throw new CommandError('not_connected', 'socket not connected and no watchers.restUrl to fall back to', { retriable: true, sent: false });
  }

  private sendOverSocket(fields: { roomId: string; text: string }): Promise<CommandOutcome> {
    return new Promise<CommandOutcome>((resolve, reject) => {
      this.socket.timeout(this.options.ackTimeoutMs).emit('external/send', sendFrame(fields, this.creds), (err: Error | null, ack?: unknown) => {
        if (err) {
          // The frame left: whether the upstream posted it is unknown. The bot's echo in the room tells.
          const why = this.socket.connected ? `no ack within ${this.options.ackTimeoutMs} ms` : 'socket disconnected before the ack';
          return reject(new CommandError(this.socket.connected ? 'ack_timeout' : 'disconnected', `external/send: ${why}; the message may have been sent`, { retriable: false, sent: true }));
        }
        const error = sendAckError(ack);
        if (error !== undefined) return reject(new CommandError('upstream_rejected', `external/send refused: ${error}`, { retriable: false, sent: false }));
        resolve({ conversationId: fields.roomId, result: ack ?? null });
      });
    });
  }

  private async sendOverRest(fields: { roomId: string; text: string }, restUrl: string): Promise<CommandOutcome> {
    const req = restSendRequest(restUrl, fields, this.creds);
    // A non-2xx answer or a failure is the shared command table's (src/common/upstream-http.ts).
    const res = await upstreamHttp.request({
      url: req.url, method: req.method, headers: req.headers, data: req.body, timeout: this.options.ackTimeoutMs, upstream: { what: 'Watchers REST' },
    });
    const body = parseJson(res.data ?? '');
    const outcome: CommandOutcome = { conversationId: fields.roomId, result: body ?? null };
    const id = restMessageId(body);
    if (id) outcome.upstreamMessageId = id;
    return outcome;
  }

  private settle(error?: ConnectorError): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (error) {
      // A failed attempt leaves the manager half-open; reset it so the next connect() starts clean.
      this.socket.disconnect();
      p.reject(error);
    } else p.resolve();
  }

  private onDisconnect(reason: string): void {
    this.clearRetries();
    if (this.closing || this.pending) return;
    this.log.warn({ reason }, 'watchers socket disconnected');
    this.hooks.lost(new ConnectorError('disconnected', `socket disconnected: ${reason}`, { retriable: true }));
  }
}

/**
 * Watchers checks the bearer in a namespace middleware: its refusal (a CONNECT_ERROR, with a 429/5xx code in `data`
 * when it is the server that cannot answer yet) is the bearer's. A refused upgrade is read by its status.
 */
export const WATCHERS_REFUSALS: ConnectErrorRules = {
  credential: 'bearer',
  authStatuses: [401, 403],
  invalidNamespace: 'upstream has no such socket.io namespace (check the path of watchers.url)',
};

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return text;
  }
}
