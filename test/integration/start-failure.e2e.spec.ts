import { createServer, type Server } from 'node:net';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { startTestBridge } from '../helpers/bridge-harness';

/**
 * A start that fails once the bridge is running (its HTTP port is taken) stops what it had started: the caller
 * gets the error and no channel keeps its upstream connection (or reconnects) behind it.
 */
describe('bridge start failure (e2e)', () => {
  const sim = new JwtWebSocketSimulator({ secret: 'start-failure-secret' });
  let taken: Server;

  beforeAll(async () => {
    await sim.start();
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => taken.close(resolve));
    await sim.stop();
  });

  it('rejects with the listen error and leaves no upstream connection open', async () => {
    const port = (taken.address() as { port: number }).port;
    const channel = { id: 'support', provider: 'jwt-websocket', 'jwt-websocket': { url: sim.url, token: sim.token({ sub: 'bridge' }), subscribe: ['conversation:c1'] } };
    await expect(startTestBridge({ channels: [channel] }, { PORT: String(port) })).rejects.toThrow(/EADDRINUSE/);
    // Long enough for the channel to connect, and to reconnect if it were still running (fast reconnects in tests).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(sim.handshakes.length).toBeLessThanOrEqual(1);
    expect(sim.connectionCount()).toBe(0);
  });
});
