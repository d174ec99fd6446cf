import { randomUUID } from 'node:crypto';
import { CaptivateSimulator } from '../simulators/captivate/captivate.simulator';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';
import { WatchersSimulator, type MalformedKind } from '../simulators/watchers/watchers.simulator';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';

/**
 * One bridge, one channel per provider, each against its own simulator, all into one Kafka topic. While one
 * channel's credentials are refused, another's upstream keeps dropping the connection and a third's sends
 * malformed frames, the other channels' events all arrive in order per conversation, and the process stays
 * healthy; then the refused and flapping upstreams are restored and their channels recover.
 */
describe('channel isolation: five providers in one bridge (e2e)', () => {
  const ID = { auth: 'jwt-refused', flap: 'wa-flapping', garbage: 'watchers-garbage', captivate: 'captivate-ok', smartsupp: 'smartsupp-ok' } as const;
  const JWT_CONV = 'conv-1';
  const ZAP_JID = '5511911112222@s.whatsapp.net';
  const ROOMS = ['144444', '155555'];
  const FLAPS = 6;
  const MALFORMED: MalformedKind[] = ['string-payload', 'message-null', 'no-message-id', 'no-room', 'unknown-event'];

  const jwt = new JwtWebSocketSimulator({ secret: 'isolation-secret' });
  const zap = new ZapThinkerSimulator({ instances: { sales: { token: 'sales-token' } } });
  const watchers = new WatchersSimulator({ bots: ['bot-1'] });
  const captivate = new CaptivateSimulator({ apiKeys: ['cap-key'], greeting: false, botReplyDelayMs: 20 });
  const smartsupp = new SmartsuppSimulator({ accountKeys: ['smartsupp-key'] });
  const topic = uniqueTopic('isolation');
  const reader = new KafkaReader(sharedBrokers(), [topic]);
  let bridge: TestBridge | undefined;
  // Liveness and readiness probes running in the background while the upstreams misbehave.
  const probes: Array<{ path: string; status: number }> = [];
  let probing = false;
  let prober: Promise<void> | undefined;

  beforeAll(async () => {
    await Promise.all([jwt.start(), zap.start(), watchers.start(), captivate.start(), smartsupp.start()]);
    zap.touch('sales');
  });

  afterAll(async () => {
    probing = false;
    await prober;
    await bridge?.close();
    await reader.stop();
    await Promise.all([jwt.stop(), zap.stop(), watchers.stop(), captivate.stop(), smartsupp.stop()]);
  });

  const channels = () => [
    { id: ID.auth, provider: 'jwt-websocket', 'jwt-websocket': { url: jwt.url, token: jwt.token({ sub: 'bridge' }), subscribe: [`conversation:${JWT_CONV}`], pingIntervalMs: 200, pongTimeoutMs: 400, connectTimeoutMs: 1500, subscribeConfirmMs: 150 } },
    { id: ID.flap, provider: 'zapthinker', zapthinker: { url: zap.url, instance: 'sales', apiKey: 'sales-token', connectTimeoutMs: 2000 } },
    { id: ID.garbage, provider: 'watchers', watchers: { url: watchers.url, bearer: watchers.bearerFor('bot-1'), apiKey: watchers.apiKey, userId: 'bot-1', rooms: ROOMS, connectTimeoutMs: 2000, ackTimeoutMs: 400 } },
    { id: ID.captivate, provider: 'captivate', captivate: { url: captivate.url, httpUrl: captivate.httpUrl, apiKey: 'cap-key', connectTimeoutMs: 1000, commandTimeoutMs: 1500 } },
    { id: ID.smartsupp, provider: 'smartsupp', smartsupp: { url: smartsupp.url, key: 'smartsupp-key', connectTimeoutMs: 1500, ackTimeoutMs: 600 } },
  ];

  const state = (id: string) => bridge!.bridge.channels.get(id)!.state;
  const start = async (id: string, fields: Record<string, unknown> = {}) =>
    (await bridge!.bridge.router.execute(id, { commandId: randomUUID(), type: 'conversation.start', ...fields })).conversationId!;
  const text = (r: ReadRecord) => (JSON.parse(r.value ?? '{}') as { message?: { text?: string } }).message?.text;
  /** Message texts per Kafka key of one channel, in the order they were read. */
  const messagesByKey = (channel: string): Map<string, string[]> => {
    const out = new Map<string, string[]>();
    for (const r of reader.records) {
      if (r.headers.ce_channelid !== channel || !r.headers.ce_type?.startsWith('chatbridge.message.')) continue;
      out.set(r.key!, [...(out.get(r.key!) ?? []), text(r)!]);
    }
    return out;
  };
  const hasText = (channel: string, t: string) => () => [...messagesByKey(channel).values()].some((texts) => texts.includes(t));
  const statuses = (channel: string) =>
    reader.ofType('chatbridge.channel.status').filter((r) => r.headers.ce_channelid === channel).map((r) => (JSON.parse(r.value!) as { status: { state: string; reason?: string } }).status);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('refused credentials, a flapping upstream and malformed frames on three channels do not touch the other channels', async () => {
    const started = startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events: topic } }, channels: channels() });
    await reader.start();
    const b = (bridge = await started);
    for (const id of Object.values(ID)) await waitFor(`${id} connected`, () => state(id) === 'connected');
    await jwt.waitUntil('jwt subscribed', () => jwt.subscriberCount(`conversation:${JWT_CONV}`) === 1);
    await watchers.waitUntil('rooms listened', () => ROOMS.every((r) => watchers.listeners(r) === 1));

    // Conversations on the healthy channels: two Captivate conversations, two Smartsupp visitors.
    const capConvs = [await start(ID.captivate), await start(ID.captivate)];
    const visitors = [await start(ID.smartsupp, { name: 'Ana' }), await start(ID.smartsupp, { name: 'Ben' })];
    for (const v of visitors) await smartsupp.waitForLive(1, v);
    // The impaired channels work before they are impaired.
    jwt.chatMessage({ conversation_id: JWT_CONV, sender_id: 'user-1', content: 'jwt before' });
    zap.sendMessage('sales', { remoteJid: ZAP_JID, text: 'zap before' });
    await reader.waitFor('impaired channels worked first', () => hasText(ID.auth, 'jwt before')() && hasText(ID.flap, 'zap before')());

    // (a) The jwt-websocket service starts refusing the channel's token, and cuts its socket.
    jwt.rejectAuth(true);
    expect(jwt.dropConnections()).toBe(1);
    // A token that was just accepted keeps the normal schedule for its first refusals (reconnect.authGrace*), then auth_failed.
    await waitFor('auth_failed', () => state(ID.auth) === 'auth_failed', 10_000);
    const tAuth = Date.now();

    // Liveness and readiness are probed all along: neither depends on a channel's upstream.
    probing = true;
    prober = (async () => {
      while (probing) {
        for (const path of ['/healthz', '/readyz']) probes.push({ path, status: await b.get(path, null).then((r) => r.status, () => 0) });
        await sleep(50);
      }
    })();

    // (b) The ZapThinker upstream drops the connection each time the bridge is back.
    const zapAccepted = zap.handshakes.filter((h) => h.accepted).length;
    let flapping = true;
    const flapper = (async () => {
      try {
        for (let i = 0; i < FLAPS; i++) {
          await zap.waitForClients('sales', 1, 5000);
          expect(zap.dropConnections('sales')).toBe(1);
          await sleep(50);
        }
      } finally {
        flapping = false;
      }
    })();

    // Traffic on every channel, round after round, for at least 2 s of refused credentials and until the flapping ends.
    // (c) Each round, the Watchers upstream also sends one of each malformed frame into a listened room.
    const expected = new Map<string, string[]>();
    const want = (key: string, t: string) => expected.set(key, [...(expected.get(key) ?? []), t]);
    let round = 0;
    while (flapping || Date.now() - tAuth < 2200) {
      round++;
      for (let n = 1; n <= 3; n++) {
        for (const [i, conv] of capConvs.entries()) {
          captivate.botMessage(conv, `cap${i} r${round}#${n}`);
          want(`${ID.captivate}:${conv}`, `cap${i} r${round}#${n}`);
        }
        for (const [i, v] of visitors.entries()) {
          smartsupp.agentSays(v, `ss${i} r${round}#${n}`);
          want(`${ID.smartsupp}:${v}`, `ss${i} r${round}#${n}`);
        }
      }
      for (const room of ROOMS) {
        watchers.userSays(room, 'user-1', `${room} r${round}#1`);
        want(`${ID.garbage}:${room}`, `${room} r${round}#1`);
        for (const kind of MALFORMED) watchers.emitMalformed(room, kind);
        watchers.userSays(room, 'user-1', `${room} r${round}#2`);
        want(`${ID.garbage}:${room}`, `${room} r${round}#2`);
      }
      jwt.chatMessage({ conversation_id: JWT_CONV, sender_id: 'user-1', content: `jwt lost r${round}` });
      zap.sendMessage('sales', { remoteJid: ZAP_JID, text: `zap r${round}` });
      await sleep(100);
    }
    await flapper;
    const jwtAttempts = jwt.handshakes.filter((h) => h.at >= tAuth && h.at <= tAuth + 2000);
    expect(state(ID.auth)).toBe('auth_failed');

    // Every event of the unimpaired channels (and every valid one of the malformed channel) is in Kafka, once, in order.
    const complete = () => [...expected].every(([key, texts]) => (messagesByKey(key.slice(0, key.indexOf(':'))).get(key)?.length ?? 0) >= texts.length);
    // On a timeout the comparison below shows what is missing.
    await reader.waitFor('every healthy event', complete, 15_000).catch(() => undefined);
    await sleep(300); // anything extra (a duplicate) would show up by now
    probing = false;
    await prober;
    for (const id of [ID.captivate, ID.smartsupp, ID.garbage]) {
      const got = messagesByKey(id);
      const sent = new Map([...expected].filter(([key]) => key.startsWith(`${id}:`)));
      expect(got).toEqual(sent);
    }
    expect(round).toBeGreaterThanOrEqual(3);

    // The process stayed live and ready throughout.
    expect(probes.filter((p) => p.path === '/healthz').length).toBeGreaterThanOrEqual(10);
    expect(probes.filter((p) => p.status !== 200)).toEqual([]);

    // The healthy channels never noticed: connected once, no reconnects, nothing malformed.
    for (const id of [ID.captivate, ID.smartsupp]) {
      await reader.waitFor(`${id} status events`, () => statuses(id).length >= 2);
      expect({ id, states: statuses(id).map((s) => s.state) }).toEqual({ id, states: ['connecting', 'connected'] });
      expect(b.bridge.channels.get(id)).toMatchObject({ state: 'connected', reconnects: 0, malformedFrames: 0 });
    }
    // The malformed frames were counted on their own channel only, which stayed connected.
    const metrics = (await b.get('/metrics')).text;
    const malformedPerRound = MALFORMED.length - 1; // an unknown event is a provider event, not a malformed frame
    expect(b.bridge.channels.get(ID.garbage)).toMatchObject({ state: 'connected', reconnects: 0, malformedFrames: round * ROOMS.length * malformedPerRound });
    for (const id of Object.values(ID).filter((i) => i !== ID.garbage)) expect({ id, malformed: metricValue(metrics, 'chatbridge_frames_malformed_total', { channel: id }) }).toEqual({ id, malformed: 0 });
    // The refused channel retried on the slow auth schedule (a busy loop would be hundreds of attempts in 2 s).
    expect(jwtAttempts.length).toBeGreaterThanOrEqual(1);
    expect(jwtAttempts.length).toBeLessThanOrEqual(20);
    expect(jwt.handshakes.filter((h) => h.at >= tAuth).every((h) => !h.accepted)).toBe(true);
    // The flapping channel was cut FLAPS times and reconnected each time.
    expect(zap.handshakes.filter((h) => h.accepted).length - zapAccepted).toBeGreaterThanOrEqual(FLAPS);
    expect(b.bridge.channels.get(ID.flap)!.reconnects).toBeGreaterThanOrEqual(FLAPS);
    // What it received between the drops is in order and not doubled (what was sent while it was down is lost upstream).
    const zapRounds = (messagesByKey(ID.flap).get(`${ID.flap}:${ZAP_JID}`) ?? []).filter((t) => /^zap r\d+$/.test(t)).map((t) => Number(t.slice(5)));
    expect(zapRounds).toEqual([...new Set(zapRounds)].sort((x, y) => x - y));

    // Restored: the token is accepted again and the upstream stops dropping; both channels recover and events flow.
    jwt.rejectAuth(false);
    await waitFor('jwt connected again', () => state(ID.auth) === 'connected', 5000);
    await jwt.waitUntil('jwt resubscribed', () => jwt.subscriberCount(`conversation:${JWT_CONV}`) === 1);
    await waitFor('zap connected again', () => state(ID.flap) === 'connected', 5000);
    await zap.waitForClients('sales', 1);
    jwt.chatMessage({ conversation_id: JWT_CONV, sender_id: 'user-1', content: 'jwt after' });
    zap.sendMessage('sales', { remoteJid: ZAP_JID, text: 'zap after' });
    captivate.botMessage(capConvs[0], 'cap after');
    await reader.waitFor('recovered channels deliver', () => hasText(ID.auth, 'jwt after')() && hasText(ID.flap, 'zap after')() && hasText(ID.captivate, 'cap after')());
    // What the service sent while it refused the token never reached the bridge; nothing else is missing or doubled.
    expect(messagesByKey(ID.auth).get(`${ID.auth}:${JWT_CONV}`)).toEqual(['jwt before', 'jwt after']);
    await reader.waitFor('recovery status events', () => statuses(ID.auth).at(-1)?.state === 'connected' && statuses(ID.flap).at(-1)?.state === 'connected');
    expect(statuses(ID.auth).map((s) => `${s.state}${s.reason ? `:${s.reason}` : ''}`)).toEqual(['connecting', 'connected', 'reconnecting:disconnected', 'reconnecting:auth_rejected', 'auth_failed:auth_rejected', 'connected']);
    expect(statuses(ID.flap).filter((s) => s.state === 'reconnecting').length).toBeGreaterThanOrEqual(FLAPS);
    expect((await b.get('/healthz', null)).status).toBe(200);
  });
});
