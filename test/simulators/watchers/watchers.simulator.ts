/**
 * Local simulator of the Watchers.io bot API (docs/providers.md#watchers): a socket.io v4 server that checks the
 * handshake `auth.bearer` in a middleware (refusal = `next(new Error(...))` → client `connect_error`),
 * `external/listen` (joins the room, acks) and `external/send` (posts as the bot, acks with an `error`
 * argument), room messages in the docs' shape with increasing numeric ids per room, and the Bot REST API
 * `POST /api/bot/sendMessage`. No connection state recovery: a restart loses every room membership.
 * Undocumented details (ack payloads, error texts) are plausible choices, named as such below.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as IoServer, type Socket } from 'socket.io';
import { WatchersRest, type RecordedRequest } from './watchers.rest';

export type { RecordedRequest } from './watchers.rest';

/** A room message as Watchers emits it on `message` (docs "On message response object"). */
export interface WatchersMessage {
  project: string;
  roomId: string;
  message: { id: number; text: string };
  userId: string;
}

/** One client emit the simulator received. */
export interface RecordedEmit {
  event: string;
  payload: unknown;
  /** The authenticated bot (`uid` of its bearer). */
  uid: string;
  socketId: string;
  at: number;
}

/** One handshake the auth middleware judged. */
export interface RecordedHandshake {
  bearer: unknown;
  accepted: boolean;
  reason?: string;
  at: number;
}

/** Broken frames `emitMalformed` can send to a room. */
export type MalformedKind = 'string-payload' | 'message-null' | 'no-message-id' | 'no-room' | 'unknown-event';

/** Options of the simulator. */
export interface WatchersSimulatorOptions {
  /** TCP port; 0 (default) picks a free one, kept across `restart()`. */
  port?: number;
  /** Project name (default `test`). */
  project?: string;
  /** Project API key (default `sim-api-key`). */
  apiKey?: string;
  /** Bot ids with a valid bearer (default `['bot-1']`); `bearerFor(uid)` issues their tokens. */
  bots?: string[];
}

interface AckControl {
  /** Remaining failing/withheld acks. */
  count: number;
  reply?: unknown;
}

/** Faithful local stand-in for the Watchers.io bot socket.io server and Bot REST API. */
export class WatchersSimulator {
  /** Every client emit (`external/*` and anything else), oldest first. */
  readonly emits: RecordedEmit[] = [];
  /** Every handshake judged by the auth middleware. */
  readonly handshakes: RecordedHandshake[] = [];
  /** Every REST request. */
  get requests(): RecordedRequest[] {
    return this.rest.requests;
  }
  readonly project: string;
  readonly apiKey: string;

  private readonly secret = 'watchers-sim-secret';
  private readonly bots: Set<string>;
  private readonly rest: WatchersRest;
  private readonly lastIds = new Map<string, number>();
  private readonly failListens = new Map<string, AckControl>();
  private readonly withheldListens = new Map<string, AckControl>();
  private readonly failSends: AckControl = { count: 0 };
  private readonly withheldSends: AckControl = { count: 0 };
  private readonly lostSends: AckControl = { count: 0 };
  private listenAckDelayMs = 0;
  private authRejected = false;
  private boundPort: number;
  private http?: HttpServer;
  private io?: IoServer;

  constructor(opts: WatchersSimulatorOptions = {}) {
    this.boundPort = opts.port ?? 0;
    this.project = opts.project ?? 'test';
    this.apiKey = opts.apiKey ?? 'sim-api-key';
    this.bots = new Set(opts.bots ?? ['bot-1']);
    this.rest = new WatchersRest({ apiKey: this.apiKey, verify: (t) => this.verifyBearer(t), post: (room, uid, text) => this.post(room, uid, text) });
  }

  /** `http://127.0.0.1:<port>`: the socket.io URL and the REST base URL. */
  get url(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  /** A bearer for a bot: a JWT `{uid, project, iat}` signed HS256 with the simulator's secret, as the Admin panel issues. */
  bearerFor(uid: string, project = this.project): string {
    const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ uid, project, iat: Math.floor(Date.now() / 1000) })}`;
    return `${unsigned}.${createHmac('sha256', this.secret).update(unsigned).digest('base64url')}`;
  }

  async start(): Promise<void> {
    await this.listen(this.boundPort);
  }

  async stop(): Promise<void> {
    await this.closeServers();
  }

  /** A process restart: every socket is cut, room memberships are lost; message ids continue. */
  async restart(): Promise<void> {
    await this.closeServers();
    await this.listen(this.boundPort);
  }

  /** Cuts every client's transport (`transport close` on the client) or disconnects them server-side. Returns how many. */
  dropConnections(how: 'transport' | 'server-disconnect' = 'transport'): number {
    const sockets = [...(this.io?.sockets.sockets.values() ?? [])];
    for (const s of sockets) {
      if (how === 'transport') s.conn.close();
      else s.disconnect(true);
    }
    return sockets.length;
  }

  /** Refuses every handshake from now on (`invalid bearer`), or accepts valid ones again. */
  rejectAuth(on: boolean): void {
    this.authRejected = on;
  }

  /** The next `count` listens of `roomId` are answered with `reply` (default `{error: 'Room not found'}`) and not joined. */
  failNextListens(roomId: string, count: number, reply: unknown = { error: 'Room not found' }): void {
    this.failListens.set(roomId, { count, reply });
  }

  /** The next `count` listens of `roomId` join the room but are never acked. */
  withholdNextListenAcks(roomId: string, count: number): void {
    this.withheldListens.set(roomId, { count });
  }

  /** Delays every listen ack (and the join) by `ms`. */
  delayListenAcks(ms: number): void {
    this.listenAckDelayMs = ms;
  }

  /** The next `count` `external/send` are acked with `error` (default `'Message not sent'`) and not posted. */
  failNextSends(count: number, error: unknown = 'Message not sent'): void {
    Object.assign(this.failSends, { count, reply: error });
  }

  /** The next `count` `external/send` are posted but never acked. */
  withholdNextSendAcks(count: number): void {
    this.withheldSends.count = count;
  }

  /** The next `count` `external/send` are recorded, then neither posted to the room nor acked (no echo can follow). */
  loseNextSends(count: number): void {
    this.lostSends.count = count;
  }

  /** The next `count` REST sends answer `status` without posting. */
  failNextRestSends(count: number, status: number): void {
    this.rest.failNext(count, status);
  }

  /** A user writes in a room: `message` goes to every socket listening to it. */
  userSays(roomId: string, userId: string, text: string): WatchersMessage {
    return this.post(roomId, userId, text);
  }

  /** `count` user messages in `roomId`, `perTick` per event-loop turn, texts `msg <i>`. */
  async burst(roomId: string, count: number, opts: { userId?: string; perTick?: number } = {}): Promise<WatchersMessage[]> {
    const out: WatchersMessage[] = [];
    for (let i = 0; i < count; i++) {
      out.push(this.post(roomId, opts.userId ?? 'user-1', `msg ${i}`));
      if ((i + 1) % (opts.perTick ?? 200) === 0) await new Promise((r) => setImmediate(r));
    }
    return out;
  }

  /** Sends `event` with `payload` to a room's listeners as is (replays, unknown events). */
  emitRaw(roomId: string, event: string, payload: unknown): void {
    this.io?.to(roomId).emit(event, payload);
  }

  /**
   * Sends `event` with a payload given as JSON text to a room's listeners as a raw socket.io packet: the encoder is
   * bypassed, so a payload JSON.stringify cannot encode (nested 20,000 deep) arrives as a hostile server would send it.
   */
  emitRawText(roomId: string, event: string, payloadJson: string): void {
    for (const id of this.io?.sockets.adapter.rooms.get(roomId) ?? []) this.io?.sockets.sockets.get(id)?.conn.write(`2[${JSON.stringify(event)},${payloadJson}]`);
  }

  /** Sends a broken frame to a room's listeners. */
  emitMalformed(roomId: string, kind: MalformedKind): void {
    const message = { id: this.nextId(roomId), text: `malformed ${kind}` };
    const frames: Record<MalformedKind, [string, unknown]> = {
      'string-payload': ['message', `${roomId}:${message.id} ${message.text}`],
      'message-null': ['message', { project: this.project, roomId, message: null, userId: 'user-1' }],
      'no-message-id': ['message', { project: this.project, roomId, message: { text: message.text }, userId: 'user-1' }],
      'no-room': ['message', { project: this.project, message, userId: 'user-1' }],
      'unknown-event': ['exception', { status: 'error', message: 'Room not found' }],
    };
    this.emitRaw(roomId, ...frames[kind]);
  }

  /** Sockets currently listening to a room. */
  listeners(roomId: string): number {
    return this.io?.sockets.adapter.rooms.get(roomId)?.size ?? 0;
  }

  /** Connected sockets. */
  connectedClients(): number {
    return this.io?.sockets.sockets.size ?? 0;
  }

  /** Waits until `check` holds. */
  async waitUntil(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`simulator: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Recorded emits of one event name. */
  emitsOf(event: string): RecordedEmit[] {
    return this.emits.filter((e) => e.event === event);
  }

  private post(roomId: string, userId: string, text: string): WatchersMessage {
    const value: WatchersMessage = { project: this.project, roomId, message: { id: this.nextId(roomId), text }, userId };
    this.io?.to(roomId).emit('message', value);
    return value;
  }

  private nextId(roomId: string): number {
    const id = (this.lastIds.get(roomId) ?? 100) + 1;
    this.lastIds.set(roomId, id);
    return id;
  }

  /** The bot id of a valid bearer, or undefined. */
  private verifyBearer(token: unknown): string | undefined {
    if (typeof token !== 'string') return undefined;
    const [header, payload, sig] = token.split('.');
    if (!header || !payload || !sig) return undefined;
    const expected = createHmac('sha256', this.secret).update(`${header}.${payload}`).digest();
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { uid?: unknown; project?: unknown };
      return typeof claims.uid === 'string' && this.bots.has(claims.uid) && claims.project === this.project ? claims.uid : undefined;
    } catch {
      return undefined;
    }
  }

  private onConnection(socket: Socket): void {
    const uid = String(socket.data.uid);
    socket.onAny((event: string, ...args: unknown[]) => {
      this.emits.push({ event, payload: args.find((a) => typeof a !== 'function'), uid, socketId: socket.id, at: Date.now() });
    });
    socket.on('external/listen', (payload: unknown, ack?: unknown) => this.onListen(socket, payload, ackFn(ack)));
    socket.on('external/send', (payload: unknown, ack?: unknown) => this.onSend(uid, payload, ackFn(ack)));
  }

  private onListen(socket: Socket, payload: unknown, ack: (...args: unknown[]) => void): void {
    const p = isRecord(payload) ? payload : {};
    const roomId = typeof p.roomId === 'string' || typeof p.roomId === 'number' ? String(p.roomId) : undefined;
    if (p.apiKey !== this.apiKey) return ack({ error: 'Project not found' });
    if (!roomId) return ack({ error: 'roomId is required' });
    const fail = take(this.failListens.get(roomId));
    if (fail) return ack(fail.reply);
    const withhold = take(this.withheldListens.get(roomId));
    const done = (): void => {
      void socket.join(roomId);
      // Undocumented ack shape ("console.log(response)"): a plausible success object.
      if (!withhold) ack({ status: 'ok', roomId });
    };
    if (this.listenAckDelayMs > 0) setTimeout(done, this.listenAckDelayMs).unref();
    else done();
  }

  private onSend(uid: string, payload: unknown, ack: (...args: unknown[]) => void): void {
    const p = isRecord(payload) ? payload : {};
    if (p.apiKey !== this.apiKey) return ack('Project not found');
    if (p.userId !== uid) return ack('userId does not match the bearer');
    if (typeof p.roomId !== 'string' || !p.roomId || typeof p.text !== 'string' || !p.text) return ack('roomId and text are required');
    const fail = take(this.failSends);
    if (fail) return ack(fail.reply);
    if (take(this.lostSends)) return;
    this.post(p.roomId, uid, p.text);
    if (!take(this.withheldSends)) ack();
  }

  private async listen(port: number): Promise<void> {
    const http = createServer((req: IncomingMessage, res: ServerResponse) => this.rest.handle(req, res));
    const io = new IoServer(http, { pingInterval: 2000, pingTimeout: 2000 });
    io.use((socket, next) => {
      const bearer: unknown = socket.handshake.auth?.bearer;
      const reject = (reason: string, data?: unknown): void => {
        this.handshakes.push({ bearer, accepted: false, reason, at: Date.now() });
        next(Object.assign(new Error(reason), data === undefined ? {} : { data }));
      };
      if (bearer === undefined || bearer === '') return reject('bearer is required');
      const uid = this.authRejected ? undefined : this.verifyBearer(bearer);
      if (!uid) return reject('invalid bearer', { code: 401 });
      socket.data.uid = uid;
      this.handshakes.push({ bearer, accepted: true, at: Date.now() });
      next();
    });
    io.on('connection', (socket) => this.onConnection(socket));
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          http.once('error', reject);
          http.listen(port, '127.0.0.1', () => {
            http.off('error', reject);
            resolve();
          });
        });
        break;
      } catch (err) {
        // After a restart the old socket may linger for a moment on the kept port.
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.boundPort = (http.address() as AddressInfo).port;
    this.http = http;
    this.io = io;
  }

  private async closeServers(): Promise<void> {
    const { io, http } = this;
    this.io = undefined;
    this.http = undefined;
    if (!io || !http) return;
    const closed = new Promise<void>((resolve) => void io.close(() => resolve()));
    http.closeAllConnections();
    await closed;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function ackFn(ack: unknown): (...args: unknown[]) => void {
  return typeof ack === 'function' ? (...args: unknown[]) => void (ack as (...a: unknown[]) => void)(...args) : () => undefined;
}

/** Consumes one use of a control; returns it when it applied. */
function take(control: AckControl | undefined): AckControl | undefined {
  if (!control || control.count <= 0) return undefined;
  control.count--;
  return control;
}
