/**
 * Local simulator of the Smartsupp visitor websocket (`websocket-visitors.smartsupp.com`): a socket.io **2.x**
 * server (Engine.IO 3) on path `/socket`, following the server contract the official SDK
 * (smartsupp-websocket@1.2.2) relies on: `visitor.connect` with a Node-style ack carrying ConnectedData,
 * `auth_error`/403 acks for a bad account key or an uninitialized connection, `chat.message` ack → Message
 * followed by the `chat.message_received` echo, server pushes for agents, typing, read, close, rating and
 * account status. Visitors and chats outlive sockets and restarts, so reconnect snapshots fill gaps.
 * See docs/providers.md#smartsupp. Marked [I] where the behaviour is inferred, not documented.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import createIo = require('socket.io-v2');
import type { RecordedConnect, RecordedEmit, SimAgent, SimChat, SimConnectedData, SimError, SimMessage, SimVisitorInfo, SmartsuppMalformedKind } from './smartsupp.simulator.types';
import { SMARTSUPP_UNKNOWN_EVENT } from './smartsupp.simulator.types';
import { SmartsuppVisitorStore, type VisitorRecord } from './smartsupp.simulator.store';

export * from './smartsupp.simulator.types';

/** Options of the simulator. */
export interface SmartsuppSimulatorOptions {
  /** TCP port; 0 (default) picks a free one, kept across `restart()`. */
  port?: number;
  /** Account keys accepted in `visitor.connect` (default `['sim-account-key']`). */
  accountKeys?: string[];
  /** Agents of the account (default one online agent). */
  agents?: SimAgent[];
  /** Delay of the `chat.message_received` echo after an ack, ms (default 20). */
  echoDelayMs?: number;
  /** Engine.IO pingInterval / pingTimeout, ms (socket.io 2.x defaults 25000 / 5000). */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
}

type Socket = createIo.Socket;
type Ack = createIo.Ack;
interface SocketState {
  visitorId?: string;
}

/** Faithful local stand-in for the Smartsupp visitor websocket server. */
export class SmartsuppSimulator {
  /** Every client emit, oldest first (including `visitor.connect`). */
  readonly emits: RecordedEmit[] = [];
  /** Every `visitor.connect` evaluated. */
  readonly connects: RecordedConnect[] = [];
  /** Visitors, chats and messages (they survive `restart()`). */
  readonly store: SmartsuppVisitorStore;
  private http?: HttpServer;
  private io?: createIo.Server;
  private port: number;
  private keys: Set<string>;
  private readonly sockets = new Map<Socket, SocketState>();
  private readonly ackDelay = new Map<string, number>();
  private readonly ackWithheld = new Map<string, number>();
  private readonly uploads = new Set<string>();
  private readonly echoDelayMs: number;

  constructor(private readonly opts: SmartsuppSimulatorOptions = {}) {
    this.port = opts.port ?? 0;
    this.keys = new Set(opts.accountKeys ?? ['sim-account-key']);
    this.echoDelayMs = opts.echoDelayMs ?? 20;
    this.store = new SmartsuppVisitorStore(opts.agents);
  }

  /** `http://127.0.0.1:<port>` (the socket.io path is `/socket`). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const http = createServer((req, res) => this.onHttp(req, res));
    this.io = createIo(http, { path: '/socket', serveClient: false, cookie: false, pingInterval: this.opts.pingIntervalMs ?? 25_000, pingTimeout: this.opts.pingTimeoutMs ?? 5_000 });
    this.io.on('connection', (socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.http = http;
    this.port = (http.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const io = this.io;
    this.io = undefined;
    this.http = undefined;
    this.sockets.clear();
    for (const v of this.store.all()) v.sockets.clear();
    if (io) await new Promise<void>((resolve) => io.close(() => resolve()));
  }

  /** Stops and starts again on the same port; visitors and chats are kept, sockets are dropped. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Replaces the accepted account keys (e.g. to revoke the channel's key). */
  setAccountKeys(keys: string[]): void {
    this.keys = new Set(keys);
  }

  /** Delays the ack of `event` by `ms` (0 removes the delay). */
  delayAcks(event: string, ms: number): void {
    this.ackDelay.set(event, ms);
  }

  /** Never acks the next `count` emits of `event` (they still take effect: an ack lost on the way back). */
  withholdAcks(event: string, count: number): void {
    this.ackWithheld.set(event, count);
  }

  /** Initialized sockets (of one visitor, or all). */
  liveSockets(visitorId?: string): number {
    if (visitorId) return this.store.get(visitorId)?.sockets.size ?? 0;
    let n = 0;
    for (const v of this.store.all()) n += v.sockets.size;
    return n;
  }

  /** Waits until at least `count` sockets are initialized (of one visitor, or all). */
  async waitForLive(count: number, visitorId?: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.liveSockets(visitorId) < count) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} live visitor sockets (have ${this.liveSockets(visitorId)})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Client emits of one event (optionally of one visitor). */
  emitsOf(event: string, visitorId?: string): RecordedEmit[] {
    return this.emits.filter((e) => e.event === event && (visitorId === undefined || e.visitorId === visitorId));
  }

  // Controls: server pushes -------------------------------------------------------------------------

  /** An agent reply: stored in the chat (delivered by the next snapshot if offline) and pushed live. */
  agentSays(visitorId: string, text: string, agentId = this.store.agents[0]?.id ?? 'agent-1'): SimMessage {
    const { chat, visitor } = this.store.chatOf(visitorId);
    const msg = this.store.addMessage(visitor, chat, { subType: 'agent', agentId, content: { type: 'text', text, data: null } });
    this.push(visitor, 'chat.message_received', { chatId: chat.id, message: msg });
    return msg;
  }

  /** A trigger (bot) message. */
  triggerSays(visitorId: string, text: string, trigger = { id: 'trg-1', name: 'Welcome' }): SimMessage {
    const { chat, visitor } = this.store.chatOf(visitorId);
    const msg = this.store.addMessage(visitor, chat, { subType: 'trigger', trigger, content: { type: 'text', text, data: null } });
    this.push(visitor, 'chat.message_received', { chatId: chat.id, message: msg });
    return msg;
  }

  /** `chat.agent_typing`. */
  agentTyping(visitorId: string, is: boolean, text: string | null = null): void {
    const { chat, visitor } = this.store.chatOf(visitorId);
    this.push(visitor, 'chat.agent_typing', { chatId: chat.id, typing: { is, text } });
  }

  /** `chat.agent_joined` (with its `agent_join` event message). */
  agentJoins(visitorId: string, agentId = this.store.agents[0]?.id ?? 'agent-1'): SimMessage {
    const { chat, visitor } = this.store.chatOf(visitorId);
    chat.assignedIds.push(agentId);
    chat.status = 'open';
    const message = this.store.addMessage(visitor, chat, { type: 'event', subType: 'system', agentId, content: { type: 'agent_join', text: null, data: { agentId } } });
    this.push(visitor, 'chat.agent_joined', { chatId: chat.id, agent: this.store.agent(agentId), message });
    return message;
  }

  /** `chat.closed` by an agent (with its `chat_close` event message). */
  closeChat(visitorId: string, closeType: 'agent_close' | 'visitor_close' = 'agent_close', agentId?: string): SimMessage {
    const { chat, visitor } = this.store.chatOf(visitorId);
    return this.doClose(visitor, chat, closeType, agentId);
  }

  /** `chat.rated` `{chatId, rating, message}`. */
  rateChat(visitorId: string, value: number, text: string | null = null): SimMessage {
    const { chat, visitor } = this.store.chatOf(visitorId);
    chat.rating = { value, text };
    const message = this.store.addMessage(visitor, chat, { subType: 'system', content: { type: 'rate_form', text: null, data: { value, text } } });
    this.push(visitor, 'chat.rated', { chatId: chat.id, rating: { value, text }, message });
    return message;
  }

  /** `chat.deleted` `{chatId}`; the visitor has no chat afterwards. */
  deleteChat(visitorId: string): string {
    const { chat, visitor } = this.store.chatOf(visitorId);
    visitor.chat = null;
    visitor.info.chatId = null;
    this.push(visitor, 'chat.deleted', { chatId: chat.id });
    return chat.id;
  }

  /** `account.updated` `{status}` to every initialized socket of the account. */
  setAccountStatus(status: 'online' | 'offline'): void {
    this.store.accountStatus = status;
    for (const v of this.store.all()) this.push(v, 'account.updated', { status });
  }

  /** `agent.updated` `{id, changes}` to every socket. */
  updateAgent(id: string, changes: Partial<SimAgent>): void {
    const agent = this.store.agent(id);
    if (agent) Object.assign(agent, changes);
    for (const v of this.store.all()) this.push(v, 'agent.updated', { id, changes });
  }

  /** `visitor.updated` `{id, changes}` to one visitor's sockets. */
  updateVisitor(visitorId: string, changes: Partial<SimVisitorInfo>): void {
    const visitor = this.store.require(visitorId);
    Object.assign(visitor.info, changes);
    this.push(visitor, 'visitor.updated', { id: visitorId, changes });
  }

  /** `server.error` `{message, code?, type?, event?}`. */
  serverError(visitorId: string, error: SimError): void {
    this.push(this.store.require(visitorId), 'server.error', error);
  }

  /** Any event with any arguments, to one visitor's sockets. */
  emitRaw(visitorId: string, event: string, ...args: unknown[]): void {
    for (const s of this.store.require(visitorId).sockets) s.emit(event, ...args);
  }

  /**
   * One event whose arguments are given as JSON text (`[arg, …]` without the brackets), written to one visitor's
   * sockets as a raw socket.io packet: the encoder is bypassed, so a payload JSON.stringify cannot encode (nested
   * 20,000 deep) arrives as the text a hostile server would send.
   */
  emitRawText(visitorId: string, event: string, argsJson: string): void {
    for (const s of this.store.require(visitorId).sockets) (s as unknown as { conn: { write(data: string): void } }).conn.write(`2[${JSON.stringify(event)},${argsJson}]`);
  }

  /** Broken frames, as a buggy or newer server could send them. */
  emitMalformed(visitorId: string, kind: SmartsuppMalformedKind): void {
    const chatId = this.store.get(visitorId)?.info.chatId ?? 'no-chat';
    if (kind === 'string-payload') this.emitRaw(visitorId, 'chat.message_received', 'this is not a payload');
    if (kind === 'message-without-id') this.emitRaw(visitorId, 'chat.message_received', { chatId, message: { type: 'message', subType: 'agent', content: { type: 'text', text: 'no id' } } });
    if (kind === 'typing-without-is') this.emitRaw(visitorId, 'chat.agent_typing', { chatId, typing: {} });
    if (kind === 'unknown-event') this.emitRaw(visitorId, SMARTSUPP_UNKNOWN_EVENT, { chatId, reason: 'spam' });
  }

  /** `count` agent messages, `perTick` per event-loop turn. */
  async burst(visitorId: string, count: number, perTick = 100): Promise<SimMessage[]> {
    const out: SimMessage[] = [];
    for (let i = 0; i < count; i++) {
      out.push(this.agentSays(visitorId, `burst #${i + 1}`));
      if ((i + 1) % perTick === 0) await new Promise((r) => setImmediate(r));
    }
    return out;
  }

  /** Drops a visitor's sockets: `transport` closes the connection, `server-disconnect` sends a DISCONNECT first. */
  dropVisitor(visitorId: string, mode: 'transport' | 'server-disconnect' = 'transport'): number {
    const visitor = this.store.require(visitorId);
    const sockets = [...visitor.sockets];
    visitor.sockets.clear();
    for (const s of sockets) {
      const st = this.sockets.get(s);
      if (st) st.visitorId = undefined;
      if (mode === 'transport') s.conn.close();
      else s.disconnect(true);
    }
    return sockets.length;
  }

  /** Forgets a visitor (expired upstream): its sockets drop, and its id is answered with a new visitor. */
  forgetVisitor(visitorId: string): void {
    this.dropVisitor(visitorId);
    this.store.forget(visitorId);
  }

  // Server side -------------------------------------------------------------------------------------

  private push(visitor: VisitorRecord, event: string, payload: unknown): void {
    for (const s of visitor.sockets) s.emit(event, payload);
  }

  private onConnection(socket: Socket): void {
    const state: SocketState = {};
    this.sockets.set(socket, state);
    const dispatch = socket.onevent.bind(socket);
    socket.onevent = (packet) => {
      const args = [...(packet.data ?? [])];
      const event = String(args.shift());
      this.emits.push({ socketId: socket.id, visitorId: state.visitorId ?? null, event, args, ack: packet.id !== undefined && packet.id !== null, at: Date.now() });
      dispatch(packet);
    };
    socket.on('disconnect', () => {
      this.sockets.delete(socket);
      if (state.visitorId) this.store.get(state.visitorId)?.sockets.delete(socket);
    });
    socket.on('visitor.connect', (data, ack) => this.acked('visitor.connect', ack, () => this.visitorConnect(socket, state, data)));
    socket.on('chat.message', (data, ack) => this.acked('chat.message', ack, () => this.chatMessage(state, data)));
    socket.on('chat.typing', () => undefined);
    socket.on('chat.read', () => this.chatRead(state));
    socket.on('chat.close', (_data, ack) => this.acked('chat.close', ack, () => this.chatClose(state)));
    socket.on('chat.upload_init', (_data, ack) => this.acked('chat.upload_init', ack, () => this.uploadInit(state)));
    socket.on('chat.upload_finish', (data, ack) => this.acked('chat.upload_finish', ack, () => this.uploadFinish(state, data)));
  }

  /** Runs a handler and answers its ack Node-style, honouring delayed and withheld acks. */
  private acked(event: string, ack: Ack | undefined, handler: () => { err: SimError | null; result?: unknown; after?: () => void }): void {
    const { err, result, after } = handler();
    const withheld = this.ackWithheld.get(event) ?? 0;
    const answer = () => {
      if (withheld > 0) this.ackWithheld.set(event, withheld - 1);
      else if (typeof ack === 'function') ack(err, result);
      if (after) setTimeout(after, this.echoDelayMs);
    };
    const delay = this.ackDelay.get(event) ?? 0;
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  }

  private visitorConnect(socket: Socket, state: SocketState, data: unknown): { err: SimError | null; result?: SimConnectedData } {
    const d = isRecord(data) ? data : {};
    const rec: RecordedConnect = { socketId: socket.id, headers: socket.handshake.headers, data: d, key: d.key, requestedId: d.id, accepted: false, at: Date.now() };
    this.connects.push(rec);
    if (typeof d.key !== 'string' || !this.keys.has(d.key)) {
      return { err: { message: 'Invalid account key', type: 'auth_error', event: 'visitor.connect', code: 403 } };
    }
    const visitor = this.store.resume(typeof d.id === 'string' ? d.id : null, d);
    rec.accepted = true;
    rec.visitorId = visitor.info.id;
    state.visitorId = visitor.info.id;
    visitor.sockets.add(socket);
    return { err: null, result: this.store.connectedData(visitor) };
  }

  private notInitialized(event: string): { err: SimError } {
    return { err: { message: 'Connection not initialized', type: 'auth_error', event, code: 403 } };
  }

  private chatMessage(state: SocketState, data: unknown): { err: SimError | null; result?: SimMessage; after?: () => void } {
    if (!state.visitorId) return this.notInitialized('chat.message');
    const d = isRecord(data) ? data : {};
    const content = isRecord(d.content) ? d.content : {};
    if (typeof content.type !== 'string') return { err: { message: 'Invalid message content', type: 'validation_error', event: 'chat.message', code: 400 } };
    const { chat, visitor } = this.store.chatOf(state.visitorId, true);
    // [I] `type: 'bot'` (history import) is stored as a trigger message.
    const msg = this.store.addMessage(visitor, chat, { subType: d.type === 'bot' ? 'trigger' : 'contact', content: { type: content.type, text: typeof content.text === 'string' ? content.text : null, data: content.data ?? null } });
    return { err: null, result: msg, after: () => this.push(visitor, 'chat.message_received', { chatId: chat.id, message: msg }) };
  }

  private chatRead(state: SocketState): void {
    const visitor = state.visitorId ? this.store.get(state.visitorId) : undefined;
    if (!visitor?.chat) return;
    const lastReadAt = new Date().toISOString();
    visitor.chat.unreadInfo = { type: 'visitor', count: 0, lastReadAt };
    this.push(visitor, 'chat.contact_read', { chatId: visitor.chat.id, lastReadAt, byId: null });
  }

  private chatClose(state: SocketState): { err: SimError | null; result?: null; after?: () => void } {
    if (!state.visitorId) return this.notInitialized('chat.close');
    const visitor = this.store.require(state.visitorId);
    const chat = visitor.chat;
    if (!chat) return { err: null, result: null };
    return { err: null, result: null, after: () => this.doClose(visitor, chat, 'visitor_close') };
  }

  private doClose(visitor: VisitorRecord, chat: SimChat, closeType: string, agentId?: string): SimMessage {
    chat.status = 'closed';
    const data = agentId ? { closeType, agentId } : { closeType };
    const message = this.store.addMessage(visitor, chat, { type: 'event', subType: 'system', agentId: agentId ?? null, content: { type: 'chat_close', text: null, data } });
    this.push(visitor, 'chat.closed', { chatId: chat.id, closeType, message });
    return message;
  }

  private uploadInit(state: SocketState): { err: SimError | null; result?: { url: string; token: string } } {
    if (!state.visitorId) return this.notInitialized('chat.upload_init');
    const token = randomBytes(12).toString('hex');
    this.uploads.add(token);
    return { err: null, result: { url: `${this.url}/upload/${token}`, token } };
  }

  private uploadFinish(state: SocketState, data: unknown): { err: SimError | null; result?: SimMessage; after?: () => void } {
    if (!state.visitorId) return this.notInitialized('chat.upload_finish');
    const token = isRecord(data) ? data.uploadToken : undefined;
    if (typeof token !== 'string' || !this.uploads.delete(token)) return { err: { message: 'Upload not found', type: 'not_found', event: 'chat.upload_finish', code: 404 } };
    const { chat, visitor } = this.store.chatOf(state.visitorId, true);
    const attachment = { type: 'file' as const, fileName: 'upload.pdf', fileType: 'application/pdf', url: `${this.url}/files/${token}/upload.pdf`, expireAt: new Date(Date.now() + 86_400_000).toISOString(), size: 2048, width: null, height: null };
    const msg = this.store.addMessage(visitor, chat, { subType: 'contact', content: { type: 'upload', text: null, data: attachment }, attachments: [attachment] });
    return { err: null, result: msg, after: () => this.push(visitor, 'chat.message_received', { chatId: chat.id, message: msg }) };
  }

  /** The upload URL of `chat.upload_init` accepts the multipart POST (content is not kept). */
  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/upload\/([0-9a-f]+)$/.exec(req.url ?? '');
    if (req.method === 'POST' && m && this.uploads.has(m[1])) {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
      return;
    }
    res.writeHead(404).end();
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
