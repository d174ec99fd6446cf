import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import type { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startZapThinkerPair, zapChannel } from '../helpers/zapthinker-pair';
import { metricValue, startTestBridge, waitFor, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';

/** `PUT /v1/channels/:id/mode`: refusals, persistence across restarts, the overlap limit, and commands following the mode. */
describe('channel mode API (e2e)', () => {
  const TOKEN = 'inbound-token-0123456789';
  let zsim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;

  beforeEach(async () => {
    zsim = await startZapThinkerPair();
  });

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await zsim.stop();
  });

  const zap = (instance: string, extra: Record<string, unknown> = {}) => zapChannel(zsim, instance, extra);
  const put = async (id: string, body: unknown, token: string | null = TEST_TOKEN) => {
    const res = await fetch(`${bridge!.url}/v1/channels/${id}/mode`, {
      method: 'PUT', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const inbound = async (id: string, envelope: unknown) => {
    const res = await fetch(`${bridge!.url}/v1/inbound/${id}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-chatbridge-token': TOKEN }, body: JSON.stringify(envelope) });
    return res.status;
  };
  const upsert = (id: string) => ({ event: 'messages.upsert', instance: 'sales', data: zsim.messageUpsert({ instance: 'sales', remoteJid: '5511999999999', text: id, id }) });

  it('refuses providers without a webhook API (422, saying why), unknown channels, missing inbound auth and bad bodies', async () => {
    bridge = await startTestBridge({
      channels: [
        zap('sales', { inbound: { token: TOKEN } }), zap('support'),
        { id: 'site-chat', provider: 'smartsupp', smartsupp: { url: 'http://127.0.0.1:9', key: 'k' } },
        { id: 'support-ws', provider: 'jwt-websocket', 'jwt-websocket': { url: 'ws://127.0.0.1:9/ws', token: 'jwt' } },
      ],
    });
    expect(await put('site-chat', { mode: 'webhook' })).toEqual({ status: 422, body: { statusCode: 422, error: 'Unprocessable Entity', message: 'provider smartsupp has no webhook API; channel site-chat stays in socket mode' } });
    expect(await put('support-ws', { mode: 'webhook' })).toMatchObject({ status: 422, body: { message: 'provider jwt-websocket has no webhook API; channel support-ws stays in socket mode' } });
    expect(await put('wa-support', { mode: 'webhook' })).toMatchObject({ status: 409, body: { message: expect.stringContaining('channel wa-support has no inbound auth configured') } });
    expect(await put('nope', { mode: 'webhook' })).toMatchObject({ status: 404, body: { message: 'no channel with id "nope"' } });
    expect(await put('wa-sales', { mode: 'carrier-pigeon' })).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message: 'expected {"mode": "socket" | "webhook"}', details: ['mode: must be one of the following values: socket, webhook'] } });
    expect(await put('wa-sales', {})).toMatchObject({ status: 400, body: { details: ['mode: required'] } });
    expect(await put('wa-sales', ['webhook'])).toMatchObject({ status: 400, body: { details: ['(body): must be a JSON object'] } });
    expect(await put('wa-sales', { mode: 'webhook' }, null)).toMatchObject({ status: 401 });
    // The current mode: a no-op that says so.
    await zsim.waitForClients('sales', 1);
    expect(await put('wa-sales', { mode: 'socket' })).toEqual({ status: 200, body: { id: 'wa-sales', mode: 'socket', previousMode: 'socket', changed: false, socket: 'connected', state: 'connected' } });
    expect((await bridge.get('/v1/channels')).body).toMatchObject({ channels: expect.arrayContaining([expect.objectContaining({ id: 'site-chat', mode: 'socket' })]) });
  });

  it('the switched mode survives a restart (same stateDir): no socket is opened, posts are taken, GET shows it', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'mode-state-'));
    const channels = [zap('sales', { inbound: { token: TOKEN } }), zap('support')];
    bridge = await startTestBridge({ stateDir, channels });
    await zsim.waitForClients('sales', 1);
    expect(await put('wa-sales', { mode: 'webhook' })).toMatchObject({ status: 200, body: { socket: 'closing_after_first_inbound' } });
    expect(await inbound('wa-sales', upsert('FIRST00000000001'))).toBe(200);
    await waitFor('socket closed', () => zsim.connectedClients('sales') === 0);
    await bridge.close();

    const salesHandshakes = () => zsim.handshakes.filter((h) => h.apikey === 'tok-sales').length;
    const before = salesHandshakes();
    const logs = { level: 'info', lines: [] as string[] };
    bridge = await startTestBridge({ stateDir, channels }, {}, logs);
    // Both channels start together; once the socket channel is connected, the other would have tried too.
    await zsim.waitForClients('support', 1);
    expect(salesHandshakes()).toBe(before);
    expect(zsim.connectedClients('sales')).toBe(0);
    // Started in webhook mode: `inbound` from the start, no socket ever opened.
    expect((await bridge.get('/v1/channels/wa-sales')).body).toMatchObject({ mode: 'webhook', state: 'inbound' });
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_channel_state', { channel: 'wa-sales', state: 'inbound' })).toBe(1);
    expect(logs.lines.some((l) => l.includes('mode webhook restored from stateDir') && l.includes('"channel":"wa-sales"'))).toBe(true);
    expect(await inbound('wa-sales', upsert('AFTER00000000001'))).toBe(200);
    expect(bridge.stdoutEvents().filter((e) => e.type === 'chatbridge.message.received')).toHaveLength(1);

    // Back to socket, persisted too: the next start connects.
    expect(await put('wa-sales', { mode: 'socket' })).toMatchObject({ status: 200, body: { mode: 'socket', socket: 'connected' } });
    await bridge.close();
    bridge = await startTestBridge({ stateDir, channels });
    await zsim.waitForClients('sales', 1);
    expect((await bridge.get('/v1/channels/wa-sales')).body).toMatchObject({ mode: 'socket' });
  });

  it('without any inbound post the socket still closes after modeSwitch.overlapMs, with a warning', async () => {
    const logs = { level: 'warn', lines: [] as string[] };
    bridge = await startTestBridge({ modeSwitch: { overlapMs: 300 }, channels: [zap('sales', { inbound: { token: TOKEN } })] }, {}, logs);
    await zsim.waitForClients('sales', 1);
    expect(await put('wa-sales', { mode: 'webhook' })).toMatchObject({ status: 200, body: { socket: 'closing_after_first_inbound', overlapMs: 300 } });
    await waitFor('socket closed by the overlap limit', () => zsim.connectedClients('sales') === 0);
    expect(logs.lines.some((l) => l.includes('no inbound post within modeSwitch.overlapMs'))).toBe(true);
  });

  it('webhook → socket answers 202 with the state when the socket is not connected within connectWaitMs, and keeps trying', async () => {
    bridge = await startTestBridge({ modeSwitch: { connectWaitMs: 300 }, channels: [zap('sales', { mode: 'webhook', inbound: { token: TOKEN } })] });
    zsim.rejectAuth(true);
    const res = await put('wa-sales', { mode: 'socket' });
    expect(res).toEqual({ status: 202, body: { id: 'wa-sales', mode: 'socket', previousMode: 'webhook', changed: true, socket: 'connecting', state: expect.stringMatching(/^(connecting|auth_failed)$/) } });
    expect(await inbound('wa-sales', upsert('DURING0000000001'))).toBe(200);
    zsim.rejectAuth(false);
    await zsim.waitForClients('sales', 1);
    await waitFor('connected', async () => ((await bridge!.get('/v1/channels/wa-sales')).body as { state: string }).state === 'connected');
  });

  describe('Watchers: commands follow the mode', () => {
    let wsim: WatchersSimulator;
    beforeEach(async () => {
      wsim = new WatchersSimulator({ bots: ['bot-1'] });
      await wsim.start();
    });
    afterEach(async () => {
      await bridge?.close();
      bridge = undefined;
      await wsim.stop();
    });

    it('socket: external/send; webhook: the Bot REST API (even while the socket still overlaps); socket again: external/send', async () => {
      bridge = await startTestBridge({
        channels: [{
          id: 'bot-eu', provider: 'watchers', inbound: { token: TOKEN },
          watchers: { url: wsim.url, restUrl: wsim.url, bearer: wsim.bearerFor('bot-1'), apiKey: wsim.apiKey, userId: 'bot-1', rooms: ['144444'], ackTimeoutMs: 1000 },
        }],
      });
      await wsim.waitUntil('listening', () => wsim.listeners('144444') === 1);
      const router = bridge.bridge.router;
      const send = (text: string) => router.execute('bot-eu', { commandId: `c-${text}`, type: 'message.send', conversationId: '144444', text });
      const restSends = () => wsim.requests.filter((r) => r.path === '/api/bot/sendMessage').length;

      await send('one');
      expect([wsim.emitsOf('external/send').length, restSends()]).toEqual([1, 0]);

      expect(await put('bot-eu', { mode: 'webhook' })).toMatchObject({ status: 200, body: { socket: 'closing_after_first_inbound' } });
      await send('two');
      expect([wsim.emitsOf('external/send').length, restSends()]).toEqual([1, 1]);
      expect(wsim.connectedClients()).toBe(1);

      // The bridge's inbound format for Watchers is the socket frame: the same message over both paths is one event.
      const said = wsim.userSays('144444', 'user-7', 'hello twice');
      await waitFor('socket copy', () => bridge!.stdoutEvents().some((e) => e.type === 'chatbridge.message.received'));
      const res = await fetch(`${bridge.url}/v1/inbound/bot-eu`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ event: 'message', data: said }) });
      expect(await res.json()).toEqual({ accepted: 1 });
      await waitFor('socket closed after the first inbound post', () => wsim.connectedClients() === 0);
      expect(bridge.stdoutEvents().filter((e) => e.type === 'chatbridge.message.received')).toHaveLength(1);
      expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_events_deduplicated_total', { channel: 'bot-eu' })).toBe(1);

      expect(await put('bot-eu', { mode: 'socket' })).toMatchObject({ status: 200, body: { socket: 'connected', state: 'connected' } });
      await wsim.waitUntil('listening again', () => wsim.listeners('144444') === 1);
      await send('three');
      expect([wsim.emitsOf('external/send').length, restSends()]).toEqual([2, 1]);
    });
  });
});
