import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { ChannelMode } from '../connectors/connector.interface';
import { ChannelRequestError } from './channel-mode';
import { ModePersistence } from './mode-persistence';
import { FileModeStore, type ModeStore, type PersistedModes } from './mode-store';
import { FileChannelStore } from './state-store';

/** A durable store whose writes the test settles by hand. */
class ManualStore implements ModeStore {
  readonly source = 'topic t';
  readonly writes: Array<{ channelId: string; mode: ChannelMode; settle: (err?: Error) => void }> = [];
  loadResult: PersistedModes | Error = new Map();

  async load(): Promise<PersistedModes> {
    if (this.loadResult instanceof Error) throw this.loadResult;
    return this.loadResult;
  }

  save(channelId: string, mode: ChannelMode): Promise<void> {
    return new Promise((resolve, reject) => this.writes.push({ channelId, mode, settle: (err) => (err ? reject(err) : resolve()) }));
  }

  async stop(): Promise<void> {}
}

describe('ModePersistence', () => {
  let states: Map<string, FileChannelStore>;
  let store: ManualStore;
  let current: Record<string, ChannelMode>;
  let logs: string[];
  const make = (timeoutMs = 5000) => new ModePersistence(new FileModeStore(states), { store, timeoutMs }, (id) => current[id], pino({ level: 'info' }, { write: (l: string) => void logs.push(l) }));
  const fileMode = (id: string) => states.get(id)?.get<string>('mode');

  beforeEach(() => {
    const dir = mkdtempSync(join(tmpdir(), 'mode-persistence-'));
    states = new Map(['a', 'b'].map((id) => [id, new FileChannelStore(dir, id)]));
    store = new ManualStore();
    current = { a: 'socket', b: 'socket' };
    logs = [];
  });

  it('writes the topic first and the state file once Kafka acknowledged', async () => {
    const p = make().persist('a', 'webhook');
    await new Promise((r) => setImmediate(r));
    expect(fileMode('a')).toBeUndefined();
    store.writes[0].settle();
    await p;
    expect(fileMode('a')).toBe('webhook');
  });

  it('a failed topic write is mode_not_persisted, saying the channel stays in its mode; the file is not touched', async () => {
    const p = make().persist('a', 'webhook');
    store.writes[0].settle(new Error('Connection error: connect ECONNREFUSED'));
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelRequestError);
    expect(err).toMatchObject({ code: 'mode_not_persisted', message: expect.stringContaining('channel a was not switched and stays in socket mode') });
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect(fileMode('a')).toBeUndefined();
  });

  it('a write given up on that lands later is corrected to the channel\'s actual mode', async () => {
    const err = await make(50).persist('a', 'webhook').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'mode_not_persisted', message: expect.stringContaining('no acknowledgement within 50 ms') });
    store.writes[0].settle();
    await new Promise((r) => setImmediate(r));
    expect(store.writes.map((w) => [w.channelId, w.mode])).toEqual([['a', 'webhook'], ['a', 'socket']]);
    expect(logs.some((l) => l.includes('landed late'))).toBe(true);
  });

  it('an unreadable topic at start falls back to the state files, with a warning that names what was not restored', async () => {
    states.get('b')?.set('mode', 'webhook');
    store.loadResult = new Error('could not read topic "t" within 10000 ms');
    const restored = await make().restore(['a', 'b']);
    expect(Object.fromEntries(restored)).toEqual({ a: {}, b: { mode: 'webhook', source: 'stateDir' } });
    const warn = logs.find((l) => l.includes('channel modes not restored from topic t'));
    expect(warn).toContain('b=webhook');
    expect(warn).toContain('on another machine is not applied');
  });

  it('a readable topic corrects the state file and receives a mode only the file had', async () => {
    states.get('a')?.set('mode', 'webhook');
    states.get('b')?.set('mode', 'webhook');
    store.loadResult = new Map([['a', null]]);
    const restoring = make().restore(['a', 'b']);
    await new Promise((r) => setImmediate(r));
    expect(store.writes.map((w) => [w.channelId, w.mode])).toEqual([['b', 'webhook']]);
    store.writes[0].settle();
    expect(Object.fromEntries(await restoring)).toEqual({ a: { fileFix: 'clear' }, b: { mode: 'webhook', source: 'stateDir', migrate: true } });
    expect(fileMode('a')).toBeUndefined();
    expect(fileMode('b')).toBe('webhook');
  });
});
