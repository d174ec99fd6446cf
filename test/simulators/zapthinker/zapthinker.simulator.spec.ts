import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { io as connectClient, Socket } from 'socket.io-client';

import {
  EvolutionEnvelope,
  EvolutionMessageData,
  SendTextResponse,
  ZAPTHINKER_UNKNOWN_EVENT,
  ZapThinkerSimulator,
} from './zapthinker.simulator';

const INSTANCE = 'acme';
const TOKEN = 'tok-acme';

interface ClientOptions {
  apikey?: string;
  reconnection?: boolean;
  autoConnect?: boolean;
}

interface TransportErrorLike extends Error {
  type?: string;
  description?: { message?: string } | number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function once<T>(socket: Socket, event: string, timeoutMs = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), timeoutMs);
    socket.once(event, (arg: T) => {
      clearTimeout(timer);
      resolve(arg);
    });
  });
}

describe('ZapThinkerSimulator (Evolution API v2.3.6 socket.io server)', () => {
  let sim: ZapThinkerSimulator;
  const clients: Socket[] = [];

  const client = (instance: string, opts: ClientOptions = {}): Socket => {
    const socket = connectClient(`${sim.url}/${instance}`, {
      transports: ['websocket'],
      query: opts.apikey === undefined ? {} : { apikey: opts.apikey },
      reconnection: opts.reconnection ?? true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
      autoConnect: opts.autoConnect ?? true,
      forceNew: true,
    });
    clients.push(socket);
    return socket;
  };

  const post = (path: string, body: unknown, apikey = TOKEN, signal?: AbortSignal): Promise<Response> =>
    fetch(`${sim.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', apikey },
      body: JSON.stringify(body),
      signal,
    });

  beforeEach(async () => {
    sim = new ZapThinkerSimulator({
      instances: { [INSTANCE]: { token: TOKEN, wuid: '5511911112222@s.whatsapp.net' }, other: { token: 'tok-other' } },
      globalApiKey: 'global-key',
      pingIntervalMs: 1000,
      pingTimeoutMs: 1000,
      timezoneOffsetMinutes: 180,
      notOnWhatsApp: ['5511900001111'],
    });
    await sim.start();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await sim.stop();
  });

  it('rejects a bad API key at the Engine.IO handshake; the client never connects', async () => {
    sim.touch(INSTANCE);
    const socket = client(INSTANCE, { apikey: 'wrong' });
    let connected = false;
    socket.on('connect', () => (connected = true));
    const err = await once<TransportErrorLike>(socket, 'connect_error');
    expect(err.message).toBe('websocket error');
    expect(err.type).toBe('TransportError');
    // engine.io answers a rejected websocket upgrade with "HTTP/1.1 400 Bad Request", not 403.
    expect(typeof err.description === 'object' && err.description?.message).toBe('Unexpected server response: 400');
    await sleep(300); // several reconnection attempts
    expect(connected).toBe(false);
    expect(sim.handshakes.filter((h) => !h.accepted).length).toBeGreaterThanOrEqual(2);
    expect(sim.handshakes[0]).toMatchObject({ apikey: 'wrong', accepted: false, reason: 'Invalid global token' });

    const noKey = client(INSTANCE, { reconnection: false });
    await once(noKey, 'connect_error');
    expect(sim.handshakes.some((h) => h.reason === 'apiKey is required')).toBe(true);

    // Auth is not namespace-scoped: another instance's token (or the global key) is accepted.
    const foreign = client(INSTANCE, { apikey: 'tok-other', reconnection: false });
    await once(foreign, 'connect');
    foreign.close();

    sim.rejectAuth(true);
    const rejected = client(INSTANCE, { apikey: 'global-key', reconnection: false });
    await once(rejected, 'connect_error');
    expect(sim.handshakes[sim.handshakes.length - 1]).toMatchObject({ accepted: false, reason: 'Invalid global token' });
    sim.rejectAuth(true, 'Authentication error');
    const failing = client(INSTANCE, { apikey: 'global-key', reconnection: false });
    await once(failing, 'connect_error');
    expect(sim.handshakes[sim.handshakes.length - 1]).toMatchObject({ accepted: false, reason: 'Authentication error' });
  });

  it('creates namespaces lazily: "Invalid namespace" before the first event, connects after touch', async () => {
    const socket = client(INSTANCE, { apikey: TOKEN });
    const err = await once<Error>(socket, 'connect_error');
    expect(err.message).toBe('Invalid namespace');
    // A namespace-level CONNECT_ERROR is terminal for socket.io-client: no automatic retry.
    expect(socket.active).toBe(false);
    expect(sim.hasNamespace(INSTANCE)).toBe(false);

    sim.touch(INSTANCE);
    socket.connect();
    await once(socket, 'connect');
    expect(sim.connectedClients(INSTANCE)).toBe(1);
  });

  it('emits messages.upsert to /<instance> with the Evolution envelope', async () => {
    sim.touch(INSTANCE);
    const socket = client(INSTANCE, { apikey: TOKEN });
    await once(socket, 'connect');
    const received = once<EvolutionEnvelope<EvolutionMessageData>>(socket, 'messages.upsert');
    const before = Date.now();
    const data = sim.sendMessage(INSTANCE, { remoteJid: '5511988887777', text: 'olá', pushName: 'Giovanna' });
    const env = await received;

    expect(Object.keys(env).sort()).toEqual(['apikey', 'data', 'date_time', 'event', 'instance', 'sender', 'server_url']);
    expect(env).toMatchObject({
      event: 'messages.upsert',
      instance: INSTANCE,
      server_url: sim.url,
      sender: '5511911112222@s.whatsapp.net',
      apikey: null,
    });
    expect(env.data).toEqual(data);
    expect(env.data).toMatchObject({
      key: { remoteJid: '5511988887777@s.whatsapp.net', fromMe: false },
      pushName: 'Giovanna',
      status: 'DELIVERY_ACK',
      message: { conversation: 'olá' },
      messageType: 'conversation',
      source: 'android',
    });
    expect(env.data.key.id).toMatch(/^[0-9A-F]{32}$/);
    expect(Math.abs(env.data.messageTimestamp - Math.floor(before / 1000))).toBeLessThanOrEqual(2);
    // date_time quirk: local wall clock (UTC-3) labelled with Z → three hours behind the real UTC time.
    expect(env.date_time.endsWith('Z')).toBe(true);
    const skew = before - Date.parse(env.date_time);
    expect(Math.abs(skew - 3 * 3600_000)).toBeLessThan(2000);

    const iosId = ZapThinkerSimulator.newIosMessageId();
    expect(iosId).toMatch(/^3A[0-9A-F]{18}$/);
    expect(sim.messageUpsert({ instance: INSTANCE, remoteJid: '1@g.us', text: 'x', id: iosId }).source).toBe('ios');
  });

  it('delivers malformed frames as they are', async () => {
    sim.touch(INSTANCE);
    const socket = client(INSTANCE, { apikey: TOKEN });
    await once(socket, 'connect');
    const frames: Array<[string, unknown]> = [];
    socket.onAny((event: string, payload: unknown) => frames.push([event, payload]));
    sim.emitMalformed(INSTANCE, 'null-data');
    sim.emitMalformed(INSTANCE, 'no-key');
    sim.emitMalformed(INSTANCE, 'string-payload');
    sim.emitMalformed(INSTANCE, 'unknown-event');
    await sleep(100);
    expect(frames).toHaveLength(4);
    expect((frames[0][1] as EvolutionEnvelope).data).toBeNull();
    expect((frames[1][1] as EvolutionEnvelope<Record<string, unknown>>).data['key']).toBeUndefined();
    expect(frames[2]).toEqual(['messages.upsert', 'this is not an envelope']);
    expect(frames[3][0]).toBe(ZAPTHINKER_UNKNOWN_EVENT);
  });

  it('dropConnections: the client reconnects by itself after a transport drop, not after a server disconnect', async () => {
    sim.touch(INSTANCE);
    const socket = client(INSTANCE, { apikey: TOKEN });
    await once(socket, 'connect');
    const reason = once<string>(socket, 'disconnect');
    expect(sim.dropConnections(INSTANCE)).toBe(1);
    expect(await reason).toBe('transport close');
    await once(socket, 'connect');
    expect(sim.connectedClients(INSTANCE)).toBe(1);

    const reason2 = once<string>(socket, 'disconnect');
    sim.dropConnections(INSTANCE, 'server-disconnect');
    expect(await reason2).toBe('io server disconnect');
    await sleep(300);
    expect(socket.connected).toBe(false);
    expect(socket.active).toBe(false);
  });

  it('restart: same port, namespaces lazy again ("Invalid namespace"), REST state kept', async () => {
    const set = await post(`/websocket/set/${INSTANCE}`, { websocket: { enabled: true, events: ['MESSAGES_UPSERT'] } });
    expect(set.status).toBe(201);
    const socket = client(INSTANCE, { apikey: TOKEN });
    await once(socket, 'connect'); // /websocket/set touched the namespace
    const port = sim.port;

    const disconnected = once<string>(socket, 'disconnect');
    const connectError = once<Error>(socket, 'connect_error', 5000);
    await sim.restart();
    expect(sim.port).toBe(port);
    expect(await disconnected).toBe('transport close');
    expect((await connectError).message).toBe('Invalid namespace');
    expect(socket.active).toBe(false);
    expect(sim.hasNamespace(INSTANCE)).toBe(false);

    const find = await fetch(`${sim.url}/websocket/find/${INSTANCE}`, { headers: { apikey: TOKEN } });
    expect(find.status).toBe(200);
    expect(await find.json()).toMatchObject({ enabled: true, events: ['MESSAGES_UPSERT'] });

    // The event filter from /websocket/set still applies: connection.update is not in the list.
    expect(sim.emit(INSTANCE, 'connection.update', sim.connectionUpdate({ instance: INSTANCE, state: 'open' }))).toBeUndefined();
    expect(sim.hasNamespace(INSTANCE)).toBe(false);
    sim.sendMessage(INSTANCE, { remoteJid: '5511988887777', text: 'first after restart' }); // creates the namespace
    socket.connect();
    await once(socket, 'connect');
    await sim.waitForClients(INSTANCE, 1, 1000);
  });

  it('sendText: 201 with the Baileys message, then send.message; error answers are Evolution-shaped', async () => {
    sim.touch(INSTANCE);
    const socket = client(INSTANCE, { apikey: TOKEN });
    await once(socket, 'connect');
    const echo = once<EvolutionEnvelope<EvolutionMessageData>>(socket, 'send.message');

    const res = await post(`/message/sendText/${INSTANCE}`, { number: '+55 11 98888-7777', text: 'hello' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as SendTextResponse;
    expect(body).toMatchObject({
      key: { remoteJid: '5511988887777@s.whatsapp.net', fromMe: true },
      message: { extendedTextMessage: { text: 'hello' } },
      status: 'PENDING',
    });
    expect(body.key.id).toMatch(/^BAE5[0-9A-F]{12}$/);
    expect(body.messageTimestamp).toMatch(/^\d+$/);
    const env = await echo;
    expect(env.data).toMatchObject({
      key: { id: body.key.id, fromMe: true, remoteJid: '5511988887777@s.whatsapp.net' },
      message: { conversation: 'hello' },
      messageType: 'conversation',
      status: 'SERVER_ACK',
      messageTimestamp: Number(body.messageTimestamp),
    });
    expect(sim.requests[0]).toMatchObject({
      method: 'POST',
      path: `/message/sendText/${INSTANCE}`,
      body: { number: '+55 11 98888-7777', text: 'hello' },
    });
    expect(sim.requests[0].headers['apikey']).toBe(TOKEN);

    const groupRes = await post(`/message/sendText/${INSTANCE}`, { number: '120363000000000000@g.us', text: 'g' }, 'global-key');
    expect(((await groupRes.json()) as SendTextResponse).key.remoteJid).toBe('120363000000000000@g.us');

    const unauthorised = await post(`/message/sendText/${INSTANCE}`, { number: '1', text: 'x' }, 'tok-other');
    expect(unauthorised.status).toBe(401);
    expect(await unauthorised.json()).toEqual({ status: 401, error: 'Unauthorized', response: { message: 'Unauthorized' } });

    const missing = await post(`/message/sendText/${INSTANCE}`, { text: 'x' });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({
      status: 400,
      error: 'Bad Request',
      response: { message: [['instance requires property "number"']] },
    });

    const notWa = await post(`/message/sendText/${INSTANCE}`, { number: '5511900001111', text: 'x' });
    expect(notWa.status).toBe(400);
    expect(await notWa.json()).toMatchObject({
      response: { message: [{ exists: false, jid: '5511900001111@s.whatsapp.net', number: '5511900001111' }] },
    });

    sim.failNextSends(1, 503);
    const failed = await post(`/message/sendText/${INSTANCE}`, { number: '5511988887777', text: 'x' });
    expect(failed.status).toBe(503);
    await sleep(50);
    const ok = await post(`/message/sendText/${INSTANCE}`, { number: '5511988887777', text: 'x' });
    expect(ok.status).toBe(201);
  });

  it('hangNextSends: the send happens (send.message) but the request is never answered', async () => {
    sim.touch(INSTANCE);
    const socket = client(INSTANCE, { apikey: TOKEN });
    await once(socket, 'connect');
    const echo = once<EvolutionEnvelope<EvolutionMessageData>>(socket, 'send.message');
    sim.hangNextSends(1);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 400);
    const outcome = post(`/message/sendText/${INSTANCE}`, { number: '5511988887777', text: 'lost ack' }, TOKEN, ac.signal).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    const env = await echo;
    expect(env.data.message.conversation).toBe('lost ack');
    expect(await outcome).toBe('AbortError');
    clearTimeout(timer);
    const next = await post(`/message/sendText/${INSTANCE}`, { number: '5511988887777', text: 'answered' });
    expect(next.status).toBe(201);
  });

  it('burst: preserves emission order across conversations', async () => {
    sim.touch(INSTANCE);
    const socket = client(INSTANCE, { apikey: TOKEN });
    await once(socket, 'connect');
    const got: string[] = [];
    const count = 3000;
    const done = new Promise<void>((resolve) => {
      socket.on('messages.upsert', (env: EvolutionEnvelope<EvolutionMessageData>) => {
        got.push(env.data.key.id);
        if (got.length === count) resolve();
      });
    });
    const sent = await sim.burst(INSTANCE, count, { conversations: 7, perTick: 500 });
    await done;
    expect(got).toEqual(sent.map((d) => d.key.id));
    expect(new Set(sent.map((d) => d.key.remoteJid)).size).toBe(7);
    expect(sent[0].message.conversation).toBe('msg 0#1');
    expect(sent[7].message.conversation).toBe('msg 0#2');
    expect(sent[8].message.conversation).toBe('msg 1#2');
  });

  it('webhook/set: every event passing the webhook filter is POSTed with the envelope, destination and headers; byEvents adds the suffix', async () => {
    const received: Array<{ url: string; headers: Record<string, unknown>; body: Record<string, unknown> }> = [];
    const receiver = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      req.on('end', () => {
        received.push({ url: req.url ?? '', headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
        res.writeHead(req.url?.includes('fail') ? 500 : 200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    try {
      expect((await post(`/webhook/set/${INSTANCE}`, { webhook: { enabled: true } })).status).toBe(400);
      const set = await post(`/webhook/set/${INSTANCE}`, { webhook: { enabled: true, url: `${base}/in`, headers: { 'x-chatbridge-token': 't1' }, byEvents: true, events: ['MESSAGES_UPSERT'] } });
      expect(set.status).toBe(201);
      expect((await fetch(`${sim.url}/webhook/find/${INSTANCE}`, { headers: { apikey: TOKEN } }).then((r) => r.json()))).toMatchObject({ enabled: true, byEvents: true });
      // The websocket filter is separate: with the socket disabled, the webhook still gets the event.
      expect((await post(`/websocket/set/${INSTANCE}`, { websocket: { enabled: false } })).status).toBe(201);
      const env = sim.emit(INSTANCE, 'messages.upsert', sim.messageUpsert({ instance: INSTANCE, remoteJid: '5511999999999', text: 'hi' }));
      expect(sim.emit(INSTANCE, 'presence.update', sim.presenceUpdate({ remoteJid: '5511999999999' }))).toBeUndefined();
      await sim.webhooksIdle();
      expect(received).toEqual([{ url: '/in/messages-upsert', headers: expect.objectContaining({ 'x-chatbridge-token': 't1', 'content-type': 'application/json' }), body: { ...env, destination: `${base}/in/messages-upsert` } }]);
      expect(sim.webhookDeliveries.map((d) => d.status)).toEqual([200]);

      await post(`/webhook/set/${INSTANCE}`, { webhook: { enabled: true, url: `${base}/fail` } });
      sim.emit(INSTANCE, 'connection.update', sim.connectionUpdate({ instance: INSTANCE, state: 'open' }));
      await sim.webhooksIdle();
      expect(sim.webhookDeliveries.map((d) => [d.event, d.status])).toEqual([['messages.upsert', 200], ['connection.update', 500]]);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});
