import { WebSocket, type RawData } from 'ws';
import { JwtWebSocketSimulator, serviceTimestamp, signJwt, verifyJwt } from './jwt-websocket.simulator';

interface Conn {
  socket: WebSocket;
  frames: Array<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('JwtWebSocketSimulator (Zyeta-style JWT WebSocket service)', () => {
  let sim: JwtWebSocketSimulator;
  const sockets: WebSocket[] = [];

  /** Opens a socket; resolves with it once open, or rejects with the HTTP status of a refused upgrade. */
  function connect(token: string | undefined): Promise<Conn> {
    const url = token === undefined ? sim.url : `${sim.url}?token=${encodeURIComponent(token)}`;
    const socket = new WebSocket(url);
    sockets.push(socket);
    const frames: Array<Record<string, unknown>> = [];
    socket.on('message', (d: RawData) => {
      try {
        frames.push(JSON.parse(String(d)) as Record<string, unknown>);
      } catch {
        frames.push({ unparseable: String(d) });
      }
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    return new Promise<Conn>((resolve, reject) => {
      socket.on('open', () => resolve({ socket, frames, closed }));
      socket.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      socket.on('error', reject);
    });
  }

  const send = (c: Conn, frame: unknown) => c.socket.send(JSON.stringify(frame));
  const until = (what: string, check: () => boolean) => sim.waitUntil(what, check, 2000);

  beforeEach(async () => {
    sim = new JwtWebSocketSimulator({ secret: 's3cret' });
    await sim.start();
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.terminate();
    await sim.stop();
  });

  it('verifies HS256 tokens and their exp', () => {
    const good = signJwt({ sub: 'u', exp: Math.floor(Date.now() / 1000) + 60 }, 's3cret');
    expect(verifyJwt(good, 's3cret')).toEqual({ claims: expect.objectContaining({ sub: 'u' }) });
    expect(verifyJwt(good, 'other')).toEqual({ reason: 'invalid signature' });
    expect(verifyJwt(signJwt({ exp: 1 }, 's3cret'), 's3cret')).toEqual({ reason: 'token expired' });
    expect(verifyJwt('a.b', 's3cret')).toEqual({ reason: 'malformed token' });
    expect(verifyJwt(undefined, 's3cret')).toEqual({ reason: 'token is required' });
    expect(serviceTimestamp(new Date('2023-08-15T10:30:00.123Z'))).toBe('2023-08-15T10:30:00Z');
  });

  it('answers ping with pong, delivers chat_message only to subscribers, records client frames', async () => {
    const a = await connect(sim.token({ sub: 'user-a' }));
    const b = await connect(sim.token({ sub: 'user-b' }));
    expect(sim.handshakes.map((h) => [h.sub, h.accepted])).toEqual([['user-a', true], ['user-b', true]]);
    send(a, { type: 'ping', data: {} });
    await until('pong', () => a.frames.length === 1);
    expect(a.frames[0]).toEqual({ type: 'pong', data: {}, timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) });

    send(a, { type: 'subscribe', data: { channel: 'conversation:conv-123' } });
    await until('subscribed', () => sim.subscriberCount('conversation:conv-123') === 1);
    const frame = sim.chatMessage({ conversation_id: 'conv-123', sender_id: 'user-456', content: 'Hello there!' }, '2023-08-15T10:30:00Z');
    sim.chatMessage({ conversation_id: 'conv-other', sender_id: 'user-456', content: 'not for you' });
    sim.notification({ message: 'New comment on your post', level: 'info' });
    await until('notifications', () => a.frames.length === 3 && b.frames.length === 1);
    expect(a.frames[1]).toEqual(frame);
    expect(a.frames[2]).toMatchObject({ type: 'notification' });
    expect(b.frames[0]).toMatchObject({ type: 'notification' });

    send(a, { type: 'unsubscribe', data: { channel: 'conversation:conv-123' } });
    await until('unsubscribed', () => sim.subscriberCount('conversation:conv-123') === 0);
    expect(sim.framesOfType('subscribe')[0]).toMatchObject({ connection: 1, raw: '{"type":"subscribe","data":{"channel":"conversation:conv-123"}}' });
  });

  it('refuses a bad or expired token with HTTP 401 on the upgrade (default mode)', async () => {
    await expect(connect(sim.token({ secret: 'forged' }))).rejects.toThrow('HTTP 401');
    await expect(connect(sim.token({ expiresInSec: -10 }))).rejects.toThrow('HTTP 401');
    await expect(connect(undefined)).rejects.toThrow('HTTP 401');
    expect(sim.handshakes.map((h) => h.reason)).toEqual(['invalid signature', 'token expired', 'token is required']);
    sim.rejectAuth(true);
    await expect(connect(sim.token())).rejects.toThrow('HTTP 401');
  });

  it('in error-frame mode accepts the upgrade, sends an unauthorized error frame and closes with 1008', async () => {
    sim.setAuthFailureMode('error-frame');
    const c = await connect(sim.token({ expiresInSec: -10 }));
    expect(await c.closed).toEqual({ code: 1008, reason: 'unauthorized' });
    expect(c.frames).toEqual([{ type: 'error', data: { code: 'unauthorized', message: 'Authentication failed: token expired' }, timestamp: expect.any(String) }]);
    expect(sim.connectionCount()).toBe(0);

    const live = await connect(sim.token());
    sim.revokeAuth();
    expect((await live.closed).code).toBe(1008);
    expect(live.frames[0]).toMatchObject({ type: 'error', data: { code: 'unauthorized' } });
  });

  it('fails the next N subscribes of a channel with subscription_failed naming it; answers bad frames with invalid_request', async () => {
    const c = await connect(sim.token());
    sim.failSubscriptions('conversation:x', 2);
    for (let i = 0; i < 3; i++) send(c, { type: 'subscribe', data: { channel: 'conversation:x' } });
    await until('subscribed on the third try', () => sim.subscriberCount('conversation:x') === 1);
    expect(c.frames.map((f) => (f.data as { code?: string }).code)).toEqual(['subscription_failed', 'subscription_failed']);
    expect(c.frames[0]).toMatchObject({ type: 'error', data: { channel: 'conversation:x', message: 'Failed to subscribe to the requested channel' } });

    c.socket.send('not json');
    send(c, { type: 'subscribe', data: {} });
    send(c, { type: 'launch' });
    await until('three errors', () => c.frames.length === 5);
    expect(c.frames.slice(2).map((f) => (f.data as { code: string }).code)).toEqual(['invalid_request', 'invalid_request', 'invalid_request']);
    expect(sim.received[sim.received.length - 3]).toMatchObject({ raw: 'not json', frame: undefined });
  });

  it('stops answering pings on demand; drops and restarts on the same port, losing subscriptions', async () => {
    const c = await connect(sim.token());
    sim.answerPings(false);
    send(c, { type: 'ping', data: {} });
    await sleep(150);
    expect(c.frames).toEqual([]);
    sim.answerPings(true);

    send(c, { type: 'subscribe', data: { channel: 'task:task-789' } });
    await until('subscribed', () => sim.subscriberCount('task:task-789') === 1);
    sim.statusUpdate({ entity_type: 'task', entity_id: 'task-789', status: 'completed' });
    await until('status', () => c.frames.length === 1);

    expect(sim.dropConnections()).toBe(1);
    expect((await c.closed).code).toBe(1006);
    const port = sim.port;
    const d = await connect(sim.token());
    await sim.restart();
    expect(sim.port).toBe(port);
    await d.closed;
    const e = await connect(sim.token());
    expect(sim.subscriberCount('task:task-789')).toBe(0);
    sim.malformed('not-json');
    sim.malformed('binary');
    await until('garbage', () => e.frames.length === 2);
    expect(e.frames[0]).toEqual({ unparseable: '{"type":"chat_message","data":{"conversation_id":' });
  });
});
