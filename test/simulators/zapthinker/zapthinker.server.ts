import { createServer, IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Namespace, Server as IoServer } from 'socket.io';

/** A socket.io handshake seen by `allowRequest`. */
export interface RecordedHandshake {
  /** Request URL (path + query). */
  url: string;
  /** API key found in query or header. */
  apikey: string | undefined;
  /** Whether the handshake was accepted. */
  accepted: boolean;
  /** Rejection message passed to the allowRequest callback. */
  reason?: string;
  /** Epoch ms. */
  at: number;
}

/** How the socket server listens and whom it lets in. */
export interface EvolutionServerOptions {
  host: string;
  /** TCP port; 0 picks a free one, kept across a restart. */
  port?: number;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  connectTimeoutMs?: number;
  allowedHosts?: string[];
}

/**
 * Evolution's transport: one http server for REST and socket.io, auth at the Engine.IO handshake (`allowRequest`:
 * the `apikey` query or header must be a known key), per-instance namespaces `/<instance>` created lazily, and no
 * connection state recovery. What a test does to the connections (drops, raw packets) happens here.
 */
export class EvolutionSocketServer {
  /** Every socket.io handshake evaluated by allowRequest, oldest first. */
  readonly handshakes: RecordedHandshake[] = [];
  /** When set, every handshake is refused with this body. */
  authRejected: string | undefined;
  private http: HttpServer | undefined;
  private io: IoServer | undefined;
  private boundPort: number;

  constructor(
    private readonly opts: EvolutionServerOptions,
    private readonly isKnownToken: (key: string) => boolean,
    private readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  ) {
    this.boundPort = opts.port ?? 0;
  }

  /** Port the server is (or was last) bound to. */
  get port(): number {
    return this.boundPort;
  }

  /** True while listening. */
  get running(): boolean {
    return this.io !== undefined;
  }

  /** The namespace `/<instance>`, created (without emitting) when it does not exist yet, as the instance's first event would. */
  touch(instance: string): Namespace {
    return this.requireIo().of(`/${instance}`);
  }

  /** True if namespace `/<instance>` exists in the current io (since the last (re)start). */
  hasNamespace(instance: string): boolean {
    return this.io?._nsps.has(`/${instance}`) ?? false;
  }

  /**
   * Emits `event` with a payload given as JSON text to `/<instance>` as a raw socket.io packet: the encoder is bypassed,
   * so a payload JSON.stringify cannot encode (nested 20,000 deep) arrives as a hostile server would send it.
   */
  emitRawText(instance: string, event: string, payloadJson: string): void {
    for (const socket of this.requireIo().of(`/${instance}`).sockets.values()) socket.conn.write(`2/${instance},[${JSON.stringify(event)},${payloadJson}]`);
  }

  /**
   * Drops client connections of one instance (or of all namespaces); returns how many were dropped.
   * `'transport'` (default) closes the underlying Engine.IO connection without a socket.io DISCONNECT packet,
   * like a network cut or a server crash: the client sees 'transport close' and auto-reconnects.
   * `'server-disconnect'` is `socket.disconnect(true)`: the client sees 'io server disconnect' and does NOT
   * reconnect by itself (it must call `socket.connect()`).
   */
  dropConnections(instance?: string, mode: 'transport' | 'server-disconnect' = 'transport'): number {
    if (!this.io) return 0;
    let dropped = 0;
    const nsps: Namespace[] =
      instance === undefined ? [...this.io._nsps.values()] : [this.io._nsps.get(`/${instance}`)].filter(isNsp);
    for (const nsp of nsps) {
      for (const socket of [...nsp.sockets.values()]) {
        if (mode === 'server-disconnect') socket.disconnect(true);
        else socket.conn.close();
        dropped++;
      }
    }
    return dropped;
  }

  /** Number of sockets connected to `/<instance>` (0 when the namespace does not exist). */
  connectedClients(instance: string): number {
    return this.io?._nsps.get(`/${instance}`)?.sockets.size ?? 0;
  }

  /** Resolves once at least `n` clients are connected to `/<instance>`; rejects after `timeoutMs`. */
  async waitForClients(instance: string, n: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.connectedClients(instance) < n) {
      if (Date.now() > deadline) {
        throw new Error(
          `waitForClients(${instance}, ${n}) timed out after ${timeoutMs} ms (connected: ${this.connectedClients(instance)})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private requireIo(): IoServer {
    if (!this.io) throw new Error('ZapThinkerSimulator is not running; call start() first');
    return this.io;
  }

  /** Listens on `port` (0: a free one) with a fresh socket.io server: every namespace is created lazily again. */
  async listen(port: number): Promise<void> {
    const http = createServer((req, res) => this.onRequest(req, res));
    const io = new IoServer(http, {
      pingInterval: this.opts.pingIntervalMs ?? 25_000,
      pingTimeout: this.opts.pingTimeoutMs ?? 20_000,
      connectTimeout: this.opts.connectTimeoutMs ?? 45_000,
      cors: { origin: '*' },
      allowRequest: (req, callback) => this.allowRequest(req, callback),
    });
    io.on('connection', (socket) => {
      // Evolution listens for 'sendNode' only; accept and ignore it.
      socket.on('sendNode', () => undefined);
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (err: Error): void => reject(err);
          http.once('error', onError);
          http.listen(port, this.opts.host, () => {
            http.off('error', onError);
            resolve();
          });
        });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) {
          io.close();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.boundPort = (http.address() as AddressInfo).port;
    this.http = http;
    this.io = io;
  }

  /** Closes socket.io and http, cutting every connection. */
  async close(): Promise<void> {
    const io = this.io;
    const http = this.http;
    this.io = undefined;
    this.http = undefined;
    if (!io || !http) return;
    const closed = new Promise<void>((resolve) => {
      void io.close(() => resolve());
    });
    http.closeAllConnections();
    await closed;
  }

  private allowRequest(req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void): void {
    const url = new URL(req.url ?? '', 'http://localhost');
    const params = url.searchParams;
    const header = req.headers['apikey'];
    const apikey = params.get('apikey') || (Array.isArray(header) ? header[0] : header) || undefined;
    const record = (accepted: boolean, reason?: string): void => {
      this.handshakes.push({ url: req.url ?? '', apikey, accepted, reason, at: Date.now() });
      callback(accepted ? null : (reason ?? 'Authentication error'), accepted);
    };
    const allowed = this.opts.allowedHosts ?? [];
    const remote = req.socket.remoteAddress ?? '';
    if (params.has('EIO') && (allowed.includes('*') || allowed.includes(remote))) return record(true);
    if (!apikey) return record(false, 'apiKey is required');
    if (this.authRejected) return record(false, this.authRejected);
    if (!this.isKnownToken(apikey)) return record(false, 'Invalid global token');
    return record(true);
  }
}

function isNsp(v: Namespace | undefined): v is Namespace {
  return v !== undefined;
}
