import { fixKafkaJsRequestQueue } from './request-queue-fix';

/** kafkajs's own queue class, driven as a connection drives it: push a request, fulfil its response. */
interface Queue {
  throttleCheckTimeoutId: unknown;
  push(request: { entry: { correlationId: number; resolve: () => void; reject: () => void }; expectResponse: boolean; sendRequest: () => void }): void;
  fulfillRequest(response: { correlationId: number; payload: Buffer; size: number }): void;
  maybeThrottle(ms: number): void;
  destroy(): void;
}
const RequestQueue = require('kafkajs/src/network/requestQueue') as new (options: object) => Queue;
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const newQueue = () => new RequestQueue({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'b:9092', logger: silent });
const request = (correlationId: number, sent: number[]) => ({
  entry: { correlationId, resolve: () => undefined, reject: () => undefined },
  expectResponse: true,
  sendRequest: () => sent.push(correlationId),
});

describe('kafkajs request queue fix', () => {
  beforeAll(() => fixKafkaJsRequestQueue());

  it('is written for the kafkajs version package.json pins: another version re-examines it', () => {
    expect((require('kafkajs/package.json') as { version: string }).version).toBe('2.2.4');
  });

  it('schedules no check after a response when nothing is pending (no 1 ms poll, no negative timeout)', () => {
    const queue = newQueue();
    const sent: number[] = [];
    queue.push(request(1, sent));
    queue.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    expect(sent).toEqual([1]);
    expect(queue.throttleCheckTimeoutId).toBeNull();
    queue.destroy();
  });

  it('still sends the requests queued while the broker throttles the client, once the throttle ends', async () => {
    const queue = newQueue();
    const sent: number[] = [];
    queue.maybeThrottle(50);
    queue.push(request(1, sent));
    queue.push(request(2, sent));
    expect(sent).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(sent).toEqual([1, 2]);
    queue.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    queue.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 });
    expect(queue.throttleCheckTimeoutId).toBeNull();
    queue.destroy();
  });
});
