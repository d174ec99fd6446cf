import { startExpressReceiver } from '../../examples/webhook-receiver/express';
import type { RunningReceiver, WebhookEvent } from '../../examples/webhook-receiver/inbox';
import { startNodeReceiver } from '../../examples/webhook-receiver/node-http';
import type { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { newSecret, WebhookReceiver, type ReceivedRequest } from '../helpers/webhook-receiver';
import { GIOVANNA, PEDRO, startZapThinker, textOf } from './zapthinker-channel';

/**
 * examples/webhook-receiver (Express and node:http) as endpoints of a bridge. A third endpoint with the same secret,
 * the tests' recording receiver, keeps the bridge's real signed POSTs so the test can send them again, as is or
 * tampered with.
 */
describe('example: webhook receivers (e2e)', () => {
  let sim: ZapThinkerSimulator | undefined;
  let bridge: TestBridge | undefined;
  const receivers: RunningReceiver[] = [];
  const recorder = new WebhookReceiver();

  afterEach(async () => {
    await bridge?.close();
    await Promise.all(receivers.splice(0).map((r) => r.close()));
    await recorder.stop();
    await sim?.stop();
    bridge = sim = undefined;
  });

  /** Sends a recorded delivery to `url` again, with `change` applied to its body and headers. */
  async function resend(url: string, req: ReceivedRequest, change: { body?: string; headers?: Record<string, string> } = {}): Promise<number> {
    const pick = (name: string) => req.headers[name];
    const headers = { 'content-type': pick('content-type'), 'webhook-id': pick('webhook-id'), 'webhook-timestamp': pick('webhook-timestamp'), 'webhook-signature': pick('webhook-signature'), ...change.headers };
    const res = await fetch(url, { method: 'POST', headers, body: change.body ?? req.body });
    return res.status;
  }

  it('both receivers accept the bridge\'s signed POSTs in order, skip a repeated webhook-id and answer 401 to a tampered delivery', async () => {
    const started = await startZapThinker();
    sim = started.sim;
    const secret = newSecret();
    const handled = { express: [] as WebhookEvent[], node: [] as WebhookEvent[] };
    const silent = () => undefined;
    receivers.push(await startExpressReceiver({ port: 0, host: '127.0.0.1', secret, handle: (e) => void handled.express.push(e), log: silent }));
    receivers.push(await startNodeReceiver({ port: 0, host: '127.0.0.1', secret, handle: (e) => void handled.node.push(e), log: silent }));
    await recorder.start();
    const types = ['chatbridge.message.*'];
    bridge = await startTestBridge({
      channels: [started.channel],
      webhooks: [
        { id: 'express', url: receivers[0].url, secret, types },
        { id: 'node', url: receivers[1].url, secret, types },
        { id: 'recorder', url: recorder.url, secret, types },
      ],
    });
    await sim.waitForClients('sales', 1);

    for (let i = 1; i <= 3; i++) {
      sim.sendMessage('sales', { remoteJid: GIOVANNA, text: `g${i}` });
      sim.sendMessage('sales', { remoteJid: PEDRO, text: `p${i}` });
    }
    await recorder.waitForDelivered(6);
    for (const [name, events] of Object.entries(handled)) {
      await waitFor(`6 events handled by the ${name} receiver`, () => events.length === 6);
      const texts = (jid: string) => events.filter((e) => e.subject === jid).map((e) => textOf(e.data));
      expect(texts(GIOVANNA)).toEqual(['g1', 'g2', 'g3']);
      expect(texts(PEDRO)).toEqual(['p1', 'p2', 'p3']);
      expect(events.map((e) => e.id).sort()).toEqual(recorder.delivered().map((r) => r.headers['webhook-id']).sort());
    }
    const endpoints = (await bridge.get('/v1/webhooks')).body as { webhooks: Array<{ id: string; lastStatus?: number }> };
    expect(endpoints.webhooks.map((w) => [w.id, w.lastStatus])).toEqual([['express', 204], ['node', 204], ['recorder', 204]]);

    const real = recorder.delivered()[0];
    const forged = real.body.replace(/"(g1|p1)"/, '"forged"');
    expect(forged).not.toBe(real.body);
    for (const receiver of receivers) {
      // The same delivery again (a retry or a replay): accepted, not processed twice.
      expect(await resend(receiver.url, real)).toBe(204);
      // The body changed after signing, a signature made with another secret, no signature at all: 401.
      expect(await resend(receiver.url, real, { body: forged })).toBe(401);
      expect(await resend(receiver.url, real, { headers: { 'webhook-signature': `v1,${Buffer.alloc(32, 7).toString('base64')}` } })).toBe(401);
      expect(await resend(receiver.url, real, { headers: { 'webhook-signature': '' } })).toBe(401);
    }
    await Promise.all(receivers.map((r) => r.inbox.drained()));
    expect([handled.express.length, handled.node.length]).toEqual([6, 6]);
  });
});
