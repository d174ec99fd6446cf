/**
 * Local simulator of the Zyeta-style JWT WebSocket service (docs/providers.md#jwt-websocket): one raw WebSocket
 * endpoint (`/api/ws?token=<JWT>`), JSON frames `{type, data}` in and `{type, data, timestamp}` out,
 * `subscribe` / `unsubscribe` / `ping` commands, channel-scoped delivery and the documented error codes.
 * The token is checked as an HS256 JWT with `exp`. How the real service refuses a token is undocumented,
 * so both plausible behaviours are available: HTTP 401 on the upgrade, or accept + `unauthorized` frame + close.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

/** How a bad token is refused. */
export type AuthFailureMode = 'reject-upgrade' | 'error-frame';

/** Error codes of the service. */
export type ErrorCode = 'invalid_request' | 'unauthorized' | 'subscription_failed' | 'internal_error';

/** A server → client frame. */
export interface ServerFrame<T = Record<string, unknown>> {
  type: string;
  data: T;
  timestamp: string;
}

/** `chat_message` data. */
export interface ChatMessageData {
  conversation_id: string;
  sender_id: string;
  content: string;
}

/** Options of the simulator. */
export interface JwtWebSocketSimulatorOptions {
  /** HS256 secret the tokens are verified with (default `sim-secret`). */
  secret?: string;
  /** Socket path (default `/api/ws`). */
  path?: string;
  /** TCP port; 0 (default) picks a free one, kept across `restart()`. */
  port?: number;
  /** How bad tokens are refused (default `reject-upgrade`). */
  authFailureMode?: AuthFailureMode;
}

/** One upgrade request and its outcome. */
export interface RecordedHandshake {
  at: number;
  token: string | undefined;
  accepted: boolean;
  reason?: string;
  /** JWT `sub` when the token verified. */
  sub?: string;
}

/** One frame a client sent, as text and parsed (undefined when not JSON). */
export interface RecordedFrame {
  at: number;
  /** Connection number (1-based, in order of acceptance). */
  connection: number;
  raw: string;
  frame: unknown;
}

interface Client {
  id: number;
  socket: WebSocket;
  subscriptions: Set<string>;
}

/** Signs claims as an HS256 JWT. */
export function signJwt(claims: Record<string, unknown>, secret: string): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** Verifies an HS256 JWT and its `exp`; returns the claims or why it was refused. */
export function verifyJwt(token: string | undefined, secret: string, now = Date.now()): { claims: Record<string, unknown> } | { reason: string } {
  if (!token) return { reason: 'token is required' };
  const parts = token.split('.');
  if (parts.length !== 3) return { reason: 'malformed token' };
  const expected = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { reason: 'invalid signature' };
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as { alg?: unknown };
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    if (header.alg !== 'HS256') return { reason: 'unsupported alg' };
    if (typeof claims.exp === 'number' && claims.exp * 1000 <= now) return { reason: 'token expired' };
    return { claims };
  } catch {
    return { reason: 'malformed token' };
  }
}

/** The service's timestamp: ISO 8601 UTC to the second, as in its docs (`2023-08-15T10:30:00Z`). */
export function serviceTimestamp(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Faithful local stand-in for the JWT WebSocket service, with controls for tests. */
export class JwtWebSocketSimulator {
  /** Every upgrade request, oldest first. */
  readonly handshakes: RecordedHandshake[] = [];
  /** Every frame clients sent, oldest first. */
  readonly received: RecordedFrame[] = [];

  private readonly secret: string;
  private readonly path: string;
  private authFailureMode: AuthFailureMode;
  private port0: number;
  private http?: HttpServer;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly clients = new Set<Client>();
  private nextId = 1;
  private pongs = true;
  private rejectAll = false;
  private readonly failingSubscriptions = new Map<string, { times: number; code: ErrorCode }>();

  constructor(opts: JwtWebSocketSimulatorOptions = {}) {
    this.secret = opts.secret ?? 'sim-secret';
    this.path = opts.path ?? '/api/ws';
    this.port0 = opts.port ?? 0;
    this.authFailureMode = opts.authFailureMode ?? 'reject-upgrade';
  }

  /** `ws://127.0.0.1:<port>/api/ws` (without the token). */
  get url(): string {
    return `ws://127.0.0.1:${this.port}${this.path}`;
  }

  /** The bound port. */
  get port(): number {
    return (this.http?.address() as AddressInfo | null)?.port ?? this.port0;
  }

  /** Starts listening on 127.0.0.1. */
  async start(): Promise<void> {
    const http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: 'Upgrade Required' }));
    });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    await new Promise<void>((resolve) => http.listen(this.port0, '127.0.0.1', resolve));
    this.http = http;
    this.port0 = this.port;
  }

  /** Closes every connection and the server. */
  async stop(): Promise<void> {
    for (const c of this.clients) c.socket.terminate();
    this.clients.clear();
    const http = this.http;
    this.http = undefined;
    if (http) await new Promise<void>((resolve) => http.close(() => resolve()));
  }

  /** Stops and starts again on the same port; subscriptions are lost (they are per socket). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** A valid token for `sub`, expiring in `expiresInSec` (default 1 h); `secret` signs a forged one. */
  token(opts: { sub?: string; expiresInSec?: number; secret?: string } = {}): string {
    const now = Math.floor(Date.now() / 1000);
    return signJwt({ sub: opts.sub ?? 'user-1', iat: now, exp: now + (opts.expiresInSec ?? 3600) }, opts.secret ?? this.secret);
  }

  /** How a bad token is refused from now on. */
  setAuthFailureMode(mode: AuthFailureMode): void {
    this.authFailureMode = mode;
  }

  /** Refuses every token (as after a key rotation on the service) until called with false. */
  rejectAuth(reject = true): void {
    this.rejectAll = reject;
  }

  /** Whether `ping` is answered with `pong`; false plays a silent, half-open socket. */
  answerPings(answer: boolean): void {
    this.pongs = answer;
  }

  /** The next `times` subscribes to `channel` get an error frame naming the channel instead of subscribing. */
  failSubscriptions(channel: string, times: number, code: ErrorCode = 'subscription_failed'): void {
    this.failingSubscriptions.set(channel, { times, code });
  }

  /** Open connections. */
  connectionCount(): number {
    return this.clients.size;
  }

  /** Sockets subscribed to `channel`. */
  subscriberCount(channel: string): number {
    return [...this.clients].filter((c) => c.subscriptions.has(channel)).length;
  }

  /** Client frames of one type, parsed. */
  framesOfType(type: string): RecordedFrame[] {
    return this.received.filter((r) => typeof r.frame === 'object' && r.frame !== null && (r.frame as { type?: unknown }).type === type);
  }

  /** Resolves when `check()` holds (polling), rejects after `timeoutMs`. */
  async waitUntil(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`simulator: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Emits `chat_message` to the sockets subscribed to `conversation:<conversation_id>`; returns the frame. */
  chatMessage(data: ChatMessageData, timestamp = serviceTimestamp()): ServerFrame<ChatMessageData> {
    const frame = { type: 'chat_message', data, timestamp };
    this.deliver(`conversation:${data.conversation_id}`, frame);
    return frame;
  }

  /** Emits `notification` ({message, level}) to every connection: notifications are per user, not per channel. */
  notification(data: { message: string; level: string }, timestamp = serviceTimestamp()): ServerFrame {
    const frame = { type: 'notification', data, timestamp };
    this.deliver(undefined, frame);
    return frame;
  }

  /** Emits `status_update` to the sockets subscribed to `<entity_type>:<entity_id>`. */
  statusUpdate(data: { entity_type: string; entity_id: string; status: string }, timestamp = serviceTimestamp()): ServerFrame {
    const frame = { type: 'status_update', data, timestamp };
    this.deliver(`${data.entity_type}:${data.entity_id}`, frame);
    return frame;
  }

  /** Sends a frame as is to every connection (replays: the same object gives the same bytes). */
  sendFrame(frame: unknown): void {
    this.sendText(JSON.stringify(frame));
  }

  /** Sends raw text to every connection. */
  sendText(text: string): void {
    for (const c of this.clients) if (c.socket.readyState === WebSocket.OPEN) c.socket.send(text);
  }

  /** Sends one kind of broken frame to every connection. */
  malformed(kind: 'not-json' | 'no-type' | 'chat-no-conversation' | 'binary'): void {
    const ts = serviceTimestamp();
    if (kind === 'not-json') this.sendText('{"type":"chat_message","data":{"conversation_id":');
    else if (kind === 'no-type') this.sendFrame({ data: { content: 'where am I' }, timestamp: ts });
    else if (kind === 'chat-no-conversation') this.sendFrame({ type: 'chat_message', data: { sender_id: 'user-9', content: 'lost' }, timestamp: ts });
    else for (const c of this.clients) c.socket.send(Buffer.from([0xff, 0xfe, 0x00]), { binary: true });
  }

  /** `count` chat messages round-robin over `conversations` conversations (`msg <i>#<seq per conversation>`). */
  burst(count: number, conversations: string[]): Array<ServerFrame<ChatMessageData>> {
    const seq = new Map<string, number>();
    const out: Array<ServerFrame<ChatMessageData>> = [];
    for (let i = 0; i < count; i++) {
      const conv = conversations[i % conversations.length];
      const n = (seq.get(conv) ?? 0) + 1;
      seq.set(conv, n);
      out.push(this.chatMessage({ conversation_id: conv, sender_id: 'user-456', content: `msg ${i}#${n}` }));
    }
    return out;
  }

  /** Cuts every connection without a close frame (network loss). Returns how many. */
  dropConnections(): number {
    const n = this.clients.size;
    for (const c of this.clients) c.socket.terminate();
    return n;
  }

  /** Tells every connection its token is no longer valid (`unauthorized` frame) and closes it with 1008. */
  revokeAuth(message = 'Token has been revoked'): void {
    for (const c of this.clients) this.refuse(c.socket, message);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== this.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const token = url.searchParams.get('token') ?? undefined;
    const verdict = this.rejectAll ? { reason: 'token rejected' } : verifyJwt(token, this.secret);
    const record: RecordedHandshake = { at: Date.now(), token, accepted: 'claims' in verdict };
    if ('claims' in verdict) {
      if (typeof verdict.claims.sub === 'string') record.sub = verdict.claims.sub;
    } else record.reason = verdict.reason;
    this.handshakes.push(record);
    if ('reason' in verdict && this.authFailureMode === 'reject-upgrade') {
      const body = JSON.stringify({ detail: `Could not validate credentials: ${verdict.reason}` });
      socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if ('reason' in verdict) {
        this.refuse(ws, `Authentication failed: ${verdict.reason}`);
        return;
      }
      const client: Client = { id: this.nextId++, socket: ws, subscriptions: new Set() };
      this.clients.add(client);
      ws.on('message', (data: RawData) => this.onClientFrame(client, Buffer.isBuffer(data) ? data.toString('utf8') : String(data)));
      ws.on('close', () => this.clients.delete(client));
      ws.on('error', () => this.clients.delete(client));
    });
  }

  private onClientFrame(client: Client, raw: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(raw);
    } catch {
      frame = undefined;
    }
    this.received.push({ at: Date.now(), connection: client.id, raw, frame });
    const f = typeof frame === 'object' && frame !== null ? (frame as { type?: unknown; data?: unknown }) : undefined;
    const data = typeof f?.data === 'object' && f.data !== null ? (f.data as Record<string, unknown>) : undefined;
    const channel = typeof data?.channel === 'string' && data.channel ? data.channel : undefined;
    switch (f?.type) {
      case 'ping':
        if (this.pongs) this.send(client.socket, { type: 'pong', data: {}, timestamp: serviceTimestamp() });
        return;
      case 'subscribe': {
        if (!channel) return this.error(client.socket, 'invalid_request', 'data.channel is required');
        const failing = this.failingSubscriptions.get(channel);
        if (failing && failing.times > 0) {
          failing.times--;
          return this.error(client.socket, failing.code, 'Failed to subscribe to the requested channel', channel);
        }
        client.subscriptions.add(channel);
        return;
      }
      case 'unsubscribe':
        if (!channel) return this.error(client.socket, 'invalid_request', 'data.channel is required');
        client.subscriptions.delete(channel);
        return;
      default:
        this.error(client.socket, 'invalid_request', 'The message format is invalid');
    }
  }

  private deliver(channel: string | undefined, frame: ServerFrame<unknown>): void {
    for (const c of this.clients) if (channel === undefined || c.subscriptions.has(channel)) this.send(c.socket, frame);
  }

  private error(socket: WebSocket, code: ErrorCode, message: string, channel?: string): void {
    this.send(socket, { type: 'error', data: channel ? { code, message, channel } : { code, message }, timestamp: serviceTimestamp() });
  }

  private refuse(socket: WebSocket, message: string): void {
    this.error(socket, 'unauthorized', message);
    socket.close(1008, 'unauthorized');
  }

  private send(socket: WebSocket, frame: ServerFrame<unknown>): void {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }
}
