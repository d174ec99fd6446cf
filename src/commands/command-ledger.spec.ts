import pino from 'pino';
import { CommandLedger, commandFingerprint, newerRecord } from './command-ledger';
import { CommandRequestError, type CommandRecord, type LedgerStore } from './command.types';

const log = pino({ level: 'silent' });

function record(over: Partial<CommandRecord> = {}): CommandRecord {
  return {
    commandId: 'c1', channelId: 'wa', type: 'message.send', status: 'accepted', attempts: 0, fingerprint: 'f', door: 'http',
    acceptedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...over,
  };
}

/** A store that keeps writes in an array and can be told to refuse them. */
class ArrayStore implements LedgerStore {
  readonly name = 'array';
  readonly written: CommandRecord[] = [];
  refuse = false;
  constructor(private readonly stored: CommandRecord[] = []) {}
  async load(onRecord: (r: CommandRecord) => void): Promise<void> {
    this.stored.forEach(onRecord);
  }
  async write(r: CommandRecord): Promise<void> {
    if (this.refuse) throw new Error('broker down');
    this.written.push({ ...r });
  }
  async stop(): Promise<void> {}
}

async function started(store: LedgerStore): Promise<CommandLedger> {
  const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 60_000 }, log, store);
  await ledger.start(() => undefined);
  return ledger;
}

describe('commandFingerprint', () => {
  it('is the same for the same command whatever the key order, and differs for any changed field or channel', () => {
    const a = commandFingerprint('wa', { commandId: 'c', type: 'message.send', text: 'hi', conversationId: '1', data: { x: 1, y: [1, 2] } });
    const b = commandFingerprint('wa', { data: { y: [1, 2], x: 1 }, conversationId: '1', text: 'hi', type: 'message.send', commandId: 'c' });
    expect(a).toBe(b);
    expect(commandFingerprint('wa', { commandId: 'c', type: 'message.send', text: 'hi!', conversationId: '1', data: { x: 1, y: [1, 2] } })).not.toBe(a);
    expect(commandFingerprint('wb', { commandId: 'c', type: 'message.send', text: 'hi', conversationId: '1', data: { x: 1, y: [1, 2] } })).not.toBe(a);
    expect(commandFingerprint('wa', { commandId: 'c', type: 'message.send', text: 'hi', conversationId: '1', data: { x: 1, y: [2, 1] } })).not.toBe(a);
  });
});

describe('newerRecord', () => {
  it('prefers a further state, keeps the first final state, and otherwise the newer update', () => {
    const accepted = record();
    const sending = record({ status: 'sending', updatedAt: '2026-01-01T00:00:01.000Z' });
    const sent = record({ status: 'sent', updatedAt: '2026-01-01T00:00:02.000Z' });
    const failedLater = record({ status: 'failed', updatedAt: '2026-01-01T00:00:03.000Z' });
    expect(newerRecord(accepted, sending)).toBe(sending);
    expect(newerRecord(sending, accepted)).toBe(sending);
    expect(newerRecord(sent, sending)).toBe(sent);
    expect(newerRecord(sent, failedLater)).toBe(sent);
    const heldAgain = record({ status: 'accepted', attempts: 0, updatedAt: '2026-01-01T00:00:05.000Z' });
    expect(newerRecord(accepted, heldAgain)).toBe(heldAgain);
  });
});

describe('CommandLedger', () => {
  it('claims a new id once; a second claim returns the known record without writing', async () => {
    const store = new ArrayStore();
    const ledger = await started(store);
    expect(await ledger.claim(record())).toMatchObject({ created: true });
    const again = await ledger.claim(record({ fingerprint: 'other' }));
    expect(again.created).toBe(false);
    expect(again.record.fingerprint).toBe('f');
    expect(store.written).toHaveLength(1);
  });

  it('does not accept a command the store refused, so the client can send it again', async () => {
    const store = new ArrayStore();
    const ledger = await started(store);
    store.refuse = true;
    await expect(ledger.claim(record())).rejects.toMatchObject({ code: 'ledger_unavailable', status: 503 });
    await expect(ledger.claim(record())).rejects.toBeInstanceOf(CommandRequestError);
    expect(ledger.get('c1')).toBeUndefined();
    store.refuse = false;
    expect((await ledger.claim(record())).created).toBe(true);
  });

  it('loads the store folding several records of one command, and lists the unfinished ones', async () => {
    const store = new ArrayStore([
      record({ commandId: 'a' }), record({ commandId: 'a', status: 'sending', attempts: 1, updatedAt: '2026-01-01T00:00:01.000Z' }),
      record({ commandId: 'b', status: 'sent', attempts: 1 }), record({ commandId: 'b', status: 'accepted' }),
      record({ commandId: 'c' }),
    ]);
    const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 60_000 }, log, store);
    await ledger.start(() => undefined);
    expect(ledger.get('a')?.status).toBe('sending');
    expect(ledger.get('b')?.status).toBe('sent');
    expect(ledger.unfinished().map((r) => r.commandId).sort()).toEqual(['a', 'c']);
  });

  it('reports a state change the store did not take (false), without throwing', async () => {
    const store = new ArrayStore();
    const ledger = await started(store);
    await ledger.claim(record());
    store.refuse = true;
    expect(await ledger.save(record({ status: 'sent' }))).toBe(false);
    expect(ledger.get('c1')?.status).toBe('sent');
  });

  it('commits a change only once the store took it: refused, the record and memory keep the last durable state', async () => {
    const store = new ArrayStore();
    const ledger = await started(store);
    const rec = record({ command: { commandId: 'c1', type: 'message.send', text: 'hi' } });
    await ledger.claim(rec);
    store.refuse = true;
    expect(await ledger.commit(rec, { status: 'sending', attempts: 1 })).toBe(false);
    expect(rec).toMatchObject({ status: 'accepted', attempts: 0 });
    expect(ledger.get('c1')).toMatchObject({ status: 'accepted', attempts: 0 });
    store.refuse = false;
    expect(await ledger.commit(rec, { status: 'sent', attempts: 1, command: undefined })).toBe(true);
    expect(ledger.get('c1')).toBe(rec);
    expect(rec).toMatchObject({ status: 'sent', attempts: 1 });
    expect('command' in rec).toBe(false);
    expect(store.written.map((r) => r.status)).toEqual(['accepted', 'sent']);
    expect('command' in store.written[1]).toBe(false);
  });

  it('keeps at most maxEntries finished commands in memory (oldest go first)', async () => {
    const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 60_000 }, log);
    for (let i = 0; i < 150; i++) await ledger.save(record({ commandId: `c${i}`, status: 'sent' }));
    expect(ledger.get('c0')).toBeUndefined();
    expect(ledger.get('c149')).toBeDefined();
    expect(ledger.kind).toBe('memory');
  });

  it('never evicts an unfinished command: past maxEntries newer finished ones it is still known and not claimed again', async () => {
    const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 60_000 }, log);
    const running = record({ commandId: 'running' });
    await ledger.claim(running);
    await ledger.commit(running, { status: 'sending', attempts: 1 });
    for (let i = 0; i < 250; i++) await ledger.save(record({ commandId: `done${i}`, status: 'sent' }));
    expect(ledger.get('running')).toBe(running);
    expect(await ledger.claim(record({ commandId: 'running' }))).toEqual({ record: running, created: false });
    expect(ledger.unfinished()).toEqual([running]);
  });

  it('moves a command to the finished ones when it finishes, where it is evicted like any other', async () => {
    const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 60_000 }, log);
    const rec = record({ commandId: 'a' });
    await ledger.claim(rec);
    await ledger.commit(rec, { status: 'sent', attempts: 1 });
    expect(ledger.unfinished()).toEqual([]);
    expect(ledger.get('a')?.status).toBe('sent');
    for (let i = 0; i < 100; i++) await ledger.save(record({ commandId: `done${i}`, status: 'sent' }));
    expect(ledger.get('a')).toBeUndefined();
  });

  it('lists exactly the unfinished commands, from claims, state changes and the store', async () => {
    const ledger = await started(new ArrayStore([record({ commandId: 'stored' }), record({ commandId: 'stored-done', status: 'failed' })]));
    await ledger.claim(record({ commandId: 'accepted' }));
    await ledger.claim(record({ commandId: 'sending' }));
    await ledger.save(record({ commandId: 'sending', status: 'sending', attempts: 1 }));
    await ledger.claim(record({ commandId: 'sent' }));
    await ledger.save(record({ commandId: 'sent', status: 'sent', attempts: 1 }));
    expect(ledger.unfinished().map((r) => `${r.commandId}:${r.status}`)).toEqual(['stored:accepted', 'accepted:accepted', 'sending:sending']);
  });

  it('drops unfinished records read from the store ttlMs after they entered (left by a process that died), never the ones it runs', async () => {
    jest.useFakeTimers();
    try {
      const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 1000 }, log, new ArrayStore([record({ commandId: 'orphan', status: 'sending' }), record({ commandId: 'resumed' })]));
      await ledger.start(() => undefined);
      await ledger.claim(record({ commandId: 'mine' }));
      // A record read from the store that this process then runs (a restart's resume) is its own from then on.
      await ledger.save(record({ commandId: 'resumed', status: 'sending', attempts: 1 }));
      jest.advanceTimersByTime(999);
      await ledger.claim(record({ commandId: 'later' }));
      expect(ledger.unfinished().map((r) => r.commandId)).toEqual(['orphan', 'resumed', 'mine', 'later']);
      jest.advanceTimersByTime(1);
      await ledger.claim(record({ commandId: 'next' }));
      expect(ledger.unfinished().map((r) => r.commandId)).toEqual(['resumed', 'mine', 'later', 'next']);
      expect(ledger.get('orphan')).toBeUndefined();
      // Running for an hour: still known, a repeat is not claimed again.
      jest.advanceTimersByTime(3600_000);
      await ledger.claim(record({ commandId: 'much-later' }));
      expect(ledger.unfinished().map((r) => r.commandId)).toEqual(['resumed', 'mine', 'later', 'next', 'much-later']);
      expect((await ledger.claim(record({ commandId: 'mine' }))).created).toBe(false);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('CommandLedger claims racing', () => {
  it('lets a repeat that arrives during the first write wait for it, and fail with it', async () => {
    const store = new ArrayStore();
    let release!: (ok: boolean) => void;
    store.write = (r) => new Promise<void>((resolve, reject) => (release = (ok) => (ok ? resolve() : reject(new Error('down'))))).then(() => void store.written.push(r));
    const ledger = await started(store);
    const first = ledger.claim(record());
    const repeat = ledger.whenDurable('c1');
    release(false);
    await expect(first).rejects.toMatchObject({ code: 'ledger_unavailable' });
    await expect(repeat).rejects.toMatchObject({ code: 'ledger_unavailable' });
    expect(ledger.get('c1')).toBeUndefined();
  });
});

describe('CommandLedger with an unreadable store', () => {
  it('refuses claims (503) until a background retry has read the store, then calls onLoaded once', async () => {
    const store = new ArrayStore([record({ commandId: 'old', status: 'sent' })]);
    let failures = 2;
    const load = store.load.bind(store);
    store.load = async (onRecord) => {
      if (failures-- > 0) throw new Error('ECONNREFUSED');
      await load(onRecord);
    };
    const ledger = new CommandLedger({ maxEntries: 100, ttlMs: 60_000 }, log, store);
    let loaded = 0;
    await ledger.start(() => loaded++, 20);
    expect(() => ledger.requireLoaded()).toThrow(expect.objectContaining({ code: 'ledger_unavailable' }));
    await expect(ledger.claim(record())).rejects.toMatchObject({ code: 'ledger_unavailable', status: 503 });
    await new Promise((r) => setTimeout(r, 150));
    expect(() => ledger.requireLoaded()).not.toThrow();
    expect(loaded).toBe(1);
    expect(ledger.get('old')?.status).toBe('sent');
    expect((await ledger.claim(record())).created).toBe(true);
    await ledger.stop();
  });
});
