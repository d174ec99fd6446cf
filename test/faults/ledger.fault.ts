import { metricValue } from '../helpers/bridge-harness';
import type { BridgeProcess } from '../helpers/bridge-process';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

/** A started ZapThinker simulator with the `sales` instance the rows' channel uses. */
async function salesSimulator(): Promise<ZapThinkerSimulator> {
  const zap = new ZapThinkerSimulator({ instances: { sales: { token: 'zap-token-0123' } } });
  await zap.start();
  zap.touch('sales');
  return zap;
}

/** The texts the simulator's `sales` instance was asked to send, oldest first. */
const sentTexts = (zap: ZapThinkerSimulator) => zap.requests.filter((r) => r.path === '/message/sendText/sales').map((r) => (r.body as { text: string }).text);
const metricOf = async (bridge: BridgeProcess, name: string, labels: Record<string, string> = {}) => metricValue(await (await fetch(`${bridge.url}/metrics`)).text(), name, labels);

/**
 * The Kafka command ledger refusing writes under the built bridge (its own broker, taken down and up; a ZapThinker
 * channel): an accepted command is not sent while its `sending` state cannot be recorded, a new one is refused with a
 * 503, and after recovery each is sent exactly once.
 */
describe('fault rows: command ledger', () => {
  const RSS_BOUND_MIB = 300;
  const CONTACT = '5511987654321';
  let broker: TestBroker;
  let zap: ZapThinkerSimulator;
  let bridge: BridgeProcess | undefined;

  beforeAll(async () => {
    broker = await startTestBroker({ brokers: 1 });
    zap = await salesSimulator();
  });

  afterAll(async () => {
    await bridge?.kill();
    await zap?.stop();
    await broker?.stop();
  });

  const upstreamTexts = () => sentTexts(zap);
  const metric = (name: string, labels: Record<string, string> = {}) => metricOf(bridge!, name, labels);
  const state = async (id: string) => (await bridge!.request('GET', `/v1/commands/${id}`)).body as { status: string; attempts: number };
  const send = (commandId: string, text: string) => ({ commandId, type: 'message.send', conversationId: CONTACT, text });

  it('ledger writes refused by Kafka for a while: no upstream send meanwhile, each command sent exactly once after recovery', async () => {
    bridge = await startBuiltBridge('faults-ledger', {
      kafka: {
        brokers: broker.bootstrap,
        topics: { events: 'events', commands: 'commands', deadLetter: 'dlq', commandLedger: 'ledger' },
        connectionTimeoutMs: 500,
        producer: { requestTimeoutMs: 1000, retryMaxDelayMs: 300 },
        consumer: { maxWaitTimeMs: 100, sessionTimeoutMs: 6000 },
      },
      commands: { deadlineMs: 120_000, retry: { initialDelayMs: 200, maxDelayMs: 1000, multiplier: 2, maxAttempts: 100 } },
      channels: [{ id: 'wa', provider: 'zapthinker', zapthinker: { url: zap.url.replace(/^http/, 'ws'), instance: 'sales', apiKey: 'zap-token-0123' } }],
    });
    await until('wa connected', async () => ((await bridge!.request('GET', '/v1/channels/wa')).body as { state?: string }).state === 'connected', 30_000);

    // Accepted while the upstream is away (its attempts are refused before anything leaves), so it is still to send.
    await zap.stop();
    expect((await bridge.request('POST', '/v1/channels/wa/commands', send('held', 'held through the ledger outage'))).status).toBe(202);
    await until('a refused upstream attempt', async () => (await metric('chatbridge_command_attempts_total')) >= 1);

    // The ledger cannot be written for a while; the upstream is back, so only the missing `sending` record holds it.
    const downAt = performance.now();
    await broker.down();
    await zap.start();
    zap.touch('sales');
    const refused = await bridge.request('POST', '/v1/channels/wa/commands', send('refused', 'refused while the ledger is down'));
    expect(refused.status).toBe(503);
    await until('refused sending writes', async () => (await metric('chatbridge_command_ledger_unwritten_total', { status: 'sending' })) >= 3, 30_000);
    await new Promise((r) => setTimeout(r, 5000 - Math.min(5000, performance.now() - downAt)));
    const sentWhileDown = upstreamTexts().length;
    expect(sentWhileDown).toBe(0);
    const duringMs = await expectHealthy(bridge);
    const heldDuring = (await state('held')).status;
    expect(heldDuring).toBe('accepted');
    const refusedWrites = await metric('chatbridge_command_ledger_unwritten_total', { status: 'sending' });
    const outageMs = Math.round(performance.now() - downAt);

    await broker.up();
    const upAt = performance.now();
    await until('held sent', async () => (await state('held')).status === 'sent', 60_000);
    const recoveredMs = Math.round(performance.now() - upAt);
    expect((await bridge.request('POST', '/v1/channels/wa/commands', send('refused', 'refused while the ledger is down'))).status).toBe(202);
    await until('refused sent', async () => (await state('refused')).status === 'sent', 30_000);
    const texts = upstreamTexts();
    expect(texts).toEqual(['held through the ledger outage', 'refused while the ledger is down']);
    const held = await state('held');
    const afterMs = await expectHealthy(bridge);
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('ledger/kafka-refuses-writes', {
      outageMs, refusedSendingWrites: refusedWrites, sentWhileDown, heldStatusWhileDown: heldDuring, newCommandWhileDown: refused.status,
      sentUpstreamHeld: texts.filter((t) => t.startsWith('held')).length, sentUpstreamRefused: texts.filter((t) => t.startsWith('refused')).length,
      finalStatus: held.status, attempts: held.attempts, recoveredMs, healthzDuringMs: Math.round(duringMs), healthzMs: Math.round(afterMs),
      rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB,
    });
  }, 180_000);
});

/**
 * The in-memory ledger's bound (`commands.ledgerMaxEntries`, no Kafka), black-box: a built bridge whose ledger keeps
 * 100 finished commands takes 250, so it forgets the oldest from the 101st on. `GET /v1/commands/:id` knows the newest
 * 100 and answers 404 for the rest; a repeat of a remembered command is answered from the ledger and not sent again; a
 * repeat of a forgotten one is a new command and is sent again (docs/commands.md: memory holds the newest
 * `ledgerMaxEntries` finished). A command still unfinished is not counted in that bound: held at the upstream while 150
 * newer ones finish, it is still known, its repeat is not sent again, and it is answered with its end. The process
 * stays up and the next command is sent.
 */
describe('fault rows: in-memory command ledger at its bound', () => {
  const MAX_ENTRIES = 100;
  const COMMANDS = 250;
  const RSS_BOUND_MIB = 300;
  let zap: ZapThinkerSimulator;
  let bridge: BridgeProcess | undefined;

  beforeAll(async () => {
    zap = await salesSimulator();
  });

  afterEach(async () => {
    await bridge?.kill();
  });

  afterAll(async () => {
    await zap?.stop();
  });

  type Command = ReturnType<typeof command>;
  const upstreamTexts = () => sentTexts(zap);
  const metric = (name: string, labels: Record<string, string> = {}) => metricOf(bridge!, name, labels);
  /** Command `i`: its own id and conversation (so they are sent side by side), the same body every time. */
  const command = (i: number) => ({ commandId: `ledger-bound-${i}`, type: 'message.send', conversationId: `55119${String(10000000 + i)}`, text: `bound ${i}` });
  const submit = async (body: Command) => (await bridge!.request('POST', '/v1/channels/wa/commands', body)) as { status: number; body: { status: string; duplicate: boolean } };
  /** `GET /v1/commands/:id`: the HTTP status as `code`, and the command's view when known. */
  const view = async (commandId: string) => {
    const res = await bridge!.request('GET', `/v1/commands/${commandId}`);
    return { code: res.status, ...(res.body as { status?: string; attempts?: number; error?: { code: string; mayHaveActed: boolean } }) };
  };

  /** Starts the row's bridge (a ledger of MAX_ENTRIES, no Kafka, `wa` on the simulator's `sales`) and waits for `wa`. */
  const start = async (name: string, commands: Record<string, unknown> = {}, zapthinker: Record<string, unknown> = {}) => {
    bridge = await startBuiltBridge(name, {
      api: { rateLimit: { perSecond: 10_000, burst: 10_000 } },
      commands: { ledgerMaxEntries: MAX_ENTRIES, ...commands },
      channels: [{ id: 'wa', provider: 'zapthinker', zapthinker: { url: zap.url.replace(/^http/, 'ws'), instance: 'sales', apiKey: 'zap-token-0123', ...zapthinker } }],
    });
    await until('wa connected', async () => ((await bridge!.request('GET', '/v1/channels/wa')).body as { state?: string }).state === 'connected', 30_000);
  };

  /**
   * Commands 0..count-1 in batches of 25 side by side, each sent before the next: the ledger keeps the newest finished,
   * and the bound falls between two batches, so which are kept does not depend on the order within one. Answers the
   * time taken (ms).
   */
  const sendBatches = async (count: number) => {
    const t0 = performance.now();
    for (let i = 0; i < count; i += 25) {
      const batch = await Promise.all(Array.from({ length: 25 }, (_, j) => submit(command(i + j))));
      expect(batch.filter((r) => r.status !== 202)).toEqual([]);
      await until(`${i + 25} commands sent`, async () => (await metric('chatbridge_commands_finished_total', { outcome: 'sent' })) === i + 25);
    }
    return Math.round(performance.now() - t0);
  };

  /** What `GET /v1/commands/:id` answers for commands 0..count-1 once `count` were sent: 404 for the oldest beyond the bound, then 200. */
  const expectNewestKnown = async (count: number) => {
    const statuses = [];
    for (let i = 0; i < count; i++) statuses.push((await view(command(i).commandId)).code);
    expect(statuses).toEqual([...Array<number>(count - MAX_ENTRIES).fill(404), ...Array<number>(MAX_ENTRIES).fill(200)]);
    return statuses.filter((st) => st === 200).length;
  };

  it(`a ledger of ${MAX_ENTRIES} after ${COMMANDS} commands: the newest known, the oldest forgotten, a forgotten repeat sent again; the next one is sent`, async () => {
    await start('faults-ledger-memory');
    const floodMs = await sendBatches(COMMANDS);
    const known = await expectNewestKnown(COMMANDS);
    const healthzMs = await expectHealthy(bridge!);

    // Remembered: answered from the ledger, not sent again. Forgotten: a new command, sent a second time.
    const remembered = await submit(command(COMMANDS - 1));
    expect([remembered.status, remembered.body.duplicate, remembered.body.status]).toEqual([202, true, 'sent']);
    const forgotten = await submit(command(0));
    expect([forgotten.status, forgotten.body.duplicate]).toEqual([202, false]);
    const t1 = performance.now();
    const next = { ...command(COMMANDS), text: 'next after the bound' };
    expect((await submit(next)).status).toBe(202);
    await until('the next one at the upstream', () => upstreamTexts().includes(next.text));
    const nextMs = Math.round(performance.now() - t1);
    await until('the forgotten repeat sent', async () => (await view(command(0).commandId)).status === 'sent');
    const texts = upstreamTexts();
    expect(texts.filter((t) => t === command(0).text)).toHaveLength(2);
    expect(texts.filter((t) => t === command(COMMANDS - 1).text)).toHaveLength(1);
    expect(texts).toHaveLength(COMMANDS + 2);
    const duplicates = await metric('chatbridge_commands_duplicate_total', { door: 'http' });
    expect(duplicates).toBe(1);
    const rss = rssMiB(bridge!.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('ledger/memory-at-bound', {
      commands: COMMANDS, bound: MAX_ENTRIES, known, forgotten: COMMANDS - known, floodMs, repeatRemembered: 'duplicate', repeatForgottenSends: 2, duplicates,
      healthzMs: Math.round(healthzMs), nextToUpstreamMs: nextMs, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB,
    });
  });

  it(`an unfinished command past ${MAX_ENTRIES} newer finished ones: known while it runs, its repeat not sent again, answered with its end; the next one is sent`, async () => {
    const NEWER = 150;
    /** The upstream call's bound (ms): the held command stays `sending` this long, several times what the NEWER commands take (0.5-0.9 s here), after which it is read at once. */
    const CALL_TIMEOUT_MS = 5000;
    const ECHO_TIMEOUT_MS = 1000;
    await start('faults-ledger-memory-open', { echoTimeoutMs: ECHO_TIMEOUT_MS }, { commandTimeoutMs: CALL_TIMEOUT_MS });
    // Its own conversation, so the newer ones are not queued behind it (one conversation goes one command at a time).
    const held = { commandId: 'ledger-held', type: 'message.send', conversationId: '5511987654321', text: 'held past the bound' };
    const heldSends = () => upstreamTexts().filter((t) => t === held.text).length;
    zap.stallNextSends(1);
    const t0 = performance.now();
    expect((await submit(held)).status).toBe(202);
    await until('the held send at the upstream', () => heldSends() === 1);

    // NEWER finished after it: the finished tier forgets the oldest NEWER - MAX_ENTRIES, the held one stays.
    const floodMs = await sendBatches(NEWER);
    const running = await view(held.commandId);
    expect(running).toMatchObject({ code: 200, status: 'sending', attempts: 1 });
    const repeatRunning = await submit(held);
    expect([repeatRunning.status, repeatRunning.body.duplicate, repeatRunning.body.status]).toEqual([202, true, 'sending']);
    const heldForMs = Math.round(performance.now() - t0);
    const known = await expectNewestKnown(NEWER);
    const healthzMs = await expectHealthy(bridge!);

    // The call ends at commandTimeoutMs; no echo follows a stalled send, so the end is failed, the upstream may have acted.
    const ended = await until('the held command ended', async () => {
      const v = await view(held.commandId);
      return v.status === 'sent' || v.status === 'failed' ? v : undefined;
    }, CALL_TIMEOUT_MS + ECHO_TIMEOUT_MS + 20_000);
    const endedMs = Math.round(performance.now() - t0);
    expect(ended).toMatchObject({ code: 200, status: 'failed', attempts: 1, error: { code: 'ambiguous_no_echo', mayHaveActed: true } });
    const repeatEnded = await submit(held);
    expect([repeatEnded.status, repeatEnded.body.duplicate, repeatEnded.body.status]).toEqual([202, true, 'failed']);

    const t1 = performance.now();
    const next = { ...held, commandId: 'ledger-held-next', text: 'next after the held one' };
    expect((await submit(next)).status).toBe(202);
    await until('the next one at the upstream', () => upstreamTexts().includes(next.text));
    const nextMs = Math.round(performance.now() - t1);
    await until('the next one sent', async () => (await view(next.commandId)).status === 'sent');
    const sends = heldSends();
    expect(sends).toBe(1);
    const duplicates = await metric('chatbridge_commands_duplicate_total', { door: 'http' });
    expect(duplicates).toBe(2);
    const rss = rssMiB(bridge!.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('ledger/memory-open-past-bound', {
      newerFinished: NEWER, bound: MAX_ENTRIES, known, forgotten: NEWER - known, floodMs, statusWhileRunning: running.status ?? '', repeatWhileRunning: 'duplicate',
      heldForMs, finalStatus: ended.status ?? '', code: ended.error?.code ?? '', endedMs, callTimeoutMs: CALL_TIMEOUT_MS, repeatAfterEnd: repeatEnded.body.status,
      heldSends: sends, duplicates, healthzMs: Math.round(healthzMs), nextToUpstreamMs: nextMs, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB,
    });
  });
});
