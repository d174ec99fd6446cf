import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import type { PipelineEvent } from '../envelope/envelope';
import type { Metrics } from '../health/metrics';
import type { Sink } from '../sinks/sink.interface';
import { eventFilter, type EventFilter } from '../sinks/webhook/webhook.filter';
import { type Subscription, SubscriptionError } from './subscription';
import { WriteBacklog } from './write-backlog';

/** The socket.io side a subscriber needs (a socket.io server Socket). */
export type StreamSocket = Pick<Socket, 'id' | 'emit' | 'disconnect' | 'conn' | 'nsp'>;

/** What a cut-off subscriber receives as `stream_error` before it is disconnected. */
export interface StreamError {
  reason: 'slow_consumer';
  message: string;
  /** Messages that were waiting to be written to the subscriber when it was cut off. */
  buffered: number;
  limit: number;
  /** Characters of those messages, and their limit. */
  bufferedBytes: number;
  limitBytes: number;
}

/** The limits of the stream (`api.stream`). */
export interface StreamLimits {
  maxBufferedEvents: number;
  maxBufferedBytes: number;
  maxSubscribersPerToken: number;
  maxSubscribers: number;
}

interface Subscriber {
  socket: StreamSocket;
  token: string;
  filter: EventFilter;
  backlog: WriteBacklog;
}

/**
 * The live event stream (`subscribe` → `event`): a sink that hands each event to every socket.io subscriber
 * whose filter matches, as the structured CloudEvent. It never waits on a socket: a subscriber with more than
 * `maxBufferedEvents` messages or `maxBufferedBytes` characters not yet written is sent `stream_error` and
 * disconnected, and subscribers are limited per API token and in all, so subscribers cost the bridge a bounded
 * amount of memory and no time. Not a delivery sink: it never counts for readiness.
 */
export class EventStream implements Sink {
  readonly name = 'stream';
  private readonly subscribers = new Map<string, Subscriber>();
  private readonly perToken = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly opts: StreamLimits,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Sets (or replaces) what `socket`, authenticated with `token`, receives; a new subscriber past a limit is a SubscriptionError (429/503). */
  subscribe(socket: StreamSocket, subscription: Subscription, token: string): void {
    const existing = this.subscribers.get(socket.id);
    const filter = eventFilter(subscription);
    if (existing) {
      existing.filter = filter;
      return;
    }
    this.checkRoom(token);
    this.subscribers.set(socket.id, { socket, token, filter, backlog: new WriteBacklog(socket.conn) });
    this.perToken.set(token, (this.perToken.get(token) ?? 0) + 1);
    this.metrics.streamSubscribers.set(this.subscribers.size);
  }

  /** Stops sending to `socket` (unsubscribe or disconnect); a no-op for a socket that is not subscribed. */
  unsubscribe(socketId: string): void {
    const sub = this.subscribers.get(socketId);
    if (!sub) return;
    sub.backlog.detach();
    this.subscribers.delete(socketId);
    const left = (this.perToken.get(sub.token) ?? 1) - 1;
    if (left > 0) this.perToken.set(sub.token, left);
    else this.perToken.delete(sub.token);
    this.metrics.streamSubscribers.set(this.subscribers.size);
  }

  publish(item: PipelineEvent): void {
    if (this.stopped) return;
    const matched: Subscriber[] = [];
    for (const sub of this.subscribers.values()) if (sub.filter.matches(item.event)) matched.push(sub);
    if (!matched.length) return;
    // One broadcast to the subscribers' own rooms: socket.io encodes it once and every connection holds that same
    // message, so an event costs one encoding and one copy however many subscribers wait to write it. The canonical
    // event object is its structured-mode JSON (toStructured is JSON.stringify of it).
    matched[0].socket.nsp.to(matched.map((sub) => sub.socket.id)).emit('event', item.event);
    this.metrics.streamEvents.inc(matched.length);
    for (const sub of matched) {
      if (sub.backlog.pending > this.opts.maxBufferedEvents || sub.backlog.pendingChars > this.opts.maxBufferedBytes) this.cutOff(sub);
    }
  }

  async start(): Promise<void> {
    this.stopped = false;
  }

  /** Stops forwarding; the HTTP server's shutdown closes the sockets. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const id of [...this.subscribers.keys()]) this.unsubscribe(id);
  }

  ready(): boolean {
    return true;
  }

  /** Messages waiting to be written to subscribers, all together. */
  depth(): number {
    let n = 0;
    for (const sub of this.subscribers.values()) n += sub.backlog.pending;
    return n;
  }

  /** Throws the refusal of one more subscriber for `token` when a limit is reached. */
  private checkRoom(token: string): void {
    const { maxSubscribersPerToken: perToken, maxSubscribers: total } = this.opts;
    if ((this.perToken.get(token) ?? 0) >= perToken) {
      throw new SubscriptionError(429, 'subscribers_per_token', `this API token has ${perToken} subscribed sockets, its limit (api.stream.maxSubscribersPerToken); unsubscribe or close one of them first`);
    }
    if (this.subscribers.size >= total) {
      throw new SubscriptionError(503, 'subscribers_total', `the live stream has ${total} subscribers, its limit (api.stream.maxSubscribers); try again later`);
    }
  }

  private cutOff(sub: Subscriber): void {
    const buffered = sub.backlog.pending;
    const bufferedBytes = sub.backlog.pendingChars;
    this.unsubscribe(sub.socket.id);
    const { maxBufferedEvents: limit, maxBufferedBytes: limitBytes } = this.opts;
    const error: StreamError = {
      reason: 'slow_consumer',
      message: `disconnected: more than ${limit} messages or ${limitBytes} bytes were waiting to be written to this subscriber (api.stream.maxBufferedEvents, api.stream.maxBufferedBytes); read faster or narrow the subscription, then reconnect`,
      buffered,
      limit,
      bufferedBytes,
      limitBytes,
    };
    sub.socket.emit('stream_error', error);
    sub.socket.disconnect(true);
    this.metrics.streamDisconnects.inc({ reason: error.reason });
    this.log.warn({ socket: sub.socket.id, buffered, bufferedBytes, limit, limitBytes }, 'slow stream subscriber disconnected');
  }
}
