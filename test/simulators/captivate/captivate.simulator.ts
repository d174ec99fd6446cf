/**
 * Local simulator of Captivate Hub's custom-channel socket API (docs/providers.md#captivate) as it looks from outside:
 * AWS API Gateway WebSockets (key checked at the upgrade: 401 without, 403 with a wrong one; `socket_connected`
 * as the first frame; idle and max-age closes with 1001 "Going away"), the `{action, event}` frames of the
 * manual, and the SDK ≥5 HTTP endpoints (`POST /api/custom-channel/sockets/message`, `GET /api/transcript`).
 * Replies go to the socket that last acted for the conversation; when it is gone they are lost (kept only in
 * the transcript), as the manual warns.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

/** Tunables; every delay in ms. */
export interface CaptivateSimulatorOptions {
  apiKeys?: string[];
  /** Delay of the bot's reply to a user_message (drop the socket in between to lose it). */
  botReplyDelayMs?: number;
  /** API Gateway closes a socket that received no client frame for this long (pings do not count unless idleCountsPings). */
  idleTimeoutMs?: number;
  idleCountsPings?: boolean;
  /** API Gateway closes every socket at this age. */
  maxAgeMs?: number;
  /** Greet every new conversation with a bot_message, as the hub does ("expect to receive bot_messages immediately"). */
  greeting?: boolean;
  /** `socket_connected` behaviour from the start (see `setSocketConnected`). */
  socketConnected?: 'send' | 'withhold' | number;
  /** Frames in the manual's `{action: "receiveMessage", event}` wrapper (true) or the seed page's bare shape. */
  wrapFrames?: boolean;
}

/** One transcript entry, in the SDK ≥5 REST shape (bot replies keep their ch_msg_id as message_id). */
export interface SimTranscriptEntry {
  from: 'user' | 'bot' | 'agent';
  message_id?: string;
  event_id?: string;
  content: unknown;
  timestamp: string;
}

/** A client socket as the simulator sees it. */
export interface SimClient {
  socketId: string;
  apiKey: string;
  /** The query parameter the key came in (`apikey` or `apiKey`). */
  param: string;
  ws: WebSocket;
  openedAt: number;
  timers: NodeJS.Timeout[];
  idle?: NodeJS.Timeout;
  /** Set when the simulator closed it (idle, max age, closeConnections, drop). */
  closedByServer?: boolean;
}

/** How a socket ended. */
export interface RecordedClose {
  socketId: string;
  at: number;
  code: number;
  reason: string;
  by: 'server' | 'client';
}

/** What a client sent: over a socket, or over HTTP (`socketId` = the body's socket_id). */
export interface RecordedFrame {
  via: 'socket' | 'http';
  socketId?: string;
  at: number;
  text: string;
  json?: unknown;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  status: number;
  at: number;
}

export interface Handshake {
  at: number;
  apiKey?: string;
  param?: string;
  status: 101 | 401 | 403;
}

interface Conversation {
  id: string;
  socketId?: string;
  metadata: Record<string, unknown>;
  transcript: SimTranscriptEntry[];
}

/** Kinds of broken frames `emitMalformed` produces. */
export type CaptivateMalformedKind = 'not-json' | 'no-event-type' | 'bot-no-content' | 'unknown-type';

const GOING_AWAY = 1001;

export class CaptivateSimulator {
  readonly frames: RecordedFrame[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly handshakes: Handshake[] = [];
  readonly closes: RecordedClose[] = [];
  readonly clients = new Map<string, SimClient>();
  readonly conversations = new Map<string, Conversation>();
  private readonly o: Required<CaptivateSimulatorOptions>;
  private server?: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private portNo = 0;
  private socketConnected: 'send' | 'withhold' | number = 'send';
  private authRejected = false;
  private httpFailures: Array<number | 'hang'> = [];
  private readonly hung: ServerResponse[] = [];

  constructor(opts: CaptivateSimulatorOptions = {}) {
    this.o = {
      apiKeys: ['test-key'], botReplyDelayMs: 20, idleTimeoutMs: 600_000, idleCountsPings: false, maxAgeMs: 7_200_000,
      greeting: true, wrapFrames: true, socketConnected: 'send', ...opts,
    };
    this.socketConnected = this.o.socketConnected;
  }

  get port(): number {
    return this.portNo;
  }
  /** The socket URL (pass the key as `?apikey=` or `?apiKey=`). */
  get url(): string {
    return `ws://127.0.0.1:${this.portNo}`;
  }
  /** The HTTP API base URL. */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.portNo}`;
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => void this.onHttp(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
    this.portNo = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const c of this.clients.values()) this.forget(c);
    for (const c of this.wss.clients) c.terminate();
    for (const res of this.hung.splice(0)) res.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stops and starts on the same port; conversations and transcripts survive, sockets do not. */
  async restart(downMs = 0): Promise<void> {
    const port = this.portNo;
    await this.stop();
    if (downMs) await new Promise((r) => setTimeout(r, downMs));
    await this.start(port);
  }

  /** `withhold`: never send socket_connected; a number: send it after that delay. */
  setSocketConnected(mode: 'send' | 'withhold' | number): void {
    this.socketConnected = mode;
  }
  /** Refuse every upgrade with 403, whatever the key. */
  rejectAuth(on: boolean): void {
    this.authRejected = on;
  }
  /** The next `n` POSTs fail with `status` (nothing acted), or act but never answer (`hang`). */
  failNextHttp(n: number, status: number | 'hang'): void {
    for (let i = 0; i < n; i++) this.httpFailures.push(status);
  }

  /** Sockets open now. */
  openClients(): SimClient[] {
    return [...this.clients.values()].filter((c) => c.ws.readyState === WebSocket.OPEN);
  }
  async waitForClients(n: number, timeoutMs = 5000): Promise<SimClient[]> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.openClients().length === n) return this.openClients();
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`expected ${n} open sockets, have ${this.openClients().length}`);
  }

  /** Frames clients sent with this event_type (socket and HTTP). */
  sent(eventType: string): RecordedFrame[] {
    return this.frames.filter((f) => eventTypeOf(f.json) === eventType);
  }

  /** Creates a conversation as if another client had started it; bound to `socketId` when given. */
  createConversation(socketId?: string, userId = 'anon'): string {
    const id = `${userId}-${randomUUID()}`;
    this.conversations.set(id, { id, socketId, metadata: {}, transcript: [] });
    return id;
  }

  /** A bot reply in a conversation; delivered to its socket if that is open. Returns the event sent. */
  botMessage(conversationId: string, text: string, extra: unknown[] = []): Record<string, unknown> {
    const chMsgId = randomUUID();
    const content = [{ type: 'text', text }, ...extra];
    this.record(conversationId, { from: 'bot', message_id: chMsgId, content });
    return this.deliver(conversationId, 'bot_message', { type: 'message_create', conversation_id: conversationId, ch_msg_id: chMsgId, bot: {}, content });
  }

  /** A human agent's message (no message id upstream: the transcript keeps the delivery's event_id). */
  livechatMessage(conversationId: string, text: string, files: unknown[] = []): Record<string, unknown> {
    const content: unknown[] = [{ type: 'text', text }];
    if (files.length) content.push({ type: 'files', files });
    const eventId = newEventId();
    this.record(conversationId, { from: 'agent', event_id: eventId, content });
    return this.deliver(conversationId, 'livechat_message', { type: 'message_create', conversation_id: conversationId, content }, eventId);
  }

  /** conversation_update (livechatAgentConnected, livechatAgentDisconnected, failedAgentAssignment). */
  conversationUpdate(conversationId: string, type: string, data: Record<string, unknown> = {}): Record<string, unknown> {
    return this.deliver(conversationId, 'conversation_update', { type, conversation_id: conversationId, data });
  }

  /** `count` bot messages in one go (`burst #1`…). */
  burst(conversationId: string, count: number): Array<Record<string, unknown>> {
    return Array.from({ length: count }, (_, i) => this.botMessage(conversationId, `burst #${i + 1}`));
  }

  /** Sends a broken frame to every open socket. */
  emitMalformed(kind: CaptivateMalformedKind): void {
    const text =
      kind === 'not-json' ? 'socket_connected Vp6roemHLPECFOQ='
      : kind === 'no-event-type' ? JSON.stringify({ message: 'Internal server error', connectionId: 'x', requestId: newEventId() })
      : kind === 'bot-no-content' ? this.frameText('bot_message', { type: 'message_create', ch_msg_id: randomUUID(), bot: {} }, newEventId())
      : this.frameText('typing_indicator', { conversation_id: 'c-unknown', typing: true }, newEventId());
    for (const c of this.openClients()) c.ws.send(text);
  }

  /** Sends raw text to every open socket (a frame as a hostile hub could send it). */
  sendRawText(text: string): void {
    for (const c of this.openClients()) c.ws.send(text);
  }

  /** Cuts every socket without a close frame (the client sees 1006). */
  dropConnections(): number {
    const open = this.openClients();
    for (const c of open) {
      c.closedByServer = true;
      c.ws.terminate();
    }
    return open.length;
  }
  /** Closes every socket the way API Gateway does at its limits (1001 Going away). */
  closeConnections(code = GOING_AWAY): number {
    const open = this.openClients();
    for (const c of open) this.serverClose(c, code);
    return open.length;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const u = new URL(req.url ?? '/', 'http://x');
    const param = u.searchParams.has('apikey') ? 'apikey' : u.searchParams.has('apiKey') ? 'apiKey' : undefined;
    const apiKey = param ? (u.searchParams.get(param) ?? undefined) : undefined;
    const status = !apiKey ? 401 : this.authRejected || !this.o.apiKeys.includes(apiKey) ? 403 : 101;
    this.handshakes.push({ at: Date.now(), apiKey, param, status });
    if (status !== 101) {
      const body = JSON.stringify({ message: status === 401 ? 'Unauthorized' : 'Forbidden' });
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, apiKey as string, param as string));
  }

  private onConnection(ws: WebSocket, apiKey: string, param: string): void {
    const client: SimClient = { socketId: randomBytes(11).toString('base64'), apiKey, param, ws, openedAt: Date.now(), timers: [] };
    this.clients.set(client.socketId, client);
    this.touchIdle(client);
    client.timers.push(setTimeout(() => this.serverClose(client), this.o.maxAgeMs));
    ws.on('message', (data: RawData) => this.onClientFrame(client, Buffer.isBuffer(data) ? data.toString('utf8') : String(data)));
    ws.on('ping', () => (this.o.idleCountsPings ? this.touchIdle(client) : undefined));
    ws.on('close', (code: number, reason: Buffer) => {
      this.closes.push({ socketId: client.socketId, at: Date.now(), code, reason: reason.toString(), by: client.closedByServer ? 'server' : 'client' });
      this.forget(client);
    });
    const mode = this.socketConnected;
    if (mode === 'withhold') return;
    const hello = () => this.send(client, 'socket_connected', { socket_id: client.socketId });
    if (mode === 'send') hello();
    else client.timers.push(setTimeout(hello, mode));
  }

  private forget(client: SimClient): void {
    for (const t of client.timers) clearTimeout(t);
    clearTimeout(client.idle);
    this.clients.delete(client.socketId);
  }

  private touchIdle(client: SimClient): void {
    clearTimeout(client.idle);
    client.idle = setTimeout(() => this.serverClose(client), this.o.idleTimeoutMs);
  }

  private serverClose(client: SimClient, code = GOING_AWAY): void {
    client.closedByServer = true;
    client.ws.close(code, 'Going away');
  }

  private onClientFrame(client: SimClient, text: string): void {
    this.touchIdle(client);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      /* recorded as text; API Gateway cannot route it */
    }
    this.frames.push({ via: 'socket', socketId: client.socketId, at: Date.now(), text, ...(json === undefined ? {} : { json }) });
    const frame = json as { action?: unknown; event?: { event_type?: unknown; event_payload?: unknown } } | undefined;
    if (frame?.action !== 'sendMessage' || typeof frame.event?.event_type !== 'string') {
      // API Gateway's answer when no route matches the action.
      client.ws.send(JSON.stringify({ message: 'Forbidden', connectionId: client.socketId, requestId: newEventId() }));
      return;
    }
    this.handle(client.socketId, frame.event.event_type, asRecord(frame.event.event_payload));
  }

  /** Acts on one client event; replies go to `socketId`'s socket. Returns the HTTP answer body. */
  private handle(socketId: string | undefined, type: string, p: Record<string, unknown>): Record<string, unknown> {
    if (type === 'conversation_start') {
      const id = this.createConversation(socketId, typeof p.userId === 'string' ? p.userId : 'anon');
      this.deliver(id, 'conversation_start_success', { conversation_id: id });
      if (this.o.greeting) this.later(() => this.botMessage(id, "Hi. I'm the Captivate Bot."));
      return { status: 'success', conversation_id: id };
    }
    const conv = typeof p.conversation_id === 'string' ? this.conversations.get(p.conversation_id) : undefined;
    if (!conv) {
      const error = { conversation_id: p.conversation_id ?? null, error_code: 400, error_desc: 'Invalid conversation_id' };
      const client = socketId ? this.clients.get(socketId) : undefined;
      if (client) this.send(client, 'general_error', error);
      return { status: 'error', ...error };
    }
    if (socketId) conv.socketId = socketId;
    switch (type) {
      case 'user_message': {
        const content = asRecord(p.content);
        this.record(conv.id, { from: 'user', message_id: String(p.client_msg_id), content });
        this.later(() => this.botMessage(conv.id, `You said: ${String(content.text)}`));
        break;
      }
      case 'metadata':
        Object.assign(conv.metadata, asRecord(p.metadata));
        this.deliver(conv.id, 'metadata_update_success', { conversation_id: conv.id });
        break;
      case 'metadata_request':
        this.deliver(conv.id, 'conversation_metadata', { conversation_id: conv.id, content: conv.metadata });
        return { status: 'success', metadata: conv.metadata };
      case 'action':
        if (p.id === 'escalateToHuman') this.later(() => this.conversationUpdate(conv.id, 'livechatAgentConnected', { agentInfo: { id: 'agent-7', name: 'Sam Agent' } }));
        break;
      case 'conversation_transcript_request':
        this.deliver(conv.id, 'conversation_transcript', { conversation_id: conv.id, transcript: conv.transcript });
        break;
    }
    return { status: 'success' };
  }

  private async onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://x');
    const rec: RecordedRequest = { method: req.method ?? '', path: `${u.pathname}${u.search}`, headers: req.headers, body, status: 0, at: Date.now() };
    this.requests.push(rec);
    const answer = (status: number, json: unknown) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    };
    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || !this.o.apiKeys.includes(key)) return answer(401, { message: 'Unauthorized' });
    if (req.method === 'GET' && u.pathname === '/api/transcript') {
      const conv = this.conversations.get(u.searchParams.get('conversation_id') ?? '');
      return conv ? answer(200, { conversation_id: conv.id, transcript: conv.transcript }) : answer(404, { message: 'Conversation not found' });
    }
    if (req.method !== 'POST' || u.pathname !== '/api/custom-channel/sockets/message') return answer(404, { message: 'Not Found' });
    let frame: { action?: unknown; event?: { event_type?: unknown; event_payload?: unknown; socket_id?: unknown } };
    try {
      frame = JSON.parse(body) as typeof frame;
    } catch {
      return answer(400, { message: 'Invalid JSON' });
    }
    this.frames.push({ via: 'http', socketId: typeof frame.event?.socket_id === 'string' ? frame.event.socket_id : undefined, at: Date.now(), text: body, json: frame });
    const failure = this.httpFailures.shift();
    if (typeof failure === 'number') return answer(failure, { message: 'Simulated failure' });
    if (frame.action !== 'sendMessage' || typeof frame.event?.event_type !== 'string') return answer(400, { message: 'Invalid body' });
    const socketId = typeof frame.event.socket_id === 'string' ? frame.event.socket_id : undefined;
    // PostToConnection's GoneException: the socket named for the replies is not connected.
    if (socketId && !this.clients.has(socketId)) return answer(410, { message: 'GoneException: socket_id is not connected' });
    const result = this.handle(socketId, frame.event.event_type, asRecord(frame.event.event_payload));
    if (failure === 'hang') {
      this.hung.push(res);
      return;
    }
    answer(200, result);
  }

  private record(conversationId: string, e: Omit<SimTranscriptEntry, 'timestamp'>): void {
    this.conversations.get(conversationId)?.transcript.push({ ...e, timestamp: new Date().toISOString() });
  }

  /** Sends to the conversation's socket when it is open; otherwise the event is lost. Returns the event. */
  private deliver(conversationId: string, type: string, payload: Record<string, unknown>, eventId = newEventId()): Record<string, unknown> {
    const socketId = this.conversations.get(conversationId)?.socketId;
    const client = socketId ? this.clients.get(socketId) : undefined;
    if (client?.ws.readyState === WebSocket.OPEN) client.ws.send(this.frameText(type, payload, eventId));
    return { event_type: type, event_payload: payload, event_id: eventId, accepts_response_payload: false };
  }

  private send(client: SimClient, type: string, payload: Record<string, unknown>): void {
    if (client.ws.readyState === WebSocket.OPEN) client.ws.send(this.frameText(type, payload, newEventId()));
  }

  private frameText(type: string, payload: Record<string, unknown>, eventId: string): string {
    const event = { event_type: type, event_payload: payload, event_id: eventId, accepts_response_payload: false };
    return JSON.stringify(this.o.wrapFrames ? { action: 'receiveMessage', event } : event);
  }

  private later(fn: () => void): void {
    const t = setTimeout(fn, this.o.botReplyDelayMs);
    t.unref?.();
  }
}

/** An API Gateway request-id-like event id (`Vp6x7GxOLPEFb7A=`). */
function newEventId(): string {
  return randomBytes(11).toString('base64');
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function eventTypeOf(json: unknown): string | undefined {
  const e = asRecord(asRecord(json).event);
  return typeof e.event_type === 'string' ? e.event_type : undefined;
}
