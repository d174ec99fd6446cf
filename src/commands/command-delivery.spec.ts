import pino from 'pino';
import type { AppConfig } from '../config/config.loader';
import { CommandsConfig } from '../config/config.schema';
import type { UpstreamCommand } from '../connectors/connector.interface';
import { NoCommandFields, type ProviderCommands } from '../connectors/provider-commands';
import { Metrics } from '../health/metrics';
import { EventPipeline } from '../pipeline/pipeline';
import { CommandLedger } from './command-ledger';
import type { CommandRouter } from './command-router';
import { CommandService } from './command.service';
import type { CommandRecord, LedgerStore } from './command.types';

const log = pino({ level: 'silent' });

/** A durable store double: keeps what it took, refuses what `refuse` says (after `delayMs`, like a write that timed out). */
class SwitchStore implements LedgerStore {
  readonly name = 'switch';
  readonly written: CommandRecord[] = [];
  refuse: (r: CommandRecord) => boolean = () => false;
  delayMs = 0;
  async load(): Promise<void> {}
  async write(r: CommandRecord): Promise<void> {
    const refused = this.refuse(r);
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (refused) throw new Error('broker down');
    this.written.push(structuredClone(r));
  }
  async stop(): Promise<void> {}
  /** The last status of `commandId` the store took. */
  lastStatus(commandId: string): string | undefined {
    return this.written.filter((r) => r.commandId === commandId).at(-1)?.status;
  }
}

/** One connected ZapThinker-like channel `wa` that records each upstream send and the ledger state it was sent in. */
class FakeChannels {
  readonly sent: string[] = [];
  readonly durableAtSend: Array<string | undefined> = [];
  constructor(private readonly store: SwitchStore) {}
  commandTarget(): { name: 'zapthinker'; commands: ProviderCommands } {
    return { name: 'zapthinker', commands: { 'message.send': NoCommandFields } };
  }
  connected(): boolean {
    return true;
  }
  async whenConnected(): Promise<boolean> {
    return true;
  }
  async execute(_channelId: string, command: UpstreamCommand): Promise<{ upstreamMessageId: string }> {
    this.sent.push(command.commandId);
    this.durableAtSend.push(this.store.lastStatus(command.commandId));
    return { upstreamMessageId: `up-${command.commandId}` };
  }
}

describe('command delivery with a durable ledger that does not take a state', () => {
  let store: SwitchStore;
  let channels: FakeChannels;
  let metrics: Metrics;
  let service: CommandService;
  let results: Array<{ commandId: string; status: string; errorCode?: string }>;

  async function start(commands: Partial<CommandsConfig> = {}): Promise<void> {
    store = new SwitchStore();
    channels = new FakeChannels(store);
    metrics = new Metrics();
    const settings = Object.assign(new CommandsConfig(), { deadlineMs: 60_000, ...commands, retry: { initialDelayMs: 10, maxDelayMs: 40, multiplier: 2, maxAttempts: 6 } });
    const config = { commands: settings, api: { maxBodyBytes: 262_144 }, channels: [] } as unknown as AppConfig;
    const pipeline = new EventPipeline({ maxEntries: 1000, ttlMs: 60_000 }, metrics, log);
    results = [];
    pipeline.observe(({ event }) => {
      const { command } = event.data as { command: { commandId: string; status: string; errorCode?: string } };
      results.push({ commandId: command.commandId, status: command.status, ...(command.errorCode ? { errorCode: command.errorCode } : {}) });
    });
    const ledger = new CommandLedger({ maxEntries: 1000, ttlMs: 60_000 }, log, store);
    service = new CommandService(config, channels as unknown as CommandRouter, pipeline, ledger, metrics, log);
    await service.start();
    service.channelsStarted();
  }

  afterEach(async () => {
    await service.stop(1000);
  });

  const submit = (commandId: string, conversationId = '5511999999999') =>
    service.submit({ commandId, type: 'message.send', conversationId, text: `text of ${commandId}` }, { door: 'http', channelId: 'wa' });
  const unwritten = async (status: string) => (await metrics.registry.getSingleMetric('chatbridge_command_ledger_unwritten_total')!.get()).values.filter((v) => v.labels.status === status).reduce((n, v) => n + v.value, 0);
  const eventually = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 3000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('sends nothing while the sending state is refused (thrown or timed out), stays accepted, then sends once the ledger has it', async () => {
    await start();
    store.refuse = (r) => r.status === 'sending';
    store.delayMs = 15;
    expect(await submit('c1')).toMatchObject({ status: 'accepted', duplicate: false });
    await eventually('three refused sending writes', async () => (await unwritten('sending')) >= 3);
    expect(channels.sent).toEqual([]);
    expect(service.get('c1')).toMatchObject({ status: 'accepted', attempts: 0 });
    expect(await metrics.registry.getSingleMetric('chatbridge_command_attempts_total')!.get()).toMatchObject({ values: [] });
    expect(results).toEqual([]);

    store.refuse = () => false;
    await eventually('the result', () => results.length === 1);
    expect(channels.sent).toEqual(['c1']);
    expect(channels.durableAtSend).toEqual(['sending']);
    expect(results).toEqual([{ commandId: 'c1', status: 'sent' }]);
    expect(service.get('c1')).toMatchObject({ status: 'sent', attempts: 1, upstreamMessageId: 'up-c1' });
    expect(store.written.filter((r) => r.commandId === 'c1').map((r) => `${r.status}/${r.attempts}`)).toEqual(['accepted/0', 'sending/1', 'sent/1']);
  });

  it('a deadline that passes while the ledger is down ends failed deadline_exceeded only once that is recorded, and nothing is sent', async () => {
    await start({ deadlineMs: 150 });
    store.refuse = (r) => r.status !== 'accepted';
    await submit('late');
    await new Promise((r) => setTimeout(r, 400));
    expect(await unwritten('failed')).toBeGreaterThanOrEqual(1);
    expect(service.get('late')).toMatchObject({ status: 'accepted', attempts: 0 });
    expect(results).toEqual([]);

    store.refuse = () => false;
    await eventually('the result', () => results.length === 1);
    expect(results).toEqual([{ commandId: 'late', status: 'failed', errorCode: 'deadline_exceeded' }]);
    expect(service.get('late')).toMatchObject({ status: 'failed', attempts: 0, error: { code: 'deadline_exceeded', mayHaveActed: false } });
    expect(service.get('late')?.error?.message).toMatch(/last error: the command ledger \(switch\) did not record the sending state, so it was not sent/);
    expect(store.lastStatus('late')).toBe('failed');
    expect(channels.sent).toEqual([]);
  });

  it('a sent end the ledger does not take is reported only once recorded, and the command is not sent again meanwhile', async () => {
    await start();
    store.refuse = (r) => r.status === 'sent';
    await submit('s1');
    await eventually('the send', () => channels.sent.length === 1);
    await eventually('two refused end writes', async () => (await unwritten('sent')) >= 2);
    expect(service.get('s1')).toMatchObject({ status: 'sending', attempts: 1 });
    expect(results).toEqual([]);

    store.refuse = () => false;
    await eventually('the result', () => results.length === 1);
    expect(service.get('s1')).toMatchObject({ status: 'sent', attempts: 1 });
    expect(channels.sent).toEqual(['s1']);
    expect(results).toEqual([{ commandId: 's1', status: 'sent' }]);
  });

  it('a command whose sending state is refused holds only its own conversation: another conversation goes on, its own keeps order', async () => {
    await start();
    store.refuse = (r) => r.commandId === 'a' && r.status === 'sending';
    await submit('a', 'conv-1');
    await submit('a2', 'conv-1');
    await submit('b', 'conv-2');
    await eventually('b sent', () => results.some((r) => r.commandId === 'b'));
    expect(channels.sent).toEqual(['b']);
    expect(service.get('a2')).toMatchObject({ status: 'accepted' });

    store.refuse = () => false;
    await eventually('all three sent', () => results.length === 3);
    expect(channels.sent).toEqual(['b', 'a', 'a2']);
  });

  it('shutdown while the ledger refuses leaves the command accepted and unsent (a restart delivers it)', async () => {
    await start();
    store.refuse = (r) => r.status === 'sending';
    await submit('held');
    await eventually('a refused sending write', async () => (await unwritten('sending')) >= 1);
    await service.stop(1000);
    expect(channels.sent).toEqual([]);
    expect(store.lastStatus('held')).toBe('accepted');
    expect(service.get('held')).toMatchObject({ status: 'accepted', attempts: 0 });
  });
});
