import { EventEmitter } from 'node:events';
import pino from 'pino';
import { createEvent, type PipelineEvent } from '../envelope/envelope';
import { Metrics } from '../health/metrics';
import { EventStream, type StreamSocket } from './event-stream';
import { SubscriptionError } from './subscription';

/** The namespace's broadcast to socket-id rooms, over the sockets made here. */
const sockets = new Map<string, { emit(event: string, data: unknown): boolean }>();
const nsp = { to: (ids: string[]) => ({ emit: (event: string, data: unknown) => ids.every((id) => sockets.get(id)?.emit(event, data)) }) };

/**
 * A socket whose connection never writes: every `emit` becomes one engine.io packet of the JSON text that stays
 * pending, as with a client that stopped reading once the kernel's buffers are full.
 */
function stalledSocket(id: string) {
  const conn = Object.assign(new EventEmitter(), { transport: new EventEmitter() });
  const sent: Array<{ event: string; data: unknown }> = [];
  let disconnected = false;
  const socket = {
    id,
    conn,
    nsp,
    emit(event: string, data: unknown) {
      sent.push({ event, data });
      conn.emit('packetCreate', { type: 'message', data: `42${JSON.stringify([event, data])}` });
      return true;
    },
    disconnect() {
      disconnected = true;
      return socket;
    },
  };
  sockets.set(id, socket);
  return { socket: socket as unknown as StreamSocket, sent, isDisconnected: () => disconnected };
}

function message(text: string): PipelineEvent {
  const channel = { id: 'wa', provider: 'zapthinker' as const };
  const { event, stableId } = createEvent({ type: 'chatbridge.message.received', channelId: 'wa', provider: 'zapthinker', data: { channel, upstream: { event: 'x', payload: null }, message: { direction: 'inbound', text } } });
  return { event, stableId, receivedAt: 0 };
}

describe('EventStream', () => {
  const limits = { maxBufferedEvents: 1000, maxBufferedBytes: 64 * 1024, maxSubscribersPerToken: 2, maxSubscribers: 3 };
  let metrics: Metrics;
  let stream: EventStream;
  beforeEach(() => {
    metrics = new Metrics({ defaultMetrics: false });
    stream = new EventStream(limits, metrics, pino({ level: 'silent' }));
  });
  const refusal = (fn: () => void): SubscriptionError => {
    try {
      fn();
    } catch (err) {
      if (err instanceof SubscriptionError) return err;
      throw err;
    }
    throw new Error('accepted');
  };
  /** The subscribers now, as the `chatbridge_stream_subscribers` gauge reports them. */
  const subscribers = async (): Promise<number> => (await metrics.streamSubscribers.get()).values[0]?.value ?? 0;

  it('refuses a new subscriber past its token\'s limit (429) and past the total (503), and frees the slot on unsubscribe', async () => {
    const s = (id: string) => stalledSocket(id).socket;
    stream.subscribe(s('a1'), {}, 'token-a');
    stream.subscribe(s('a2'), {}, 'token-a');
    stream.subscribe(s('a1'), { types: ['x.*'] }, 'token-a');
    expect(refusal(() => stream.subscribe(s('a3'), {}, 'token-a'))).toMatchObject({ statusCode: 429, reason: 'subscribers_per_token', retriable: true });
    stream.subscribe(s('b1'), {}, 'token-b');
    expect(refusal(() => stream.subscribe(s('b2'), {}, 'token-b'))).toMatchObject({ statusCode: 503, reason: 'subscribers_total', retriable: true });
    expect(await subscribers()).toBe(3);
    stream.unsubscribe('a2');
    stream.subscribe(s('a3'), {}, 'token-a');
    expect(refusal(() => stream.subscribe(s('a4'), {}, 'token-a')).statusCode).toBe(429);
  });

  it('cuts off a subscriber whose unwritten messages pass the byte limit, well before the message limit', async () => {
    const slow = stalledSocket('slow');
    stream.subscribe(slow.socket, {}, 'token-a');
    const text = 'x'.repeat(10_000);
    let n = 0;
    while (!slow.isDisconnected() && n < 100) stream.publish(message(`${n++} ${text}`));
    expect(n).toBe(7);
    const cut = slow.sent.at(-1);
    expect(cut).toEqual({ event: 'stream_error', data: expect.objectContaining({ reason: 'slow_consumer', buffered: 7, limit: 1000, limitBytes: 64 * 1024 }) });
    expect((cut!.data as { bufferedBytes: number }).bufferedBytes).toBeGreaterThan(64 * 1024);
    expect(await subscribers()).toBe(0);
  });
});
