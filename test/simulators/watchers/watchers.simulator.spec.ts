import { io, type Socket } from 'socket.io-client';
import { WatchersSimulator, type WatchersMessage } from './watchers.simulator';

const BOT = 'bot-1';

function once<T>(socket: Socket, event: string, timeoutMs = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), timeoutMs);
    socket.once(event, (arg: T) => {
      clearTimeout(timer);
      resolve(arg);
    });
  });
}

describe('WatchersSimulator (socket.io v4 bot API + Bot REST API)', () => {
  let sim: WatchersSimulator;
  const clients: Socket[] = [];

  const client = (bearer: string | undefined): Socket => {
    const socket = io(sim.url, { transports: ['websocket'], upgrade: false, reconnection: false, forceNew: true, auth: bearer === undefined ? {} : { bearer } });
    clients.push(socket);
    return socket;
  };
  const connected = async (): Promise<Socket> => {
    const s = client(sim.bearerFor(BOT));
    await once(s, 'connect');
    return s;
  };
  const listen = (s: Socket, roomId: string, apiKey = sim.apiKey): Promise<unknown> => s.timeout(1000).emitWithAck('external/listen', { roomId, apiKey });

  beforeEach(async () => {
    sim = new WatchersSimulator();
    await sim.start();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await sim.stop();
  });

  it('refuses a bad or missing bearer in its middleware: connect_error with the message and data', async () => {
    const bad = client('not-a-jwt');
    const err = await once<Error & { data?: unknown }>(bad, 'connect_error');
    expect(err.message).toBe('invalid bearer');
    expect(err.data).toEqual({ code: 401 });
    const other = client(sim.bearerFor('someone-else'));
    expect((await once<Error>(other, 'connect_error')).message).toBe('invalid bearer');
    const none = client(undefined);
    expect((await once<Error>(none, 'connect_error')).message).toBe('bearer is required');
    sim.rejectAuth(true);
    expect((await once<Error>(client(sim.bearerFor(BOT)), 'connect_error')).message).toBe('invalid bearer');
    expect(sim.handshakes.map((h) => h.accepted)).toEqual([false, false, false, false]);
  });

  it('external/listen acks and joins; room messages have the docs shape and increasing ids; restart loses rooms', async () => {
    const s = await connected();
    expect(await listen(s, '144444', 'wrong')).toEqual({ error: 'Project not found' });
    expect(await listen(s, '144444')).toEqual({ status: 'ok', roomId: '144444' });
    expect(sim.listeners('144444')).toBe(1);
    const got: WatchersMessage[] = [];
    s.on('message', (m: WatchersMessage) => got.push(m));
    sim.userSays('144444', '123', 'hello');
    sim.userSays('144444', '123', 'again');
    sim.userSays('155555', '123', 'not listened');
    await sim.waitUntil('2 messages', () => got.length === 2);
    expect(got[0]).toEqual({ project: 'test', roomId: '144444', message: { id: 101, text: 'hello' }, userId: '123' });
    expect(got[1].message.id).toBe(102);
    expect(sim.emitsOf('external/listen')[1]).toMatchObject({ payload: { roomId: '144444', apiKey: sim.apiKey }, uid: BOT });

    const dropped = once<string>(s, 'disconnect');
    await sim.restart();
    expect(await dropped).toBe('transport close');
    const again = await connected();
    expect(sim.listeners('144444')).toBe(0);
    await listen(again, '144444');
    expect(sim.userSays('144444', '123', 'after').message.id).toBe(103);
  });

  it('listen controls: failing acks, withheld acks (joined anyway), delayed acks', async () => {
    const s = await connected();
    sim.failNextListens('r1', 1);
    expect(await listen(s, 'r1')).toEqual({ error: 'Room not found' });
    expect(sim.listeners('r1')).toBe(0);
    expect(await listen(s, 'r1')).toEqual({ status: 'ok', roomId: 'r1' });
    sim.withholdNextListenAcks('r2', 1);
    await expect(listen(s, 'r2')).rejects.toThrow('operation has timed out');
    expect(sim.listeners('r2')).toBe(1);
    sim.delayListenAcks(200);
    const t0 = Date.now();
    await listen(s, 'r3');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('external/send: posts as the bot (echoed to listeners), acks with no error; fail and withhold controls', async () => {
    const s = await connected();
    await listen(s, 'r1');
    const send = (text: string, extra: Record<string, unknown> = {}): Promise<unknown> =>
      s.timeout(500).emitWithAck('external/send', { roomId: 'r1', apiKey: sim.apiKey, userId: BOT, text, ...extra });
    const echo = once<WatchersMessage>(s, 'message');
    expect(await send('hi')).toBeUndefined();
    expect(await echo).toEqual({ project: 'test', roomId: 'r1', message: { id: 101, text: 'hi' }, userId: BOT });
    expect(await send('x', { userId: 'bot-2' })).toBe('userId does not match the bearer');
    expect(await send('')).toBe('roomId and text are required');
    sim.failNextSends(1);
    expect(await send('nope')).toBe('Message not sent');
    sim.withholdNextSendAcks(1);
    const delivered = once<WatchersMessage>(s, 'message');
    await expect(send('lost ack')).rejects.toThrow('operation has timed out');
    expect((await delivered).message.text).toBe('lost ack');
  });

  it('REST sendMessage checks X-Api-Key, the bearer and X-Bot-Id, and posts to the room', async () => {
    const s = await connected();
    await listen(s, 'r1');
    const echo = once<WatchersMessage>(s, 'message');
    const post = (headers: Record<string, string>, body: unknown = { roomId: 'r1', text: 'via rest' }): Promise<Response> =>
      fetch(`${sim.url}/api/bot/sendMessage`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const good = { 'X-Api-Key': sim.apiKey, Authorization: `Bearer ${sim.bearerFor(BOT)}`, 'X-Bot-Id': BOT };
    const ok = await post(good);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ id: 101, text: 'via rest', room: { externalId: 'r1' } });
    expect((await echo).userId).toBe(BOT);
    expect((await post({ ...good, 'X-Api-Key': 'nope' })).status).toBe(404);
    expect((await post({ ...good, 'X-Bot-Id': 'other' })).status).toBe(403);
    expect((await post(good, { roomId: 'r1', text: '' })).status).toBe(400);
    sim.failNextRestSends(1, 503);
    expect((await post(good)).status).toBe(503);
    expect(sim.requests[0]).toMatchObject({ method: 'POST', path: '/api/bot/sendMessage', body: { roomId: 'r1', text: 'via rest' } });
    expect(sim.requests[0].headers['x-bot-id']).toBe(BOT);
  });

  it('delivers malformed frames and drops transports on demand', async () => {
    const s = await connected();
    await listen(s, 'r1');
    const frames: Array<[string, unknown]> = [];
    s.onAny((event: string, payload: unknown) => frames.push([event, payload]));
    for (const kind of ['string-payload', 'message-null', 'no-message-id', 'no-room', 'unknown-event'] as const) sim.emitMalformed('r1', kind);
    await sim.waitUntil('5 frames', () => frames.length === 5);
    expect(frames[0]).toEqual(['message', 'r1:101 malformed string-payload']);
    expect(frames[4][0]).toBe('exception');
    const reason = once<string>(s, 'disconnect');
    expect(sim.dropConnections()).toBe(1);
    expect(await reason).toBe('transport close');
  });
});
