/**
 * The subset of socket.io-client 2.x (installed as the alias `socket.io-client-v2`, Engine.IO protocol 3)
 * that the Smartsupp connector uses. Written here because `@types/socket.io-client@1` clashes with v4's types.
 */
declare module 'socket.io-client-v2' {
  /** Creates a socket (and, with `forceNew`, its own Manager and Engine.IO connection). */
  function io(uri: string, opts?: io.ConnectOpts): io.Socket;

  namespace io {
    /** Manager + Engine.IO options (subset). */
    interface ConnectOpts {
      path?: string;
      transports?: string[];
      forceNew?: boolean;
      multiplex?: boolean;
      reconnection?: boolean;
      autoConnect?: boolean;
      /** Connection timeout in ms before `connect_error`/`connect_timeout` (default 20000). */
      timeout?: number | false;
      query?: Record<string, string>;
      extraHeaders?: Record<string, string>;
      /**
       * Use the `ws` package even where a global `WebSocket` exists (Node 22 and later): without it Engine.IO 3 takes
       * the global one (undici's), which costs about 3x the heap per connection and drops `extraHeaders`.
       */
      forceNode?: boolean;
    }

    /** A decoded socket.io packet. */
    interface Packet {
      type: number;
      nsp: string;
      id?: number;
      data?: unknown[];
    }

    /** Node-style acknowledgement callback: `(err, result)`. */
    type Ack = (err: unknown, result?: unknown) => void;

    /** A socket.io 2.x client socket. */
    interface Socket {
      readonly connected: boolean;
      readonly disconnected: boolean;
      id?: string;
      /** Opens (or reopens) the connection. */
      open(): Socket;
      /** Closes the connection; no automatic reconnection follows. */
      close(): Socket;
      /** Emits an event; a trailing function is the acknowledgement callback. */
      emit(event: string, data?: unknown, ack?: Ack): Socket;
      on(event: 'connect' | 'connect_timeout', listener: () => void): Socket;
      on(event: 'disconnect', listener: (reason: string) => void): Socket;
      on(event: 'connect_error' | 'error', listener: (err: unknown) => void): Socket;
      /** Dispatches one incoming EVENT packet; replaceable per instance (v2 has no `onAny`). */
      onevent(packet: Packet): void;
    }
  }

  export = io;
}
