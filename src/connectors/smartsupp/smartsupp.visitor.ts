import io from 'socket.io-client-v2';
import { CommandError, ConnectorError, describeError } from '../../common/errors';
import { redactText } from '../../common/redact';
import { classifyConnectError, type ConnectErrorRules } from '../connect-error';
import type { Connector, ConnectorHooks } from '../connector.interface';
import { isRecord } from '../mapper';
import { isAuthError, readAckError, visitorConnectData, type Emit, type VisitorIdentity } from './smartsupp.commands';
import type { SmartsuppOptions } from './smartsupp.options';

/**
 * How a visitor socket's connect errors read: the handshake carries no key (the account key goes in `visitor.connect`,
 * whose ack refuses it), so no handshake status refuses a credential; socket.io v2 gives no status anyway (see
 * classifyConnectError).
 */
export const SMARTSUPP_REFUSALS: ConnectErrorRules = { credential: 'account key', authStatuses: [] };

/** What a visitor socket reports to the channel connector that owns it. */
export interface VisitorObserver {
  /**
   * `visitor.connect` was acknowledged: the visitor is live; `data` is ConnectedData. `previousId` is set
   * when the server answered a known id with a different visitor (the old one no longer exists upstream).
   */
  initialized(visitor: SmartsuppVisitor, data: Record<string, unknown>, previousId?: string): void;
  /** A connection attempt failed (no `lost` follows). */
  failed(visitor: SmartsuppVisitor, error: ConnectorError): void;
  /** The live connection ended without `close()`. */
  lost(visitor: SmartsuppVisitor, error: ConnectorError): void;
  /** A server-pushed event arrived. */
  event(visitor: SmartsuppVisitor, event: string, data: unknown): void;
}

/** Settings and callbacks every visitor of a channel shares (one object, so each visitor stays small). */
export interface VisitorShared {
  options: SmartsuppOptions;
  observer: VisitorObserver;
  url: string;
}

/** The visitor of each socket, for the socket listeners every visitor shares (see `listen`). */
const owners = new WeakMap<io.Socket, SmartsuppVisitor>();

/**
 * One Smartsupp visitor: a socket.io 2.x socket whose connection is "up" once `visitor.connect` is acked,
 * exactly as the official SDK does on every connect. Library reconnection is off: a ConnectionSupervisor
 * per visitor reconnects. The socket and its listeners are created once per socket object.
 */
export class SmartsuppVisitor implements Connector {
  /** Visitor id; null until the server assigned one. */
  id: string | null;
  /** The visitor's current chat, when it has one. */
  chatId?: string;
  /** Newest message time (ms) already published for this visitor: older snapshot messages are skipped. */
  since?: number;
  /** Ids of the published messages created exactly at `since` (usually one). */
  seen?: string[];
  /** True between an acked `visitor.connect` and the next disconnect. */
  ready = false;
  /** Set while the channel throttles the first connects of a (re)start. */
  starting = false;
  /** Last frame or command of this visitor (ms): it expires after `visitorIdleMs` without one. */
  activeAt = Date.now();
  /** `activeAt` as last written to the state (ms). */
  savedActiveAt?: number;
  /** Supervisor hooks (set by the supervisor's factory). */
  hooks?: ConnectorHooks;
  private socket?: io.Socket;
  private pending?: { resolve: () => void; reject: (e: ConnectorError) => void; timer: NodeJS.Timeout };
  private closing = false;
  /** Connection counter: acks of an older connection are ignored. */
  private gen = 0;
  /** Rejecters of command acks in flight; created on first use. */
  private waiting?: Set<(e: CommandError) => void>;

  constructor(
    private readonly shared: VisitorShared,
    id: string | null,
    /** Identity given at `conversation.start`, sent again on every connect as the SDK does. */
    readonly identity?: VisitorIdentity,
  ) {
    this.id = id;
  }

  connect(): Promise<void> {
    this.closing = false;
    const socket = (this.socket ??= this.createSocket());
    const { connectTimeoutMs, ackTimeoutMs } = this.shared.options;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new ConnectorError('connect_timeout', 'visitor connection or visitor.connect ack timed out', { retriable: true })), connectTimeoutMs + ackTimeoutMs);
      this.pending = { resolve, reject, timer };
      socket.open();
    });
  }

  /** Nothing to subscribe: the server pushes the visitor's events on its socket. */
  async subscribe(): Promise<void> {}

  async close(): Promise<void> {
    this.closing = true;
    this.ready = false;
    if (this.pending) this.fail(new ConnectorError('closed', 'visitor closed', { retriable: false }));
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
    this.rejectWaiting('closed');
  }

  /**
   * Emits one command frame. Resolves with the ack's result (undefined without ack). Not connected →
   * `not_connected` (surely not sent); no ack in time or connection lost first → ambiguous (`sent: true`).
   */
  send(emit: Emit): Promise<unknown> {
    const socket = this.socket;
    if (!socket?.connected || !this.ready) {
      return Promise.reject(new CommandError('not_connected', `visitor ${this.id ?? '(new)'} is not connected`, { retriable: true, sent: false }));
    }
    if (!emit.ack) {
      socket.emit(emit.event, emit.data);
      return Promise.resolve(undefined);
    }
    return new Promise<unknown>((resolve, reject) => {
      const waiting = (this.waiting ??= new Set());
      const done = (e?: CommandError, result?: unknown) => {
        clearTimeout(timer);
        waiting.delete(rejecter);
        if (e) reject(e);
        else resolve(result);
      };
      const rejecter = (e: CommandError) => done(e);
      const timer = setTimeout(() => done(new CommandError('ack_timeout', `no ack for ${emit.event} within ${this.shared.options.ackTimeoutMs} ms`, { retriable: false, sent: true })), this.shared.options.ackTimeoutMs);
      waiting.add(rejecter);
      socket.emit(emit.event, emit.data, (err, result) => {
        const ackError = readAckError(err);
        if (!ackError) return done(undefined, result);
        const retriable = (ackError.code ?? 0) >= 500;
        done(new CommandError(isAuthError(ackError) ? 'auth_rejected' : ackError.type ?? 'upstream_error', `${emit.event} refused: ${ackError.message}`, { retriable, sent: false, cause: ackError }));
      });
    });
  }

  private createSocket(): io.Socket {
    const { options } = this.shared;
    const socket = io(this.shared.url, {
      path: options.path,
      transports: ['websocket'],
      // The `ws` client, not Node's global WebSocket (Node 22 and later), which Engine.IO 3 would otherwise take:
      // with 10,000 visitors on Node 24, 15 KB of heap per visitor against 46 KB.
      forceNode: true,
      forceNew: true,
      reconnection: false,
      autoConnect: false,
      timeout: options.connectTimeoutMs,
    });
    owners.set(socket, this);
    socket.on('connect', SmartsuppVisitor.listen.connect);
    socket.on('connect_error', SmartsuppVisitor.listen.connectError);
    socket.on('error', SmartsuppVisitor.listen.error);
    socket.on('disconnect', SmartsuppVisitor.listen.disconnect);
    // socket.io 2.x has no onAny: every server event is taken from the packet dispatcher instead.
    socket.onevent = SmartsuppVisitor.listen.event;
    return socket;
  }

  /**
   * The socket's listeners, the same functions for every visitor (a channel holds thousands of sockets, so none
   * costs closures of its own): the library calls them with the socket as `this`, and each finds its visitor by it.
   */
  private static readonly listen = {
    connect(this: io.Socket): void {
      owners.get(this)?.onConnect(this);
    },
    connectError(this: io.Socket, err: unknown): void {
      owners.get(this)?.fail(classifyConnectError(err, SMARTSUPP_REFUSALS));
    },
    error(this: io.Socket, err: unknown): void {
      owners.get(this)?.fail(new ConnectorError('socket_error', `socket error: ${redactText(describeError(err))}`, { retriable: true, cause: err }));
    },
    disconnect(this: io.Socket, reason: string): void {
      owners.get(this)?.onDisconnect(reason);
    },
    event(this: io.Socket, packet: io.Packet): void {
      const visitor = owners.get(this);
      if (!visitor) return;
      const args = packet.data ?? [];
      if (typeof args[0] !== 'string') return;
      const data = args.length > 2 ? args.slice(1) : args[1];
      // The channel's fault boundary, as `guarded` gives every other listener, without a wrapper per socket.
      if (!visitor.hooks) return visitor.shared.observer.event(visitor, args[0], data);
      try {
        visitor.shared.observer.event(visitor, args[0], data);
      } catch (err) {
        visitor.hooks.fault('onevent', err, [packet]);
      }
    },
  };

  /**
   * A fault boundary like every connector's listener: what `fn` throws while handling upstream input (a frame, an
   * ack's snapshot) is reported by the channel, and the socket goes on. The supervisor sets `hooks` before any open.
   */
  private guarded<A extends unknown[]>(where: string, fn: (...args: A) => void): (...args: A) => void {
    return this.hooks ? this.hooks.guard(where, fn) : fn;
  }

  /** Every socket connect starts with `visitor.connect` (ack = ConnectedData), as the SDK does. */
  private onConnect(socket: io.Socket): void {
    const gen = ++this.gen;
    this.ready = false;
    socket.emit('visitor.connect', visitorConnectData(this.shared.options, this.id, this.identity), this.guarded('visitor.connect ack', (err: unknown, result: unknown) => {
      if (gen !== this.gen || !this.pending) return;
      const ackError = readAckError(err);
      if (ackError) {
        const auth = isAuthError(ackError);
        return this.fail(new ConnectorError(auth ? 'auth_rejected' : 'visitor_connect_failed', `visitor.connect refused: ${ackError.message}`, { retriable: true, authFailure: auth, cause: ackError }));
      }
      const visitor = isRecord(result) && isRecord(result.visitor) ? result.visitor : undefined;
      const id = visitor && typeof visitor.id === 'string' && visitor.id ? visitor.id : undefined;
      if (!isRecord(result) || !id) return this.fail(new ConnectorError('bad_handshake', 'visitor.connect ack without visitor.id', { retriable: true }));
      const previousId = this.id !== null && this.id !== id ? this.id : undefined;
      this.id = id;
      this.ready = true;
      const p = this.pending;
      this.pending = undefined;
      clearTimeout(p.timer);
      this.shared.observer.initialized(this, result, previousId);
      p.resolve();
    }));
  }

  private fail(error: ConnectorError): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    this.ready = false;
    this.gen++;
    // A failed attempt leaves the manager half-open; closing resets it so the next open() starts clean.
    this.socket?.close();
    if (!this.closing) this.shared.observer.failed(this, error);
    p.reject(error);
  }

  private onDisconnect(reason: string): void {
    const wasReady = this.ready;
    this.ready = false;
    this.rejectWaiting('disconnected');
    if (this.pending) return this.fail(new ConnectorError('disconnected', `socket closed during handshake: ${reason}`, { retriable: true }));
    if (this.closing || !wasReady) return;
    const error = new ConnectorError('disconnected', `visitor socket disconnected: ${reason}`, { retriable: true });
    this.shared.observer.lost(this, error);
    this.hooks?.lost(error);
  }

  private rejectWaiting(code: 'closed' | 'disconnected'): void {
    if (!this.waiting?.size) return;
    const error = new CommandError(code, `connection ${code} before the ack arrived`, { retriable: false, sent: true });
    for (const reject of [...this.waiting]) reject(error);
  }
}

