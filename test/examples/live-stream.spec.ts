import { connectLiveStream, type LiveStream, type StreamEvent, type Subscription } from '../../examples/live-stream/stream';
import type { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { GIOVANNA, startZapThinker, textOf } from './zapthinker-channel';

/** examples/live-stream against a bridge in embedded mode. */
describe('example: live stream client (e2e)', () => {
  let sim: ZapThinkerSimulator | undefined;
  let bridge: TestBridge | undefined;
  let stream: LiveStream | undefined;

  afterEach(async () => {
    stream?.close();
    await bridge?.close();
    await sim?.stop();
    stream = bridge = sim = undefined;
  });

  async function start(): Promise<ZapThinkerSimulator> {
    const started = await startZapThinker();
    sim = started.sim;
    bridge = await startTestBridge({ channels: [started.channel] });
    await sim.waitForClients('sales', 1);
    return sim;
  }

  it('receives the events of its subscription, and subscribes again after a reconnect', async () => {
    const zap = await start();
    const events: StreamEvent[] = [];
    const subscribed: Subscription[] = [];
    const subscription = { channels: ['wa-sales'], types: ['chatbridge.message.*'] };
    stream = connectLiveStream({ url: bridge!.url, token: TEST_TOKEN, subscription, onEvent: (e) => events.push(e), onSubscribed: (s) => subscribed.push(s), log: () => undefined });
    await waitFor('subscribed', () => subscribed.length === 1);
    expect(subscribed[0]).toEqual(subscription);

    zap.sendMessage('sales', { remoteJid: GIOVANNA, text: 'hello stream' });
    await waitFor('the event', () => events.length === 1);
    expect(events[0]).toMatchObject({ type: 'chatbridge.message.received', channelid: 'wa-sales', subject: GIOVANNA, partitionkey: `wa-sales:${GIOVANNA}` });
    expect(textOf(events[0].data)).toBe('hello stream');

    // The connection drops under the client: socket.io reconnects, and the client subscribes again.
    stream.socket.io.engine.close();
    await waitFor('subscribed again', () => subscribed.length === 2);
    zap.sendMessage('sales', { remoteJid: GIOVANNA, text: 'after the reconnect' });
    await waitFor('the next event', () => events.length === 2);
    expect(textOf(events[1].data)).toBe('after the reconnect');
  });

  it('reports a wrong token as a refused handshake (401) and does not retry it', async () => {
    await start();
    const lines: string[] = [];
    stream = connectLiveStream({ url: bridge!.url, token: 'not-a-valid-token-000', subscription: {}, onEvent: () => undefined, log: (l) => lines.push(l) });
    await waitFor('connect_error', () => lines.some((l) => l.startsWith('connect_error')));
    expect(lines).toEqual(['connect_error: invalid token (401)']);
    expect(stream.socket.active).toBe(false);
  });
});
