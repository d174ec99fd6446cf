/**
 * A client of the bridge's live event stream: socket.io v4, namespace `/v1` (docs/api.md#socketio-namespace-v1).
 *
 * - **Auth.** The handshake carries the API token (`auth: {token}`). A wrong or missing token is refused with
 *   `connect_error` (`data.statusCode: 401`); socket.io does not retry a refused handshake, and neither does this
 *   client: a token does not become valid by waiting.
 * - **Subscribe on every connect.** A subscription belongs to one connection, and the stream is live only: events
 *   published while the client was away are not replayed (use Kafka or webhooks for that). So the client
 *   subscribes again after each reconnect.
 * - **Reconnect.** socket.io-client reconnects by itself after a lost transport, with backoff. When the bridge
 *   itself disconnects the client (`io server disconnect`, e.g. after `stream_error` `slow_consumer`), socket.io
 *   does not; this client reconnects then too, after a pause.
 *
 * Run it against a bridge (from the repository root):
 *
 *   CHATBRIDGE_URL=http://localhost:8080 CHATBRIDGE_TOKEN=… npx ts-node examples/live-stream/stream.ts
 *
 * Environment: `CHATBRIDGE_URL` (default `http://localhost:8080`), `CHATBRIDGE_TOKEN` (required, one of the
 * bridge's `CHATBRIDGE_API_TOKENS`), `STREAM_CHANNELS` and `STREAM_TYPES` (comma-separated filters, e.g.
 * `wa-sales` and `chatbridge.message.*`; unset: everything).
 */
import { io, type Socket } from 'socket.io-client';
import type { ChatbridgeJsonEvent } from '../chatbridge-event';

/** An event of the stream: the same structured CloudEvent as a webhook body. */
export type StreamEvent = ChatbridgeJsonEvent;

/** The `subscribe` payload: an omitted list matches everything; `types` take `*` globs. */
export interface Subscription {
  channels?: string[];
  types?: string[];
}

/** What `connectLiveStream` needs. */
export interface LiveStreamOptions {
  url: string;
  token: string;
  subscription: Subscription;
  onEvent: (event: StreamEvent) => void;
  /** Called after each successful `subscribe` (the first and every one after a reconnect). */
  onSubscribed?: (subscription: Subscription) => void;
  log?: (line: string) => void;
  /** Pause before reconnecting after the bridge disconnected the client. */
  reconnectAfterMs?: number;
}

/** A connected stream; `close` stops it for good. */
export interface LiveStream {
  socket: Socket;
  close(): void;
}

/** Connects to `/v1`, subscribes on every (re)connect and calls `onEvent` for each event. */
export function connectLiveStream(opts: LiveStreamOptions): LiveStream {
  const log = opts.log ?? ((line: string) => console.error(line));
  const socket = io(`${opts.url.replace(/\/$/, '')}/v1`, { auth: { token: opts.token }, reconnectionDelayMax: 10_000 });
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  socket.on('connect', () => {
    socket.timeout(10_000).emit('subscribe', opts.subscription, (err: Error | null, ack: { subscribed?: Subscription; error?: { statusCode: number; message: string } }) => {
      if (err) return log('subscribe: no answer within 10 s');
      // 429 or 503: too many subscribers; the connection stays, try again later. 400: fix the filter.
      if (ack.error) return log(`subscribe refused: ${ack.error.statusCode} ${ack.error.message}`);
      opts.onSubscribed?.(ack.subscribed ?? opts.subscription);
    });
  });
  socket.on('event', (event: StreamEvent) => opts.onEvent(event));
  socket.on('stream_error', (e: { reason: string; message: string }) => log(`stream_error ${e.reason}: ${e.message}`));
  socket.on('connect_error', (err: Error & { data?: { statusCode?: number } }) => {
    // A refused handshake (401) is final; a network error is retried by socket.io itself.
    log(`connect_error: ${err.message}${err.data?.statusCode ? ` (${err.data.statusCode})` : ''}`);
  });
  socket.on('disconnect', (reason) => {
    log(`disconnected: ${reason}`);
    if (reason === 'io server disconnect' && !closed) timer = setTimeout(() => socket.connect(), opts.reconnectAfterMs ?? 1000);
  });

  return {
    socket,
    close: () => {
      closed = true;
      clearTimeout(timer);
      socket.disconnect();
    },
  };
}

/** The command-line client: one line per event on stdout until SIGINT or SIGTERM. */
export function main(env: NodeJS.ProcessEnv = process.env): LiveStream {
  const token = env.CHATBRIDGE_TOKEN;
  if (!token) throw new Error('set CHATBRIDGE_TOKEN to one of the bridge\'s CHATBRIDGE_API_TOKENS');
  const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  const stream = connectLiveStream({
    url: env.CHATBRIDGE_URL ?? 'http://localhost:8080',
    token,
    subscription: { channels: list(env.STREAM_CHANNELS), types: list(env.STREAM_TYPES) },
    onSubscribed: (s) => console.error(`subscribed: ${JSON.stringify(s)}`),
    onEvent: (e) => console.log(e.time, e.type, e.partitionkey, e.id, JSON.stringify(e.data)),
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stream.close());
  return stream;
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
