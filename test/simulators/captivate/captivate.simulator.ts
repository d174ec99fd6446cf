/**
 * Local simulator of Captivate Hub's custom-channel socket API (docs/providers.md#captivate) as it looks from outside:
 * AWS API Gateway WebSockets (key checked at the upgrade: 401 without, 403 with a wrong one; `socket_connected`
 * as the first frame; idle and max-age closes with 1001 "Going away"), the `{action, event}` frames of the
 * manual, and the SDK ≥5 HTTP endpoints (`POST /api/custom-channel/sockets/message`, `GET /api/transcript`).
 * Replies go to the socket that last acted for the conversation; when it is gone they are lost (kept only in
 * the transcript), as the manual warns. Its parts: the sockets (captivate.gateway.ts), the hub and its scripted bot
 * (captivate.hub.ts), the HTTP API (captivate.http.ts); this file is the server and the tests' handle.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiGatewaySockets, type Handshake, type RecordedClose, type SimClient } from './captivate.gateway';
import { CaptivateHttpApi, type RecordedRequest } from './captivate.http';
import { CaptivateHub, type Conversation } from './captivate.hub';
import { asRecord, eventTypeOf, newEventId, type RecordedFrame } from './captivate.wire';

export type { Handshake, RecordedClose, SimClient } from './captivate.gateway';
export type { RecordedRequest } from './captivate.http';
export type { SimTranscriptEntry } from './captivate.hub';
export type { RecordedFrame } from './captivate.wire';

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

/** Kinds of broken frames `emitMalformed` produces. */
export type CaptivateMalformedKind = 'not-json' | 'no-event-type' | 'bot-no-content' | 'unknown-type';

export class CaptivateSimulator {
  readonly frames: RecordedFrame[] = [];
  private readonly o: Required<CaptivateSimulatorOptions>;
  private readonly gateway: ApiGatewaySockets;
  private readonly hub: CaptivateHub;
  private readonly http: CaptivateHttpApi;
  private server?: Server;
  private portNo = 0;

  constructor(opts: CaptivateSimulatorOptions = {}) {
    this.o = {
      apiKeys: ['test-key'], botReplyDelayMs: 20, idleTimeoutMs: 600_000, idleCountsPings: false, maxAgeMs: 7_200_000,
      greeting: true, wrapFrames: true, socketConnected: 'send', ...opts,
    };
    const recordFrame = (frame: RecordedFrame) => void this.frames.push(frame);
    this.gateway = new ApiGatewaySockets({ ...this.o, recordFrame, event: (socketId, type, payload) => void this.hub.handle(socketId, type, asRecord(payload)) });
    this.hub = new CaptivateHub(this.gateway, this.o);
    this.http = new CaptivateHttpApi({ apiKeys: this.o.apiKeys, hub: this.hub, recordFrame, connected: (socketId) => this.gateway.clients.has(socketId) });
  }

  /** Every HTTP request, with the status it got. */
  get requests(): RecordedRequest[] {
    return this.http.requests;
  }
  /** Every socket upgrade, with the status it got. */
  get handshakes(): Handshake[] {
    return this.gateway.handshakes;
  }
  /** How each socket ended. */
  get closes(): RecordedClose[] {
    return this.gateway.closes;
  }
  /** The sockets by id (closed ones leave). */
  get clients(): Map<string, SimClient> {
    return this.gateway.clients;
  }
  /** The hub's conversations, with their transcripts. */
  get conversations(): Map<string, Conversation> {
    return this.hub.conversations;
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
    const server = createServer((req, res) => void this.http.handle(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.gateway.upgrade(req, socket, head));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
    this.portNo = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.gateway.terminateAll();
    this.http.dropHung();
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
    this.gateway.socketConnected = mode;
  }
  /** Refuse every upgrade with 403, whatever the key. */
  rejectAuth(on: boolean): void {
    this.gateway.authRejected = on;
  }
  /** The next `n` POSTs fail with `status` (nothing acted), or act but never answer (`hang`). */
  failNextHttp(n: number, status: number | 'hang'): void {
    this.http.failNext(n, status);
  }

  /** Sockets open now. */
  openClients(): SimClient[] {
    return this.gateway.openClients();
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
    return this.hub.createConversation(socketId, userId);
  }

  /** A bot reply in a conversation; delivered to its socket if that is open. Returns the event sent. */
  botMessage(conversationId: string, text: string, extra: unknown[] = []): Record<string, unknown> {
    return this.hub.botMessage(conversationId, text, extra);
  }

  /** A human agent's message (no message id upstream: the transcript keeps the delivery's event_id). */
  livechatMessage(conversationId: string, text: string, files: unknown[] = []): Record<string, unknown> {
    return this.hub.livechatMessage(conversationId, text, files);
  }

  /** conversation_update (livechatAgentConnected, livechatAgentDisconnected, failedAgentAssignment). */
  conversationUpdate(conversationId: string, type: string, data: Record<string, unknown> = {}): Record<string, unknown> {
    return this.hub.conversationUpdate(conversationId, type, data);
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
      : kind === 'bot-no-content' ? this.gateway.frameText('bot_message', { type: 'message_create', ch_msg_id: randomUUID(), bot: {} }, newEventId())
      : this.gateway.frameText('typing_indicator', { conversation_id: 'c-unknown', typing: true }, newEventId());
    this.gateway.sendRawText(text);
  }

  /** Sends raw text to every open socket (a frame as a hostile hub could send it). */
  sendRawText(text: string): void {
    this.gateway.sendRawText(text);
  }

  /** Cuts every socket without a close frame (the client sees 1006). */
  dropConnections(): number {
    return this.gateway.dropConnections();
  }
  /** Closes every socket the way API Gateway does at its limits (1001 Going away). */
  closeConnections(code?: number): number {
    return this.gateway.closeConnections(code);
  }
}
