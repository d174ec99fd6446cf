import { createHmac } from 'node:crypto';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { evolutionPost, HeldPost, within } from '../helpers/inbound-post';

/**
 * `POST /v1/inbound/:channelId` limits over real HTTP (embedded mode): a post that cannot be the upstream's is
 * refused before its body is read, a channel reads at most `maxInFlight` bodies at once, a body is read up to
 * `maxBodyBytes` only; after each refusal a valid post is accepted and published.
 */
describe('inbound posts: refused before the body, bodies in flight bounded (e2e)', () => {
  const TOKEN = 'inbound-token-0123456789';
  const SECRET = 'inbound-hmac-secret-0123456789';
  const LIMIT = 4096;
  let bridge: TestBridge;
  let seq = 0;

  const zap = (instance: string) => ({ url: 'http://127.0.0.1:9', instance, apiKey: `key-${instance}` });
  beforeAll(async () => {
    bridge = await startTestBridge({
      channels: [
        { id: 'wa-tok', provider: 'zapthinker', mode: 'webhook', inbound: { token: TOKEN, maxBodyBytes: LIMIT, maxInFlight: 2 }, zapthinker: zap('sales') },
        { id: 'wa-mac', provider: 'zapthinker', mode: 'webhook', inbound: { hmacSecret: SECRET, maxBodyBytes: LIMIT }, zapthinker: zap('ops') },
      ],
    });
  });
  afterAll(() => bridge.close());

  const url = (channel: string) => `${bridge.url}/v1/inbound/${channel}`;
  const sign = (body: string) => `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
  const nextId = () => `LIMIT${String(++seq).padStart(11, '0')}`;
  const published = (id: string) => bridge.stdoutEvents().some((e) => (e.data as { message?: { id?: string } } | undefined)?.message?.id === id);
  const metric = async (name: string, labels: Record<string, string>) => metricValue((await bridge.get('/metrics')).text, name, labels);
  const withToken = { 'x-chatbridge-token': TOKEN };

  /** A complete valid post: 200 {accepted: 1} and its event published. */
  async function expectAccepted(channel: 'wa-tok' | 'wa-mac'): Promise<void> {
    const id = nextId();
    const body = evolutionPost(channel === 'wa-tok' ? 'sales' : 'ops', id, 'valid');
    const headers = channel === 'wa-tok' ? withToken : { 'x-signature': sign(body) };
    const res = await fetch(url(channel), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 200, body: { accepted: 1 } });
    await waitFor(`event ${id} published`, () => published(id));
  }

  /** Opens a post whose body never ends and expects it answered anyway: refused without reading the body. */
  async function refusedWhileSending(channel: string, headers: Record<string, string>, status: number, message: string | RegExp): Promise<void> {
    const held = new HeldPost(url(channel), headers, '{"event":"messages.upsert","data":{"pad":"');
    try {
      const answer = await within(`${channel} ${status}`, held.answer);
      expect(answer).toMatchObject({ status, body: { statusCode: status, message: typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message) } });
      // The rest of the body is not wanted: the connection is closed once the answer is out.
      expect(answer.headers.connection).toBe('close');
    } finally {
      held.abort();
    }
  }

  it('a missing or wrong token, or an unknown channel, is answered while the body is still being sent', async () => {
    const before = await metric('chatbridge_inbound_requests_total', { channel: 'wa-tok', outcome: 'unauthorized' });
    await refusedWhileSending('wa-tok', {}, 401, 'missing token: send it in the x-chatbridge-token header');
    await refusedWhileSending('wa-tok', { 'x-chatbridge-token': `${TOKEN}-wrong` }, 401, 'invalid token');
    await refusedWhileSending('wa-tok', { authorization: 'Bearer not-the-token-0123456789' }, 401, 'invalid token');
    await refusedWhileSending('nope', withToken, 404, 'no channel with id "nope"');
    expect(await metric('chatbridge_inbound_requests_total', { channel: 'wa-tok', outcome: 'unauthorized' }) - before).toBe(3);
    await expectAccepted('wa-tok');
  });

  it('HMAC: a missing or malformed signature is answered before the body; a wrong one after reading it; a right one is accepted', async () => {
    await refusedWhileSending('wa-mac', {}, 401, 'missing x-signature header');
    await refusedWhileSending('wa-mac', { 'x-signature': 'sha256=not-hex' }, 401, 'x-signature does not match the body');
    const body = evolutionPost('ops', nextId(), 'tampered');
    const wrong = await fetch(url('wa-mac'), { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': sign(`${body} `) }, body });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ message: expect.stringContaining('does not match the body') });
    await expectAccepted('wa-mac');
  });

  it('a body over maxBodyBytes is refused as soon as it is known: a declared length at once, a chunked body at the limit', async () => {
    const refusedBefore = await metric('chatbridge_refused_total', { origin: 'inbound', reason: 'too_large' });
    await refusedWhileSending('wa-tok', { ...withToken, 'content-length': String(10 * 1024 * 1024) }, 413, `inbound limit of ${LIMIT} bytes`);
    // Chunked: more than the limit is sent and the body stays open; the answer comes without waiting for the end.
    const held = new HeldPost(url('wa-mac'), { 'x-signature': sign('x') }, 'x'.repeat(LIMIT + 1));
    try {
      const answer = await within('chunked 413', held.answer);
      expect(answer).toMatchObject({ status: 413, body: { message: expect.stringContaining(`inbound limit of ${LIMIT} bytes (channels[].inbound.maxBodyBytes)`) } });
      expect(answer.headers.connection).toBe('close');
    } finally {
      held.abort();
    }
    expect(await metric('chatbridge_refused_total', { origin: 'inbound', reason: 'too_large' }) - refusedBefore).toBe(2);
    expect(await metric('chatbridge_inbound_requests_total', { channel: 'wa-mac', outcome: 'too_large' })).toBe(1);
    await expectAccepted('wa-tok');
    await expectAccepted('wa-mac');
  });

  it('past maxInFlight bodies being read, a post is 503 with Retry-After and counted; the held ones and later ones are accepted', async () => {
    const inFlight = () => metric('chatbridge_inbound_in_flight', { channel: 'wa-tok' });
    const ids = [nextId(), nextId()];
    const bodies = ids.map((id) => evolutionPost('sales', id, 'held'));
    const held = bodies.map((b) => new HeldPost(url('wa-tok'), withToken, b.slice(0, 20)));
    await waitFor('two bodies in flight', async () => (await inFlight()) === 2);

    await refusedWhileSending('wa-tok', withToken, 503, /^channel wa-tok is reading 2 inbound posts already \(channels\[\]\.inbound\.maxInFlight\); retry in 1 s$/);
    const full = await fetch(url('wa-tok'), { method: 'POST', headers: { 'content-type': 'application/json', ...withToken }, body: evolutionPost('sales', nextId(), 'refused') });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('1');
    await full.json();
    expect(await metric('chatbridge_inbound_requests_total', { channel: 'wa-tok', outcome: 'busy' })).toBe(2);
    expect(await metric('chatbridge_refused_total', { origin: 'inbound', reason: 'in_flight' })).toBe(2);
    // The cap is per channel: another channel is not affected.
    await expectAccepted('wa-mac');

    // One held post completes (accepted, published), the other goes away mid-body (its slot is freed too).
    expect(await held[0].finish(bodies[0].slice(20))).toMatchObject({ status: 200, body: { accepted: 1 } });
    await waitFor(`event ${ids[0]} published`, () => published(ids[0]));
    held[1].abort();
    await waitFor('no body in flight', async () => (await inFlight()) === 0);
    expect(await metric('chatbridge_inbound_requests_total', { channel: 'wa-tok', outcome: 'unreadable' })).toBe(1);
    expect(published(ids[1])).toBe(false);
    await expectAccepted('wa-tok');
    await expectAccepted('wa-tok');
  });
});
