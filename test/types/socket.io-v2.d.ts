/**
 * The subset of the socket.io 2.x server (installed as the alias `socket.io-v2`, Engine.IO protocol 3) that the
 * Smartsupp simulator uses.
 */
declare module 'socket.io-v2' {
  import type { Server as HttpServer } from 'node:http';

  /** Creates a socket.io 2.x server attached to an HTTP server. */
  function createServer(http: HttpServer, opts?: createServer.ServerOptions): createServer.Server;

  namespace createServer {
    /** Server options (subset). */
    interface ServerOptions {
      path?: string;
      transports?: string[];
      pingInterval?: number;
      pingTimeout?: number;
      serveClient?: boolean;
      cookie?: boolean;
    }

    /** Node-style acknowledgement callback as the client sent it. */
    type Ack = (err: unknown, result?: unknown) => void;

    /** A decoded socket.io packet. */
    interface Packet {
      type: number;
      nsp: string;
      id?: number;
      data?: unknown[];
    }

    /** One client connection. */
    interface Socket {
      readonly id: string;
      readonly connected: boolean;
      readonly handshake: { url: string; query: Record<string, string>; headers: Record<string, string | string[] | undefined> };
      /** The Engine.IO connection; `close()` drops the transport without a socket.io DISCONNECT. */
      readonly conn: { close(): void; readonly transport: { readonly name: string } };
      emit(event: string, ...args: unknown[]): boolean;
      on(event: 'disconnect', listener: (reason: string) => void): Socket;
      on(event: string, listener: (data: unknown, ack?: Ack) => void): Socket;
      /** Sends a DISCONNECT packet (and closes the transport when `close` is true). */
      disconnect(close?: boolean): Socket;
      /** Dispatches one incoming EVENT packet; replaceable per instance (v2 has no `onAny`). */
      onevent(packet: Packet): void;
    }

    /** The server. */
    interface Server {
      on(event: 'connection', listener: (socket: Socket) => void): Server;
      close(cb?: () => void): void;
    }
  }

  export = createServer;
}
