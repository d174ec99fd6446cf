import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { eventFrameText, newEventId, type ClientFrame, type RecordedFrame } from './captivate.wire';

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

export interface Handshake {
  at: number;
  apiKey?: string;
  param?: string;
  status: 101 | 401 | 403;
}

/** The gateway's limits and what it needs of the rest of the simulator. */
export interface GatewayOptions {
  apiKeys: string[];
  idleTimeoutMs: number;
  idleCountsPings: boolean;
  maxAgeMs: number;
  wrapFrames: boolean;
  socketConnected: 'send' | 'withhold' | number;
  /** Records a client frame (socket and HTTP share one list). */
  recordFrame(frame: RecordedFrame): void;
  /** A routed client event (`action: sendMessage`): the hub acts on it. */
  event(socketId: string, type: string, payload: unknown): void;
}

const GOING_AWAY = 1001;

/**
 * AWS API Gateway WebSockets in front of the hub: the key checked at the upgrade (401 without, 403 with a wrong one),
 * `socket_connected` as the first frame, idle and max-age closes with 1001 "Going away", and its `Forbidden` answer to a
 * frame no route matches. What a test does to the sockets (drops, closes, raw frames) happens here.
 */
export class ApiGatewaySockets {
  readonly handshakes: Handshake[] = [];
  readonly closes: RecordedClose[] = [];
  readonly clients = new Map<string, SimClient>();
  /** `withhold`: never send socket_connected; a number: send it after that delay. */
  socketConnected: 'send' | 'withhold' | number;
  /** Refuse every upgrade with 403, whatever the key. */
  authRejected = false;
  private readonly wss = new WebSocketServer({ noServer: true });

  constructor(private readonly o: GatewayOptions) {
    this.socketConnected = o.socketConnected;
  }

  /** Sockets open now. */
  openClients(): SimClient[] {
    return [...this.clients.values()].filter((c) => c.ws.readyState === WebSocket.OPEN);
  }

  /** Sends one hub event to the socket when it is open; false when it is not. */
  send(socketId: string, type: string, payload: Record<string, unknown>, eventId = newEventId()): boolean {
    const client = this.clients.get(socketId);
    if (client?.ws.readyState !== WebSocket.OPEN) return false;
    client.ws.send(this.frameText(type, payload, eventId));
    return true;
  }

  /** One hub event as the sockets get it (wrapped or bare, per `wrapFrames`). */
  frameText(type: string, payload: Record<string, unknown>, eventId: string): string {
    return eventFrameText(type, payload, eventId, this.o.wrapFrames);
  }

  /** Sends raw text to every open socket. */
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

  /** The server stops: every socket is cut and forgotten. */
  terminateAll(): void {
    for (const c of this.clients.values()) this.forget(c);
    for (const c of this.wss.clients) c.terminate();
  }

  /** The http server's `upgrade` handler. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
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
    const hello = () => this.send(client.socketId, 'socket_connected', { socket_id: client.socketId });
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
    this.o.recordFrame({ via: 'socket', socketId: client.socketId, at: Date.now(), text, ...(json === undefined ? {} : { json }) });
    const frame = json as ClientFrame | undefined;
    if (frame?.action !== 'sendMessage' || typeof frame.event?.event_type !== 'string') {
      // API Gateway's answer when no route matches the action.
      client.ws.send(JSON.stringify({ message: 'Forbidden', connectionId: client.socketId, requestId: newEventId() }));
      return;
    }
    this.o.event(client.socketId, frame.event.event_type, frame.event.event_payload);
  }
}
