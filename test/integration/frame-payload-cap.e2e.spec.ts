import { existsSync, readFileSync } from 'node:fs';
import { CaptivateSimulator } from '../simulators/captivate/captivate.simulator';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';

/**
 * The socket clients' payload cap (4 × limits.maxFrameBytes): a frame over it is never read into memory — the client
 * closes the connection (1009), the supervisor reconnects, and the next message arrives; a frame between the limit
 * and the cap is read and dead-lettered whole as frame_too_large.
 */
describe('socket clients refuse frames over the payload cap (e2e)', () => {
  const jwt = new JwtWebSocketSimulator({ secret: 'cap-secret' });
  const zap = new ZapThinkerSimulator({ instances: { sales: { token: 'sales-token-0123456789' } } });
  const captivate = new CaptivateSimulator({ apiKeys: ['cap-key-0123456789'], greeting: false });
  let bridge: TestBridge | undefined;

  beforeAll(async () => {
    await Promise.all([jwt.start(), zap.start(), captivate.start()]);
    zap.touch('sales');
  });
  afterAll(async () => {
    await bridge?.close();
    await Promise.all([jwt.stop(), zap.stop(), captivate.stop()]);
  });

  const texts = () => bridge!.stdoutEvents().filter((e) => e.type === 'chatbridge.message.received').map((e) => (e.data as { message: { text: string } }).message.text);
  const state = (id: string) => bridge!.bridge.channels.get(id)?.state;

  it('jwt-websocket, ZapThinker and Captivate: over the cap the socket is closed and reconnected, the next message arrives; under it the frame is dead-lettered', async () => {
    bridge = await startTestBridge({
      limits: { maxFrameBytes: 4096 },
      channels: [
        { id: 'jwt', provider: 'jwt-websocket', 'jwt-websocket': { url: jwt.url, token: jwt.token({ sub: 'bridge' }), subscribe: ['conversation:c1'] } },
        { id: 'zap', provider: 'zapthinker', zapthinker: { url: zap.url, instance: 'sales', apiKey: 'sales-token-0123456789' } },
        { id: 'cap', provider: 'captivate', captivate: { url: captivate.url, httpUrl: captivate.httpUrl, apiKey: 'cap-key-0123456789' } },
      ],
    });
    await waitFor('all connected', () => state('jwt') === 'connected' && state('zap') === 'connected' && state('cap') === 'connected');
    const jwtConnections = jwt.connectionCount();

    // 64 KiB: over the 16 KiB cap.
    jwt.sendFrame(jwt.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: 'j'.repeat(64 * 1024) }));
    zap.sendMessage('sales', { remoteJid: '5511911112222', text: 'z'.repeat(64 * 1024) });
    captivate.sendRawText(JSON.stringify({ event_type: 'livechat_message', event_id: 'big', event_payload: { text: 'c'.repeat(64 * 1024) } }));
    const reconnected = (id: string) => bridge!.bridge.channels.get(id)!.reconnects > 0 && state(id) === 'connected';
    await waitFor('all reconnected after the close', () => reconnected('jwt') && reconnected('zap') && reconnected('cap'), 15_000);

    jwt.sendFrame(jwt.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: 'jwt after' }));
    zap.sendMessage('sales', { remoteJid: '5511911112222', text: 'zap after' });
    await waitFor('next messages', () => texts().includes('jwt after') && texts().includes('zap after'), 15_000);
    expect(jwt.connectionCount()).toBeGreaterThanOrEqual(jwtConnections);
    // Nothing of the oversized frames was published.
    expect(texts().some((t) => t.length > 4096)).toBe(false);

    // 8 KiB: over the limit, under the cap: read, dead-lettered whole, the socket stays.
    const reconnects = bridge.bridge.channels.get('zap')!.reconnects;
    zap.sendMessage('sales', { remoteJid: '5511911112222', text: 'y'.repeat(8 * 1024) });
    await waitFor('dead-lettered', () => existsSync(bridge!.deadLetterFile) && readFileSync(bridge!.deadLetterFile, 'utf8').includes('frame_too_large'), 10_000);
    expect(bridge.bridge.channels.get('zap')!.reconnects).toBe(reconnects);
  }, 60_000);
});
