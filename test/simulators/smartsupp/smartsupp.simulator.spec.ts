import io from 'socket.io-client-v2';
import { createVisitorClient, type ConnectedData, type Events, type Message, type VisitorClient } from 'smartsupp-websocket';
import { SMARTSUPP_UNKNOWN_EVENT, SmartsuppSimulator, type SimConnectedData, type SimError, type SimMessage } from './smartsupp.simulator';

const KEY = 'sim-account-key';

/** A raw socket.io 2.x client, as the SDK configures it. */
function rawClient(url: string): io.Socket {
  return io(url, { path: '/socket', transports: ['websocket'], forceNew: true, reconnection: false, autoConnect: false });
}

/** Emits with a Node-style ack and resolves `[err, result]`. */
function call(socket: io.Socket, event: string, data: unknown): Promise<[unknown, unknown]> {
  return new Promise((resolve) => socket.emit(event, data, (err, result) => resolve([err, result])));
}

/** The next emission of an SDK event. */
function next<T>(client: VisitorClient, event: string, timeoutMs = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), timeoutMs);
    client.once(event, (a: T) => {
      clearTimeout(timer);
      resolve(a);
    });
  });
}

function opened(socket: io.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.on('connect', () => resolve());
    socket.on('connect_error', (e) => reject(e));
    socket.open();
  });
}

describe('SmartsuppSimulator (socket.io 2.x visitor server)', () => {
  let sim: SmartsuppSimulator;
  const sockets: io.Socket[] = [];
  const sdkClients: VisitorClient[] = [];

  const sdk = (id: string | null = null, key = KEY): VisitorClient => {
    const client = createVisitorClient({ data: { id, key }, connection: { url: sim.url, options: { reconnection: false } } });
    sdkClients.push(client);
    return client;
  };
  const raw = async (): Promise<io.Socket> => {
    const s = rawClient(sim.url);
    sockets.push(s);
    await opened(s);
    return s;
  };

  beforeEach(async () => {
    sim = new SmartsuppSimulator({ echoDelayMs: 10 });
    await sim.start();
  });

  afterEach(async () => {
    for (const c of sdkClients.splice(0)) await c.disconnect().catch(() => undefined);
    for (const s of sockets.splice(0)) s.close();
    await sim.stop();
  });

  it('serves the official SDK: connect → initialized, chatMessage → Message ack, then the echo', async () => {
    const client = sdk();
    const initialized = next<ConnectedData>(client, 'initialized');
    const data = await client.connect();
    expect(await initialized).toBe(data);
    expect(data.serverVersion).toBe(3);
    expect(data.account.status).toBe('online');
    expect(data.visitor.id).toMatch(/^v\w+$/);
    expect(client.getVisitorId()).toBe(data.visitor.id);

    const echo = next<Events.ChatMessageReceived>(client, 'chat.message_received');
    const message: Message = await client.chatMessage({ content: { type: 'text', text: 'Hello' } });
    expect(message).toMatchObject({ type: 'message', subType: 'contact', visitorId: data.visitor.id, content: { type: 'text', text: 'Hello' } });
    const received = await echo;
    expect(received.message.id).toBe(message.id);
    expect(received.chatId).toBe(message.chatId);

    // Exactly the SDK's wire format, as recorded by the simulator.
    const connect = sim.emitsOf('visitor.connect')[0];
    expect(connect.args[0]).toEqual({ pageUrl: null, pageTitle: null, referer: null, domain: null, bundleVersion: 'Websocket SDK 1.2.2', id: null, key: KEY });
    expect(sim.emitsOf('chat.message')[0]).toMatchObject({ args: [{ content: { type: 'text', text: 'Hello' } }], ack: true, visitorId: data.visitor.id });

    const reply = next<Events.ChatMessageReceived>(client, 'chat.message_received');
    const sent = sim.agentSays(data.visitor.id, 'Hi, how can I help?');
    expect((await reply).message).toEqual(sent);
  });

  it('rejects a bad account key in the visitor.connect ack (auth_error, 403), as the SDK surfaces it', async () => {
    const client = sdk(null, 'wrong-key');
    await expect(client.connect()).rejects.toMatchObject({ name: 'SocketError', message: 'Invalid account key', type: 'auth_error', code: 403 });
    expect(sim.connects[0]).toMatchObject({ key: 'wrong-key', accepted: false });
    expect(sim.liveSockets()).toBe(0);
  });

  it('refuses commands before visitor.connect ("Connection not initialized")', async () => {
    const s = await raw();
    const [err] = await call(s, 'chat.message', { content: { type: 'text', text: 'early' } });
    expect(err).toEqual({ message: 'Connection not initialized', type: 'auth_error', event: 'chat.message', code: 403 });
  });

  it('keeps visitors across sockets and restarts: the next snapshot carries what was missed', async () => {
    const s = await raw();
    const [, first] = (await call(s, 'visitor.connect', { id: null, key: KEY })) as [null, SimConnectedData];
    const id = first.visitor.id;
    expect(first.chat).toBeNull();
    expect(sim.dropVisitor(id)).toBe(1);
    const missed = sim.agentSays(id, 'while you were away');
    await sim.restart();

    const again = await raw();
    const [, data] = (await call(again, 'visitor.connect', { id, key: KEY })) as [null, SimConnectedData];
    expect(data.visitor.id).toBe(id);
    expect(data.visitor.chatId).toBe(missed.chatId);
    expect(data.chat?.messages).toEqual([missed]);
  });

  it('withheld ack: the message still takes effect and is echoed; delayed ack arrives late', async () => {
    const s = await raw();
    await call(s, 'visitor.connect', { id: null, key: KEY });
    sim.withholdAcks('chat.message', 1);
    const echo = new Promise<{ message: SimMessage }>((resolve) => rawOn(s, 'chat.message_received', resolve));
    let acked = false;
    s.emit('chat.message', { content: { type: 'text', text: 'lost ack' } }, () => (acked = true));
    expect((await echo).message.content.text).toBe('lost ack');
    expect(acked).toBe(false);

    sim.delayAcks('chat.message', 150);
    const t0 = Date.now();
    const [, msg] = await call(s, 'chat.message', { content: { type: 'text', text: 'slow' } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect((msg as SimMessage).content.text).toBe('slow');
  });

  it('pushes agent, account and error events, and malformed frames as they are', async () => {
    const s = await raw();
    const [, data] = (await call(s, 'visitor.connect', { id: null, key: KEY })) as [null, SimConnectedData];
    const id = data.visitor.id;
    const frames: Array<[string, unknown]> = [];
    s.onevent = (packet) => frames.push([String(packet.data?.[0]), packet.data?.[1]]);
    sim.agentTyping(id, true, 'Hel');
    sim.agentJoins(id);
    sim.setAccountStatus('offline');
    sim.serverError(id, { message: 'Rate limit', code: 429 } satisfies SimError);
    sim.emitMalformed(id, 'string-payload');
    sim.emitMalformed(id, 'unknown-event');
    s.emit('chat.read', null);
    await waitUntil(() => frames.length >= 7);
    expect(frames.map((f) => f[0])).toEqual(['chat.agent_typing', 'chat.agent_joined', 'account.updated', 'server.error', 'chat.message_received', SMARTSUPP_UNKNOWN_EVENT, 'chat.contact_read']);
    expect(frames[0][1]).toEqual({ chatId: expect.any(String), typing: { is: true, text: 'Hel' } });
    expect(frames[1][1]).toMatchObject({ agent: { id: 'agent-1' }, message: { type: 'event', subType: 'system', content: { type: 'agent_join', data: { agentId: 'agent-1' } } } });
    expect(frames[2][1]).toEqual({ status: 'offline' });
    expect(frames[4][1]).toBe('this is not a payload');
    expect(sim.emitsOf('chat.read')[0]).toMatchObject({ args: [null], ack: false, visitorId: id });
  });

  it('upload: init → HTTP POST to the url → finish with the token → Message', async () => {
    const s = await raw();
    await call(s, 'visitor.connect', { id: null, key: KEY });
    const [, info] = (await call(s, 'chat.upload_init', null)) as [null, { url: string; token: string }];
    const form = new FormData();
    form.append('file', new Blob(['%PDF-1.4']), 'upload.pdf');
    expect((await fetch(info.url, { method: 'POST', body: form })).status).toBe(200);
    const [, msg] = (await call(s, 'chat.upload_finish', { uploadToken: info.token })) as [null, SimMessage];
    expect(msg.content.type).toBe('upload');
    expect(msg.attachments[0]).toMatchObject({ fileName: 'upload.pdf', fileType: 'application/pdf' });
    const [err] = await call(s, 'chat.upload_finish', { uploadToken: info.token });
    expect(err).toMatchObject({ code: 404 });
  });
});

function rawOn<T>(socket: io.Socket, event: string, fn: (a: T) => void): io.Socket {
  const dispatch = socket.onevent.bind(socket);
  socket.onevent = (packet) => {
    if (packet.data?.[0] === event) fn(packet.data[1] as T);
    else dispatch(packet);
  };
  return socket;
}

async function waitUntil(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
