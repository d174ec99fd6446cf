import { createServer, type Server } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { CommandForwarder } from '../../src/cluster/command-forwarder';
import type { ChannelOwnership } from '../../src/cluster/ownership';
import { CommandLedger } from '../../src/commands/command-ledger';
import { CommandService } from '../../src/commands/command.service';
import { CommandRequestError } from '../../src/commands/command.types';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';

/** This replica holds nothing (another replica holds every channel): each command is forwarded. */
const HOLDS_NOTHING: ChannelOwnership = { clustered: true, owns: () => false };

/**
 * The forward of a command accepted at a replica that does not hold its channel, when Kafka does not take it: the
 * door answers 503 `forward_failed`, the command stays `accepted` in the ledger (nothing was sent, nothing is lost),
 * and the same commandId sent again is a duplicate that forwards it again rather than a second command.
 * Kafka here is a listener that accepts connections and never answers, so every forward times out.
 */
describe('forwarding a command to the holder when Kafka does not take it', () => {
  let sim: WatchersSimulator;
  let bridge: TestBridge;
  let blackhole: Server;
  /** Connections the forwarder opened to the silent "broker": each forward attempt opens one. */
  let connections = 0;
  let forwarder: CommandForwarder;
  let service: CommandService;

  beforeAll(async () => {
    sim = new WatchersSimulator({ bots: ['bot-1'] });
    await sim.start();
    bridge = await startTestBridge({
      channels: [{ id: 'w1', provider: 'watchers', watchers: { url: sim.url, bearer: sim.bearerFor('bot-1'), apiKey: sim.apiKey, userId: 'bot-1', rooms: ['room-1'] } }],
    });
    blackhole = createServer((socket) => {
      connections++;
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const { port } = blackhole.address() as { port: number };
    const kafka = new Kafka({ brokers: [`127.0.0.1:${port}`], clientId: 'forward-test', logLevel: logLevel.NOTHING, connectionTimeout: 300, requestTimeout: 300, retry: { retries: 0 } });
    forwarder = new CommandForwarder(kafka, 'fw.commands', 800);
    const { config, router, pipeline, metrics } = bridge.bridge;
    const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 60_000 }, pino({ level: 'silent' }));
    service = new CommandService(config, router, pipeline, ledger, metrics, pino({ level: 'silent' }), HOLDS_NOTHING, forwarder);
    await service.start();
    service.channelsStarted();
  });

  afterAll(async () => {
    await service?.stop(1000);
    await forwarder?.stop();
    blackhole?.close();
    blackhole?.unref();
    await bridge?.close();
    await sim?.stop();
  });

  it('answers 503 forward_failed, keeps the command accepted and unsent, and forwards it again on a repeat', async () => {
    const cmd = { commandId: 'fw-1', type: 'message.send', conversationId: 'room-1', text: 'through a replica that does not hold w1' };
    const started = Date.now();
    const err = await service.submit(cmd, { door: 'http', channelId: 'w1' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CommandRequestError);
    expect(err).toMatchObject({ code: 'forward_failed', status: 503, message: expect.stringContaining('send it again with the same commandId') });
    expect(Date.now() - started).toBeLessThan(5000); // bounded by the forwarder's timeout, not hung
    expect(service.get('fw-1')).toMatchObject({ status: 'accepted', attempts: 0 });
    expect(sim.emitsOf('external/send')).toHaveLength(0);

    // The same id again: a duplicate of the accepted command (not a new one); its forward is tried again in the
    // background and, failing again, leaves it accepted for the holder's sweep.
    const before = connections;
    const again = await service.submit(cmd, { door: 'http', channelId: 'w1' });
    await waitFor('the forward tried again', () => connections > before || undefined, 5000);
    expect(again).toEqual({ commandId: 'fw-1', channelId: 'w1', status: 'accepted', duplicate: true });
    expect(service.get('fw-1')).toMatchObject({ status: 'accepted' });
    expect(sim.emitsOf('external/send')).toHaveLength(0);
  }, 30_000);
});
