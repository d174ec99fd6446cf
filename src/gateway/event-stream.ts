import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import type { PipelineEvent } from '../envelope/envelope';
import type { Metrics } from '../health/metrics';
import type { Sink } from '../sinks/sink.interface';
import { eventFilter, type EventFilter } from '../sinks/webhook/webhook.filter';
import type { Subscription } from './subscription';
import { WriteBacklog } from './write-backlog';

/** The socket.io side a subscriber needs (a socket.io server Socket). */
export type StreamSocket = Pick<Socket, 'id' | 'emit' | 'disconnect' | 'conn'>;

/** What a cut-off subscriber receives as `stream_error` before it is disconnected. */
export interface StreamError {
  reason: 'slow_consumer';
  message: string;
  /** Messages that were waiting to be written to the subscriber when it was cut off. */
  buffered: number;
  limit: number;
}

interface Subscriber {
  socket: StreamSocket;
  filter: EventFilter;
  backlog: WriteBacklog;
}

/**
 * The live event stream (SPEC §8 `subscribe` → `event`): a sink that hands each event to every socket.io
 * subscriber whose filter matches, as the structured CloudEvent. It never waits on a socket: a subscriber with
 * more than `maxBufferedEvents` messages not yet written is sent `stream_error` and disconnected, so a slow client
 * costs the bridge a bounded amount of memory and no time. Not a delivery sink: it never counts for readiness.
 */
export class EventStream implements Sink {
  readonly name = 'stream';
  private readonly subscribers = new Map<string, Subscriber>();
  private stopped = false;

  constructor(
    private readonly opts: { maxBufferedEvents: number },
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Sets (or replaces) what `socket` receives. */
  subscribe(socket: StreamSocket, subscription: Subscription): void {
    const existing = this.subscribers.get(socket.id);
    const filter = eventFilter(subscription);
    if (existing) existing.filter = filter;
    else this.subscribers.set(socket.id, { socket, filter, backlog: new WriteBacklog(socket.conn) });
    this.metrics.streamSubscribers.set(this.subscribers.size);
  }

  /** Stops sending to `socket` (unsubscribe or disconnect); a no-op for a socket that is not subscribed. */
  unsubscribe(socketId: string): void {
    const sub = this.subscribers.get(socketId);
    if (!sub) return;
    sub.backlog.detach();
    this.subscribers.delete(socketId);
    this.metrics.streamSubscribers.set(this.subscribers.size);
  }

  /** Current subscribers. */
  get size(): number {
    return this.subscribers.size;
  }

  publish(item: PipelineEvent): void {
    if (this.stopped) return;
    for (const sub of this.subscribers.values()) {
      if (!sub.filter.matches(item.event)) continue;
      // The canonical event object is its structured-mode JSON (toStructured is JSON.stringify of it).
      sub.socket.emit('event', item.event);
      this.metrics.streamEvents.inc();
      if (sub.backlog.pending > this.opts.maxBufferedEvents) this.cutOff(sub);
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

  private cutOff(sub: Subscriber): void {
    const buffered = sub.backlog.pending;
    this.unsubscribe(sub.socket.id);
    const error: StreamError = {
      reason: 'slow_consumer',
      message: `disconnected: more than ${this.opts.maxBufferedEvents} messages were waiting to be written to this subscriber (api.stream.maxBufferedEvents); read faster or narrow the subscription, then reconnect`,
      buffered,
      limit: this.opts.maxBufferedEvents,
    };
    sub.socket.emit('stream_error', error);
    sub.socket.disconnect(true);
    this.metrics.streamDisconnects.inc({ reason: error.reason });
    this.log.warn({ socket: sub.socket.id, buffered, limit: error.limit }, 'slow stream subscriber disconnected');
  }
}
