import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { JwtWebSocketSimulator } from '../simulators/jwt-websocket/jwt-websocket.simulator';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { freePort, type BridgeProcess } from '../helpers/bridge-process';
import { metricValue } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';
import { expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

/**
 * An upstream whose connection never opens: a TCP server that accepts and never writes a byte (a black hole: a
 * firewall that swallows the handshake, a process stuck before its HTTP layer). One channel per connector points at
 * its own black hole with a short `connectTimeoutMs`, next to a healthy channel on a real simulator. Every attempt ends
 * at the bound and its socket is closed by the bridge (the black hole's open sockets stay bounded), the channel says
 * `reconnecting` / `connect_timeout` and counts each retry, the healthy channel's next message arrives meanwhile; then
 * the black hole is replaced by the real simulator on the same port and the channel's next message arrives.
 */
const CONNECT_TIMEOUT_MS = 500;
/** How long the black holes swallow attempts before they are replaced. */
const HOLE_MS = 5000;
/** A socket's life at the black hole: the connect bound plus the moment to close it on a busy machine. */
const SOCKET_LIFE_WITHIN_MS = CONNECT_TIMEOUT_MS + 500;
/** Sockets open at once at one black hole: the attempt in flight, and one the kernel has not reported closed yet. */
const OPEN_SOCKETS_BOUND = 2;
/** Attempts expected within HOLE_MS at the bound plus the harness's ≤ 300 ms retry delay, with margin. */
const MIN_ATTEMPTS = 4;
/** From the simulator listening to the channel connected: the attempt in flight, one retry delay and a handshake. */
const CONNECTS_WITHIN_MS = CONNECT_TIMEOUT_MS + 300 + 2000;
const RSS_BOUND_MIB = 300;
const ROOM = '166666';

/** A TCP server that accepts every connection and never writes a byte; it keeps the count and the life of each socket. */
class BlackHole {
  accepted = 0;
  maxOpen = 0;
  /** How long each socket was open before the peer closed it (ms). */
  readonly lifetimesMs: number[] = [];
  private readonly open = new Set<Socket>();
  private readonly server: Server = createServer((socket) => this.accept(socket));

  get openNow(): number {
    return this.open.size;
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
  }

  /** Stops accepting at once; resolves when the peer closed every socket still open (the server closes none). */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Frees the sockets left (teardown after a failure). */
  destroy(): void {
    for (const s of this.open) s.destroy();
    this.server.close();
  }

  private accept(socket: Socket): void {
    const t0 = performance.now();
    this.accepted++;
    this.open.add(socket);
    this.maxOpen = Math.max(this.maxOpen, this.open.size);
    socket.on('error', () => undefined);
    // Reads and drops what the bridge sends (its upgrade request), so that its close is seen as soon as it comes.
    socket.resume();
    socket.on('close', () => {
      this.open.delete(socket);
      this.lifetimesMs.push(performance.now() - t0);
    });
  }
}

type Snapshot = { id: string; state: string; reconnects: number; lastError?: string };

/** One connector pointed at a black hole, and how to bring up its real simulator on the same port and talk through it. */
interface Hole {
  provider: string;
  channel: string;
  hole: BlackHole;
  port: number;
  config: (port: number) => Record<string, unknown>;
  /** Starts the real simulator on `port`; resolves with a way to send one message once the channel listens. */
  replace: (port: number) => Promise<{ ready: () => boolean; send: (text: string) => void; stop: () => Promise<void> }>;
}

describe('fault suite: an upstream whose connection never opens', () => {
  const jwtSecret = 'faults-secret';
  const healthy = new JwtWebSocketSimulator({ secret: jwtSecret });
  const zapKey = 'sales-token-0123456789';
  /** Never started: every Watchers simulator signs bearers with the same secret, so this one issues the channel's. */
  const watchersKeys = new WatchersSimulator({ bots: ['bot-1'] });
  const topic = uniqueTopic('faults-connect');
  const reader = new KafkaReader(sharedBrokers(), [topic]);
  const stops: Array<() => Promise<void>> = [];
  let holes: Hole[] = [];
  let bridge: BridgeProcess | undefined;

  const holeFor = async (provider: string, config: Hole['config'], replace: Hole['replace']): Promise<Hole> => {
    const port = await freePort();
    const hole = new BlackHole();
    await hole.listen(port);
    return { provider, channel: `${provider}-hole`, hole, port, config, replace };
  };

  beforeAll(async () => {
    holes = [
      await holeFor('jwt-websocket', (port) => ({ url: `ws://127.0.0.1:${port}/api/ws`, token: healthy.token({ sub: 'bridge' }), subscribe: ['conversation:c1'] }), async (port) => {
        const sim = new JwtWebSocketSimulator({ secret: jwtSecret, port });
        await sim.start();
        return { ready: () => sim.subscriberCount('conversation:c1') === 1, send: (text) => sim.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: text }), stop: () => sim.stop() };
      }),
      await holeFor('watchers', (port) => ({ url: `http://127.0.0.1:${port}`, bearer: watchersKeys.bearerFor('bot-1'), apiKey: watchersKeys.apiKey, userId: 'bot-1', rooms: [ROOM] }), async (port) => {
        const sim = new WatchersSimulator({ bots: ['bot-1'], port });
        await sim.start();
        return { ready: () => sim.listeners(ROOM) === 1, send: (text) => sim.userSays(ROOM, 'user-1', text), stop: () => sim.stop() };
      }),
      await holeFor('zapthinker', (port) => ({ url: `http://127.0.0.1:${port}`, instance: 'sales', apiKey: zapKey }), async (port) => {
        const sim = new ZapThinkerSimulator({ instances: { sales: { token: zapKey } }, port });
        await sim.start();
        sim.touch('sales');
        return { ready: () => sim.connectedClients('sales') === 1, send: (text) => sim.sendMessage('sales', { remoteJid: '5511911112222', text }), stop: () => sim.stop() };
      }),
    ];
    await healthy.start();
    await reader.start();
    bridge = await startBuiltBridge('connect', {
      kafka: { brokers: sharedBrokers(), topics: { events: topic } },
      channels: [
        { id: 'healthy', provider: 'jwt-websocket', 'jwt-websocket': { url: healthy.url, token: healthy.token({ sub: 'bridge' }), subscribe: ['conversation:c1'] } },
        ...holes.map((h) => ({ id: h.channel, provider: h.provider, [h.provider]: { ...h.config(h.port), connectTimeoutMs: CONNECT_TIMEOUT_MS } })),
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await bridge?.signal('SIGTERM');
    await reader.stop();
    for (const h of holes) h.hole.destroy();
    await Promise.all([healthy.stop(), ...stops.map((s) => s())]);
  });

  const channels = async () => ((await bridge!.request('GET', '/v1/channels')).body as { channels: Snapshot[] }).channels;
  const textOf = (r: ReadRecord) => (JSON.parse(r.value ?? '{}') as { message?: { text?: string } }).message?.text;
  const arrived = (channel: string, text: string) => () => reader.records.some((r) => r.headers.ce_channelid === channel && textOf(r) === text);
  const reconnectsBy = (text: string, channel: string) => ({
    connectTimeout: metricValue(text, 'chatbridge_reconnects_total', { channel, reason: 'connect_timeout' }),
    all: metricValue(text, 'chatbridge_reconnects_total', { channel }),
  });
  const statusReasons = (channel: string) =>
    reader.ofType('chatbridge.channel.status').filter((r) => r.headers.ce_channelid === channel)
      .map((r) => (JSON.parse(r.value ?? '{}') as { status: { state: string; reason?: string } }).status)
      .map((s) => `${s.state}${s.reason ? `:${s.reason}` : ''}`);

  it('black hole for 5 s, 500 ms connect bound: each attempt ends at the bound and its socket is closed; then the real upstream on the port connects', async () => {
    const b = bridge!;
    await until('the healthy channel connected', async () => (await channels()).find((c) => c.id === 'healthy')?.state === 'connected', 30_000);
    const t0 = performance.now();
    // While the black holes swallow attempts: the states seen, and the healthy channel's next message.
    const seen = new Map<string, Set<string>>(holes.map((h) => [h.channel, new Set<string>()]));
    const watch = setInterval(() => void channels().then((list) => list.forEach((c) => seen.get(c.id)?.add(c.state)), () => undefined), 100);
    await new Promise((r) => setTimeout(r, HOLE_MS / 2));
    const healthyText = `healthy ${randomUUID()}`;
    const sentAt = performance.now();
    healthy.chatMessage({ conversation_id: 'c1', sender_id: 'u1', content: healthyText });
    await reader.waitFor('the healthy channel\'s message', arrived('healthy', healthyText), 10_000);
    const healthyMs = Math.round(performance.now() - sentAt);
    await new Promise((r) => setTimeout(r, Math.max(0, HOLE_MS - (performance.now() - t0))));
    clearInterval(watch);
    const healthz = await expectHealthy(b);
    const during = new Map((await channels()).map((c) => [c.id, c]));
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    const statusesDuring = new Map(holes.map((h) => [h.channel, statusReasons(h.channel)]));

    // Replace every black hole by its real simulator on the same port; each channel's next message arrives.
    const back = await Promise.all(holes.map(async (h) => {
      const closed = h.hole.close();
      const sim = await h.replace(h.port);
      stops.push(sim.stop);
      const listening = performance.now();
      await until(`${h.channel}: connected to the real upstream`, async () => (await channels()).find((c) => c.id === h.channel)?.state === 'connected' && sim.ready(), 10_000);
      const connectedMs = Math.round(performance.now() - listening);
      await closed; // the bridge closed the attempts still open at the black hole
      const text = `after ${h.provider} black hole ${randomUUID()}`;
      sim.send(text);
      await reader.waitFor(`${h.channel}: the message after the black hole`, arrived(h.channel, text), 10_000);
      return { h, connectedMs, messageMs: Math.round(performance.now() - listening) };
    }));
    const healthzAfter = await expectHealthy(b);
    const rss = rssMiB(b.pid);

    for (const { h, connectedMs, messageMs } of back) {
      const snap = during.get(h.channel)!;
      const counted = reconnectsBy(metrics, h.channel);
      const maxLifeMs = Math.round(Math.max(...h.hole.lifetimesMs));
      report(`connect-black-hole/${h.provider}`, {
        up: !b.exit, connectTimeoutMs: CONNECT_TIMEOUT_MS, holeMs: HOLE_MS, accepted: h.hole.accepted, maxOpenSockets: h.hole.maxOpen, maxSocketLifeMs: maxLifeMs,
        stateDuring: snap.state, statesSeen: [...seen.get(h.channel)!].join(','), reconnects: snap.reconnects, connectTimeoutReconnects: counted.connectTimeout,
        statuses: statusesDuring.get(h.channel)!.join(','), healthyMessageMs: healthyMs, connectedAfterReplaceMs: connectedMs, messageAfterReplaceMs: messageMs,
        lost: 0, healthzMs: Math.round(Math.max(healthz, healthzAfter)), rssMiB: rss,
      });
      // Every attempt ended at the bound, as a connect_timeout, and its socket was closed, not left to pile up.
      expect(snap.state).toBe('reconnecting');
      expect(seen.get(h.channel)!.size).toBeGreaterThan(0);
      expect([...seen.get(h.channel)!].every((s) => s === 'connecting' || s === 'reconnecting')).toBe(true);
      expect(snap.reconnects).toBeGreaterThanOrEqual(MIN_ATTEMPTS);
      expect(counted.connectTimeout).toBe(counted.all);
      expect(counted.all).toBeGreaterThanOrEqual(snap.reconnects);
      // The status stream reports the state once; the retries after it are counted, not published again.
      expect(statusesDuring.get(h.channel)).toEqual(['connecting', 'reconnecting:connect_timeout']);
      expect(h.hole.accepted).toBeGreaterThanOrEqual(snap.reconnects);
      expect(h.hole.maxOpen).toBeLessThanOrEqual(OPEN_SOCKETS_BOUND);
      expect(h.hole.openNow).toBe(0);
      expect(h.hole.lifetimesMs.length).toBe(h.hole.accepted);
      expect(maxLifeMs).toBeLessThanOrEqual(SOCKET_LIFE_WITHIN_MS);
      expect(connectedMs).toBeLessThanOrEqual(CONNECTS_WITHIN_MS);
    }
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
  });
});
