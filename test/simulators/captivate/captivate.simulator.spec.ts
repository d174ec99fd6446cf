import { WebSocket } from 'ws';
import { CaptivateSimulator } from './captivate.simulator';

interface Frame {
  action?: string;
  event: { event_type: string; event_payload: Record<string, unknown>; event_id: string };
}

/** A raw client that queues every frame it receives. */
class Client {
  readonly frames: Array<Frame | string> = [];
  closed?: { code: number; reason: string };
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      const text = d.toString('utf8');
      try {
        this.frames.push(JSON.parse(text) as Frame);
      } catch {
        this.frames.push(text);
      }
    });
    ws.on('close', (code: number, reason: Buffer) => (this.closed = { code, reason: reason.toString() }));
  }
  async next(type: string, timeoutMs = 2000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const i = this.frames.findIndex((f) => typeof f !== 'string' && f.event?.event_type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0] as Frame;
      await sleep(5);
    }
    throw new Error(`no ${type} frame`);
  }
  send(type: string, payload: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ action: 'sendMessage', event: { event_type: type, event_payload: payload } }));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CaptivateSimulator (API Gateway-style socket + HTTP API)', () => {
  let sim: CaptivateSimulator;
  const sockets: WebSocket[] = [];

  const open = (query: string): Promise<Client | { status: number }> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${sim.url}/${query}`);
      sockets.push(ws);
      const client = new Client(ws);
      ws.on('open', () => resolve(client));
      ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
      ws.on('error', () => undefined);
    });
  const connect = async (query = '?apikey=test-key'): Promise<Client> => {
    const c = await open(query);
    if (!(c instanceof Client)) throw new Error(`upgrade refused: ${c.status}`);
    return c;
  };
  const post = (body: unknown, key = 'test-key') =>
    fetch(`${sim.httpUrl}/api/custom-channel/sockets/message`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeEach(async () => {
    sim = new CaptivateSimulator({ botReplyDelayMs: 30 });
    await sim.start();
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.terminate();
    await sim.stop();
  });

  it('checks the key at the upgrade (401 without, 403 wrong), accepts both casings, then sends socket_connected', async () => {
    expect(await open('')).toEqual({ status: 401 });
    expect(await open('?apikey=nope')).toEqual({ status: 403 });
    const lower = await connect('?apikey=test-key');
    const upper = await connect('?apiKey=test-key');
    const hello = await lower.next('socket_connected');
    expect(hello).toMatchObject({ action: 'receiveMessage', event: { event_payload: { socket_id: expect.stringMatching(/^[A-Za-z0-9+/]{15}=$/) } } });
    expect((await upper.next('socket_connected')).event.event_payload.socket_id).not.toBe(hello.event.event_payload.socket_id);
    expect(sim.handshakes.map((h) => [h.param ?? null, h.status])).toEqual([[null, 401], ['apikey', 403], ['apikey', 101], ['apiKey', 101]]);
    sim.rejectAuth(true);
    expect(await open('?apikey=test-key')).toEqual({ status: 403 });
  });

  it('withholds or delays socket_connected on request', async () => {
    sim.setSocketConnected('withhold');
    const c = await connect();
    await sleep(100);
    expect(c.frames).toEqual([]);
    sim.setSocketConnected(80);
    const d = await connect();
    const t0 = Date.now();
    await d.next('socket_connected');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
  });

  it('starts a conversation, greets, answers user messages later, and records what the client sent', async () => {
    const c = await connect();
    await c.next('socket_connected');
    c.send('conversation_start', { userId: 'u1', userBasicInfo: { firstName: 'Sigrid' } });
    const started = await c.next('conversation_start_success');
    const conv = started.event.event_payload.conversation_id as string;
    expect(conv).toMatch(/^u1-[0-9a-f-]{36}$/);
    expect((await c.next('bot_message')).event.event_payload.content).toEqual([{ type: 'text', text: "Hi. I'm the Captivate Bot." }]);
    c.send('user_message', { type: 'message_create', client_msg_id: 'm1', conversation_id: conv, content: { type: 'text', text: 'hello' } });
    const reply = await c.next('bot_message');
    expect(reply.event.event_payload).toMatchObject({ conversation_id: conv, ch_msg_id: expect.any(String), content: [{ type: 'text', text: 'You said: hello' }] });
    c.send('user_message', { type: 'message_create', client_msg_id: 'm2', conversation_id: 'nope', content: { type: 'text', text: 'x' } });
    expect((await c.next('general_error')).event.event_payload).toEqual({ conversation_id: 'nope', error_code: 400, error_desc: 'Invalid conversation_id' });
    expect(sim.sent('user_message').map((f) => f.json)).toEqual([
      { action: 'sendMessage', event: { event_type: 'user_message', event_payload: { type: 'message_create', client_msg_id: 'm1', conversation_id: conv, content: { type: 'text', text: 'hello' } } } },
      { action: 'sendMessage', event: { event_type: 'user_message', event_payload: { type: 'message_create', client_msg_id: 'm2', conversation_id: 'nope', content: { type: 'text', text: 'x' } } } },
    ]);
    c.ws.send(JSON.stringify({ action: 'ping' }));
    expect(await c.next('socket_connected', 100).catch(() => 'none')).toBe('none');
    await sleep(20);
    expect(c.frames).toContainEqual(expect.objectContaining({ message: 'Forbidden' }));
  });

  it('routes HTTP sends to the socket named by socket_id (410 unknown, 401 bad key) and serves transcripts', async () => {
    const c = await connect();
    const socketId = (await c.next('socket_connected')).event.event_payload.socket_id as string;
    const res = await post({ action: 'sendMessage', event: { event_type: 'conversation_start', event_payload: {}, socket_id: socketId } });
    expect(res.status).toBe(200);
    const conv = ((await res.json()) as { conversation_id: string }).conversation_id;
    expect((await c.next('conversation_start_success')).event.event_payload.conversation_id).toBe(conv);
    expect((await post({ action: 'sendMessage', event: { event_type: 'user_message', event_payload: { conversation_id: conv }, socket_id: 'gone=' } })).status).toBe(410);
    expect((await post({ action: 'sendMessage', event: { event_type: 'conversation_start', event_payload: {} } }, 'bad')).status).toBe(401);
    sim.failNextHttp(1, 503);
    expect((await post({ action: 'sendMessage', event: { event_type: 'conversation_start', event_payload: {}, socket_id: socketId } })).status).toBe(503);

    await c.next('bot_message'); // the greeting
    const bot = sim.botMessage(conv, 'from the bot');
    const agent = sim.livechatMessage(conv, 'from an agent');
    const t = await fetch(`${sim.httpUrl}/api/transcript?conversation_id=${encodeURIComponent(conv)}`, { headers: { 'x-api-key': 'test-key' } });
    const body = (await t.json()) as { transcript: Array<Record<string, unknown>> };
    expect(body.transcript.map((e) => [e.from, e.message_id ?? e.event_id])).toEqual([
      ['bot', expect.any(String)], // greeting
      ['bot', (bot.event_payload as { ch_msg_id: string }).ch_msg_id],
      ['agent', agent.event_id],
    ]);
    expect((await fetch(`${sim.httpUrl}/api/transcript?conversation_id=x`, { headers: { 'x-api-key': 'test-key' } })).status).toBe(404);
  });

  it('closes idle sockets and old sockets with 1001 like API Gateway; pings do not count as activity', async () => {
    await sim.stop();
    sim = new CaptivateSimulator({ idleTimeoutMs: 150, maxAgeMs: 400 });
    await sim.start();
    const idle = await connect();
    const timer = setInterval(() => idle.ws.ping(), 30);
    await sleep(250);
    clearInterval(timer);
    expect(idle.closed).toEqual({ code: 1001, reason: 'Going away' });

    const busy = await connect();
    const chatter = setInterval(() => busy.send('metadata_request', { conversation_id: 'x' }), 50);
    await sleep(300);
    expect(busy.closed).toBeUndefined();
    await sleep(200);
    clearInterval(chatter);
    expect(busy.closed).toEqual({ code: 1001, reason: 'Going away' });
  });

  it('emits malformed frames and bursts, drops (1006) and restarts on the same port', async () => {
    const c = await connect();
    await c.next('socket_connected');
    const conv = sim.createConversation(sim.openClients()[0].socketId);
    sim.emitMalformed('not-json');
    sim.emitMalformed('no-event-type');
    sim.burst(conv, 50);
    await sleep(100);
    expect(c.frames[0]).toBe('socket_connected Vp6roemHLPECFOQ=');
    expect(c.frames.filter((f) => typeof f !== 'string' && f.event?.event_type === 'bot_message')).toHaveLength(50);
    expect(sim.dropConnections()).toBe(1);
    await sleep(50);
    expect(c.closed?.code).toBe(1006);
    const port = sim.port;
    await sim.restart();
    expect(sim.port).toBe(port);
    expect(sim.conversations.has(conv)).toBe(true);
    await connect();
  });
});
