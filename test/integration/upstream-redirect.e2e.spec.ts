import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { UpstreamCommand } from '../../src/connectors/connector.interface';
import { CaptivateSimulator } from '../simulators/captivate/captivate.simulator';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';

/** A loopback HTTP server answering every request with `answer`, recording what it received. */
async function server(answer: (req: { url: string }) => { status: number; headers?: Record<string, string>; body?: string }): Promise<{ url: string; seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }>; close(): Promise<void> }> {
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];
  const srv: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    const a = answer({ url: req.url ?? '' });
    res.writeHead(a.status, a.headers).end(a.body ?? '');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => srv.close(() => r())) };
}

/**
 * Upstream REST calls never follow redirects: a redirect would carry the upstream's credentials (api key header,
 * secrets in the URL) to whatever host `Location` names. A server answering 3xx points at a second server that
 * records whether it was ever called, and with which headers.
 */
describe('upstream HTTP calls do not follow redirects (e2e)', () => {
  let bridge: TestBridge | undefined;
  let elsewhere: Awaited<ReturnType<typeof server>>;
  let redirector: Awaited<ReturnType<typeof server>>;

  const redirectTo = (status: number) => server((req) => ({ status, headers: { location: `${elsewhere.url}${req.url}` }, body: 'moved' }));

  beforeEach(async () => {
    elsewhere = await server(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"token":"stolen"}' }));
  });

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await redirector?.close();
    await elsewhere.close();
  });

  it.each([302, 307])('a Captivate HTTP command answered %i fails upstream_rejected (not sent, not retried) and the api key never reaches the Location', async (status) => {
    const sim = new CaptivateSimulator({ botReplyDelayMs: 20, apiKeys: ['captivate-api-key-1'] });
    await sim.start();
    redirector = await redirectTo(status);
    try {
      bridge = await startTestBridge({ channels: [{ id: 'hub', provider: 'captivate', captivate: { url: sim.url, apiKey: 'captivate-api-key-1', httpUrl: redirector.url, sendVia: 'http', connectTimeoutMs: 1000, commandTimeoutMs: 1500 } }] });
      await waitFor('hub connected', async () => ((await bridge!.get('/v1/channels/hub')).body as { state: string }).state === 'connected');
      const cmd: UpstreamCommand = { commandId: `c-${status}`, type: 'message.send', conversationId: 'conv-1', text: 'hello' };
      const failed = bridge.bridge.router.execute('hub', cmd);
      await expect(failed).rejects.toMatchObject({ code: 'upstream_rejected', retriable: false, sent: false });
      await expect(failed).rejects.toThrow(`HTTP ${status} (a redirect, not followed`);
      // It went where it was configured, with its key, once; nothing was sent on to the Location.
      expect(redirector.seen).toEqual([expect.objectContaining({ method: 'POST', headers: expect.objectContaining({ 'x-api-key': 'captivate-api-key-1' }) })]);
      expect(elsewhere.seen).toEqual([]);
    } finally {
      await bridge?.close();
      bridge = undefined;
      await sim.stop();
    }
  });

  it('a jwt-websocket tokenUrl answered 302 is a token error; the secret in its query never reaches the Location', async () => {
    const sim = new JwtWebSocketSimulator({ secret: 'redirect-secret' });
    await sim.start();
    redirector = await redirectTo(302);
    try {
      bridge = await startTestBridge({ channels: [{ id: 'support', provider: 'jwt-websocket', 'jwt-websocket': { url: sim.url, tokenUrl: `${redirector.url}/token?client_secret=Q5ecret`, connectTimeoutMs: 1000 } }] });
      const status = await waitFor('the token error', async () => {
        const body = (await bridge!.get('/v1/channels/support')).body as { lastError?: string };
        return body.lastError?.includes('tokenUrl answered HTTP 302') ? body : undefined;
      });
      expect(status.lastError).toContain('redirect, not followed');
      expect(redirector.seen.length).toBeGreaterThanOrEqual(1);
      expect(redirector.seen[0].url).toBe('/token?client_secret=Q5ecret');
      expect(elsewhere.seen).toEqual([]);
      expect(sim.handshakes).toEqual([]);
    } finally {
      await bridge?.close();
      bridge = undefined;
      await sim.stop();
    }
  });
});
