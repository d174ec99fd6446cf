import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, waitFor, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';

/**
 * `POST /v1/inbound/:channelId` (docs/modes.md) in embedded mode: the ZapThinker simulator posts its events to the
 * bridge over real HTTP, as Evolution's webhook does; tests also post directly, as a misbehaving client would.
 */
describe('inbound webhook posts (e2e)', () => {
  const TOKEN = 'inbound-token-0123456789';
  const SECRET = 'inbound-hmac-secret-0123456789';
  const CONTACT = '5511999999999@s.whatsapp.net';
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge;

  const zap = (instance: string) => ({ url: sim.url, instance, apiKey: `tok-${instance}`, connectTimeoutMs: 2000 });

  beforeAll(async () => {
    sim = new ZapThinkerSimulator({ instances: { sales: { token: 'tok-sales' }, ops: { token: 'tok-ops' }, support: { token: 'tok-support' } } });
    await sim.start();
    sim.touch('sales');
    sim.touch('support');
    bridge = await startTestBridge({
      channels: [
        { id: 'wa-sales', provider: 'zapthinker', inbound: { token: TOKEN }, zapthinker: zap('sales') },
        { id: 'wa-hmac', provider: 'zapthinker', mode: 'webhook', inbound: { hmacSecret: SECRET, maxBodyBytes: 2048 }, zapthinker: zap('ops') },
        { id: 'wa-other', provider: 'zapthinker', zapthinker: zap('support') },
        { id: 'site-chat', provider: 'smartsupp', smartsupp: { url: 'http://127.0.0.1:9', key: 'k' } },
      ],
    });
    await sim.waitForClients('sales', 1);
    await sim.waitForClients('support', 1);
  });

  afterAll(async () => {
    await sim.webhooksIdle();
    await bridge.close();
    await sim.stop();
  });

  async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${bridge.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** An Evolution webhook body for a new inbound message (as the simulator would post it). */
  const envelope = (instance: string, id: string, text: string) => JSON.stringify({
    event: 'messages.upsert', instance, data: sim.messageUpsert({ instance, remoteJid: CONTACT, text, id }),
    server_url: sim.url, date_time: new Date().toISOString(), sender: '5511900000000@s.whatsapp.net', apikey: null,
    destination: `${bridge.url}/v1/inbound/wa-sales`,
  });
  const sign = (body: string) => createHmac('sha256', SECRET).update(body).digest();
  const messages = (channel: string) => bridge.stdoutEvents().filter((e) => e.type === 'chatbridge.message.received' && e.channelid === channel);
  const messageIds = (channel: string) => messages(channel).map((e) => (e.data as { message: { id: string } }).message.id);
  const metrics = async () => (await bridge.get('/metrics')).text;

  it('the same Evolution event over the socket and over the webhook is published once, with the socket path\'s id', async () => {
    const set = await fetch(`${sim.url}/webhook/set/sales`, {
      method: 'POST', headers: { 'content-type': 'application/json', apikey: 'tok-sales' },
      body: JSON.stringify({ webhook: { enabled: true, url: `${bridge.url}/v1/inbound/wa-sales`, headers: { 'x-chatbridge-token': TOKEN }, byEvents: true } }),
    });
    expect(set.status).toBe(201);
    const sent = sim.sendMessage('sales', { remoteJid: CONTACT, text: 'both paths' });
    await sim.webhooksIdle();
    expect(sim.webhookDeliveries.map((d) => [d.url, d.status])).toEqual([[`${bridge.url}/v1/inbound/wa-sales/messages-upsert`, 200]]);
    await waitFor('the socket copy to be deduplicated', async () => metricValue(await metrics(), 'chatbridge_events_deduplicated_total', { channel: 'wa-sales' }) === 1);
    expect(messageIds('wa-sales')).toEqual([sent.key.id]);
    const [event] = messages('wa-sales');
    expect(event).toMatchObject({ id: expect.stringMatching(/^[0-9a-f]{32}$/), source: '/chatbridge/zapthinker/wa-sales', subject: CONTACT, data: { message: { text: 'both paths' } } });
    expect((event.data as { upstream: { payload: Record<string, unknown> } }).upstream.payload).not.toHaveProperty('destination');
    await fetch(`${sim.url}/webhook/set/sales`, { method: 'POST', headers: { 'content-type': 'application/json', apikey: 'tok-sales' }, body: JSON.stringify({ webhook: { enabled: false } }) });

    // Posted by hand with a bearer token: accepted, answered with the frame count.
    expect(await post('/v1/inbound/wa-sales', envelope('sales', 'BEARER0000000001', 'by bearer'), { authorization: `Bearer ${TOKEN}` })).toEqual({ status: 200, body: { accepted: 1 } });
    expect(messageIds('wa-sales')).toContain('BEARER0000000001');
    expect(metricValue(await metrics(), 'chatbridge_inbound_requests_total', { channel: 'wa-sales', outcome: 'accepted' })).toBe(2);
  });

  it('a missing or wrong token is 401 and nothing is published; the bridge\'s own API token is not an inbound token', async () => {
    const before = metricValue(await metrics(), 'chatbridge_inbound_requests_total', { channel: 'wa-sales', outcome: 'unauthorized' });
    const missing = await post('/v1/inbound/wa-sales', envelope('sales', 'NOAUTH0000000001', 'x'));
    expect(missing).toEqual({ status: 401, body: { statusCode: 401, error: 'Unauthorized', message: expect.stringContaining('missing token: send it in the x-chatbridge-token header') } });
    expect(await post('/v1/inbound/wa-sales', envelope('sales', 'NOAUTH0000000002', 'x'), { 'x-chatbridge-token': `${TOKEN}-wrong` })).toMatchObject({ status: 401, body: { message: 'invalid token' } });
    expect(await post('/v1/inbound/wa-sales', envelope('sales', 'NOAUTH0000000003', 'x'), { authorization: `Bearer ${TEST_TOKEN}` })).toMatchObject({ status: 401 });
    // Posts are handled in order and synchronously: once this one is published, the refused ones would have been.
    await post('/v1/inbound/wa-sales', envelope('sales', 'AFTER00000000001', 'x'), { 'x-chatbridge-token': TOKEN });
    expect(messageIds('wa-sales')).toContain('AFTER00000000001');
    expect(messageIds('wa-sales').filter((id) => id.startsWith('NOAUTH'))).toEqual([]);
    expect(metricValue(await metrics(), 'chatbridge_inbound_requests_total', { channel: 'wa-sales', outcome: 'unauthorized' }) - before).toBe(3);
  });

  it('HMAC channel (webhook mode from config, no socket): signature over the raw bytes as sha256=hex or base64; a bad one is 401', async () => {
    const body = envelope('ops', 'HMAC000000000001', 'signed');
    expect(await post('/v1/inbound/wa-hmac', body, { 'x-signature': `sha256=${sign(body).toString('hex')}` })).toEqual({ status: 200, body: { accepted: 1 } });
    const body2 = envelope('ops', 'HMAC000000000002', 'signed b64');
    expect(await post('/v1/inbound/wa-hmac', body2, { 'x-signature': sign(body2).toString('base64') })).toEqual({ status: 200, body: { accepted: 1 } });
    const body3 = envelope('ops', 'HMAC000000000003', 'tampered');
    expect(await post('/v1/inbound/wa-hmac', body3, { 'x-signature': `sha256=${sign(body).toString('hex')}` })).toMatchObject({ status: 401, body: { message: expect.stringContaining('does not match the body') } });
    expect(await post('/v1/inbound/wa-hmac', body3)).toMatchObject({ status: 401, body: { message: expect.stringContaining('missing x-signature header') } });
    expect(messageIds('wa-hmac')).toEqual(['HMAC000000000001', 'HMAC000000000002']);
    expect((await bridge.get('/v1/channels/wa-hmac')).body).toMatchObject({ mode: 'webhook', acceptsInbound: true, state: 'inbound' });
    expect(sim.handshakes.filter((h) => h.apikey === 'tok-ops')).toEqual([]);
  });

  it('a body over the channel\'s limit is 413 with the limit; other routes keep their own limit', async () => {
    const big = envelope('ops', 'BIG0000000000001', 'x'.repeat(3000));
    const res = await post('/v1/inbound/wa-hmac', big, { 'x-signature': `sha256=${sign(big).toString('hex')}` });
    expect(res).toEqual({ status: 413, body: { statusCode: 413, error: 'Payload Too Large', message: expect.stringContaining('inbound limit of 2048 bytes') } });
    expect(messageIds('wa-hmac')).not.toContain('BIG0000000000001');
    expect(metricValue(await metrics(), 'chatbridge_inbound_requests_total', { channel: 'wa-hmac', outcome: 'too_large' })).toBe(1);
    // The same size on a /v1 route is read whole (and refused for its content, not its size).
    const put = await fetch(`${bridge.url}/v1/channels/wa-sales/mode`, {
      method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKEN}` }, body: JSON.stringify({ mode: 'socket', padding: 'x'.repeat(3000) }),
    });
    expect(put.status).toBe(400);
    expect(await put.json()).toMatchObject({ details: ['padding: unknown key'] });
  });

  it('not-JSON and wrong-shape bodies are 400 with the reason, counted, and dead-lettered whole', async () => {
    const auth = { 'x-chatbridge-token': TOKEN };
    const notJson = await post('/v1/inbound/wa-sales', 'event=messages.upsert&data=', auth);
    expect(notJson).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message: expect.stringMatching(/^body is not JSON: .*dead-lettered with reason inbound_malformed/) } });
    const wrong = await post('/v1/inbound/wa-sales/messages-upsert', JSON.stringify({ hello: 'world' }), auth);
    expect(wrong).toMatchObject({ status: 400, body: { message: expect.stringContaining('Evolution envelope without "event"') } });
    expect(await post('/v1/inbound/wa-sales', '', auth)).toMatchObject({ status: 400, body: { message: expect.stringContaining('empty body') } });

    const letters = readFileSync(bridge.deadLetterFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(letters.filter((l) => l.reason === 'inbound_malformed')).toEqual([
      expect.objectContaining({ origin: 'inbound', channelId: 'wa-sales', frame: { event: 'inbound', payload: 'event=messages.upsert&data=' }, error: expect.stringContaining('not JSON') }),
      expect.objectContaining({ frame: { event: 'messages-upsert', payload: '{"hello":"world"}' }, error: expect.stringContaining('without "event"') }),
      expect.objectContaining({ frame: { event: 'inbound', payload: '' } }),
    ]);
    const text = await metrics();
    expect(metricValue(text, 'chatbridge_inbound_requests_total', { channel: 'wa-sales', outcome: 'malformed' })).toBe(3);
    expect(metricValue(text, 'chatbridge_frames_malformed_total', { channel: 'wa-sales' })).toBe(3);
    expect(metricValue(text, 'chatbridge_dead_letters_total', { target: 'file', reason: 'inbound_malformed' })).toBe(3);
  });

  it('unknown channel 404, channel without inbound auth or webhook API 409; other channels keep flowing', async () => {
    expect(await post('/v1/inbound/nope', '{}', { 'x-chatbridge-token': TOKEN })).toEqual({ status: 404, body: { statusCode: 404, error: 'Not Found', message: 'no channel with id "nope"' } });
    expect(await post('/v1/inbound/wa-other', '{}', { 'x-chatbridge-token': TOKEN })).toMatchObject({ status: 409, body: { message: expect.stringContaining('has no inbound auth configured') } });
    expect(await post('/v1/inbound/site-chat', '{}')).toMatchObject({ status: 409, body: { message: 'channel site-chat takes no inbound posts: provider smartsupp has no webhook API' } });
    const text = await metrics();
    expect(metricValue(text, 'chatbridge_inbound_requests_total', { channel: '(unknown)', outcome: 'unknown_channel' })).toBe(1);
    expect(metricValue(text, 'chatbridge_inbound_requests_total', { outcome: 'refused' })).toBe(2);

    const sent = sim.sendMessage('support', { remoteJid: CONTACT, text: 'still flowing' });
    await waitFor('wa-other message', () => messageIds('wa-other').includes(sent.key.id));
  });
});
