import { randomUUID } from 'node:crypto';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';

/**
 * The Kafka command ledger refusing writes under an accepted command (its own broker, taken down and up): nothing
 * reaches the upstream while the `sending` state cannot be recorded, and the command is sent exactly once after.
 */
describe('commands while the Kafka ledger refuses writes (e2e, own broker)', () => {
  const CONTACT = '5511987654321';
  let broker: TestBroker;
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;

  beforeEach(async () => {
    broker = await startTestBroker({ brokers: 1 });
    sim = new ZapThinkerSimulator({ instances: { sales: { token: 'k' } } });
    await sim.start();
    sim.touch('sales');
  });

  afterEach(async () => {
    await bridge?.close().catch(() => undefined);
    await sim.stop();
    await broker.stop();
    bridge = undefined;
  });

  const config = () => ({
    kafka: {
      brokers: broker.bootstrap,
      topics: { events: 'events', commands: 'commands', deadLetter: 'dlq', commandLedger: 'ledger' },
      connectionTimeoutMs: 500,
      producer: { requestTimeoutMs: 1000, retryMaxDelayMs: 300 },
      consumer: { commandGroup: `ledger-outage-${randomUUID()}`, maxWaitTimeMs: 100, sessionTimeoutMs: 6000 },
    },
    commands: { deadlineMs: 60_000, retry: { initialDelayMs: 100, maxDelayMs: 400, multiplier: 2, maxAttempts: 100 } },
    channels: [{ id: 'wa', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'sales', apiKey: 'k' } }],
  });
  const sendTexts = () => sim.requests.filter((r) => r.path === '/message/sendText/sales').map((r) => (r.body as { text: string }).text);
  const post = async (body: Record<string, unknown>) => {
    const res = await fetch(`${bridge!.url}/v1/channels/wa/commands`, {
      method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const metric = async (name: string, labels: Record<string, string> = {}) => metricValue((await bridge!.get('/metrics')).text, name, labels);
  const state = async (id: string) => (await bridge!.get(`/v1/commands/${id}`)).body as { status: string; attempts: number; error?: unknown };

  it('sends nothing while the ledger cannot record `sending`, then sends the command exactly once after recovery', async () => {
    bridge = await startTestBridge(config());
    await waitFor('wa connected', async () => ((await bridge!.get('/v1/channels/wa')).body as { state?: string }).state === 'connected', 20_000);

    // The upstream is away: the command is accepted and its attempts are refused (surely not sent), so it stays queued.
    await sim.stop();
    const held = { commandId: 'held-1', type: 'message.send', conversationId: CONTACT, text: 'held across the ledger outage' };
    expect(await post(held)).toMatchObject({ status: 202, body: { status: 'accepted', duplicate: false } });
    await waitFor('a refused upstream attempt', async () => (await metric('chatbridge_command_attempts_total')) >= 1, 10_000);

    // Kafka goes away, then the upstream comes back: only the missing `sending` record stands between them now.
    await broker.down();
    await sim.start();
    sim.touch('sales');
    await waitFor('three refused sending writes', async () => (await metric('chatbridge_command_ledger_unwritten_total', { status: 'sending' })) >= 3, 30_000);
    expect(sendTexts()).toEqual([]);
    const during = await state('held-1');
    expect(during.status).toBe('accepted');

    // A new command while the ledger is down is refused, not accepted: nothing of it is sent either.
    const refused = { commandId: 'refused-1', type: 'message.send', conversationId: CONTACT, text: 'refused while the ledger is down' };
    expect(await post(refused)).toMatchObject({ status: 503, body: { message: expect.stringContaining('did not take the command, so it was not accepted') } });
    expect(sendTexts()).toEqual([]);

    await broker.up();
    await waitFor('held-1 sent', async () => (await state('held-1')).status === 'sent', 30_000);
    expect(sendTexts()).toEqual(['held across the ledger outage']);
    const after = await state('held-1');
    expect(after).toMatchObject({ status: 'sent', attempts: during.attempts + 1 });
    expect(after.error).toBeUndefined();

    // The refused one, sent again with the same commandId, is accepted now and sent once.
    expect(await post(refused)).toMatchObject({ status: 202, body: { duplicate: false } });
    await waitFor('refused-1 sent', async () => (await state('refused-1')).status === 'sent', 30_000);
    expect(sendTexts()).toEqual(['held across the ledger outage', 'refused while the ledger is down']);
    expect(await metric('chatbridge_commands_total', { status: 'sent' })).toBe(2);
  }, 120_000);
});
