import { connect } from 'node:net';
import { startTestBridge, type TestBridge } from '../helpers/bridge-harness';

/**
 * The HTTP server's idle keep-alive bound (`api.keepAliveTimeoutMs`): announced in every answer's `Keep-Alive` header,
 * and an idle connection is closed by the bridge once it passed, not before.
 */
describe('HTTP keep-alive (e2e)', () => {
  let bridge: TestBridge | undefined;
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });

  /** One keep-alive GET /healthz over a raw socket; resolves with the answer's head and how long the idle connection lived after it (ms). */
  function idleAfterAnswer(url: string): Promise<{ head: string; idleMs: number }> {
    const { port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: bridge\r\nConnection: keep-alive\r\n\r\n'));
      let raw = '';
      let answeredAt = 0;
      socket.on('data', (chunk: Buffer) => {
        raw += chunk.toString('latin1');
        if (!answeredAt && raw.includes('\r\n\r\n')) answeredAt = performance.now();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve({ head: raw.slice(0, raw.indexOf('\r\n\r\n')), idleMs: performance.now() - answeredAt }));
    });
  }

  it('announces 65 s by default', async () => {
    bridge = await startTestBridge({});
    const res = await fetch(`${bridge.url}/healthz`);
    await res.text();
    expect(res.headers.get('keep-alive')).toBe('timeout=65');
  });

  it('closes an idle connection once api.keepAliveTimeoutMs passed, not before', async () => {
    bridge = await startTestBridge({ api: { keepAliveTimeoutMs: 1500 } });
    const { head, idleMs } = await idleAfterAnswer(bridge.url);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head.toLowerCase()).toContain('keep-alive: timeout=1');
    // Node checks idle connections on its own timer: the close comes at the bound or somewhat after, never before.
    expect(idleMs).toBeGreaterThanOrEqual(1400);
    expect(idleMs).toBeLessThan(10_000);
  });

  it('a request in flight when the bridge stops is answered Connection: close, so the stop does not wait out the keep-alive', async () => {
    const b = (bridge = await startTestBridge({}));
    const { port } = new URL(b.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let raw = '';
    socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    // The request has begun (its headers are not complete): the connection is not idle when the server closes.
    socket.write('GET /healthz HTTP/1.1\r\nHost: bridge\r\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const t0 = performance.now();
    const stopped = b.close();
    bridge = undefined;
    while (!b.bridge.stopping) await new Promise((resolve) => setTimeout(resolve, 10));
    socket.write('Connection: keep-alive\r\n\r\n');
    await stopped;
    const stopMs = performance.now() - t0;
    await closed;
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw.toLowerCase()).toContain('connection: close');
    // Without it the idle connection held the stop for the keep-alive's 65 s.
    expect(stopMs).toBeLessThan(10_000);
  });
});
