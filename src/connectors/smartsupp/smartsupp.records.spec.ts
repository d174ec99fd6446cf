import pino from 'pino';
import type { ChannelStore } from '../connector.interface';
import type { Member } from './smartsupp.pool';
import { persisted, VisitorRecords } from './smartsupp.records';
import type { SmartsuppVisitor } from './smartsupp.visitor';

/** The fields `persisted` reads, on a plain object (the records never touch a visitor's socket). */
function visitor(id: string, fields: Partial<SmartsuppVisitor> = {}): SmartsuppVisitor {
  return { id, activeAt: Date.parse('2026-12-06T10:00:00Z'), savedActiveAt: 0, ...fields } as SmartsuppVisitor;
}

describe('VisitorRecords (state file)', () => {
  it('each write holds every visitor as persisted() makes it, whatever changed since the last one', () => {
    const writes: string[] = [];
    const store: ChannelStore = { get: () => undefined, set: () => undefined, setJson: (_k, json) => void writes.push(json) };
    const members = new Map<string, Member>();
    const add = (v: SmartsuppVisitor) => members.set(v.id as string, { visitor: v } as Member);
    const records = new VisitorRecords(store, undefined, members, pino({ level: 'silent' }));
    records.loaded = true;
    const expected = () => Object.fromEntries([...members].map(([id, m]) => [id, persisted(m.visitor)]));
    const last = () => JSON.parse(writes[writes.length - 1]) as unknown;

    const a = visitor('a', { identity: { name: 'Ann' } as SmartsuppVisitor['identity'] });
    const b = visitor('b');
    add(a);
    add(b);
    records.flush();
    expect(last()).toEqual(expected());

    // Each field persisted() reads, changed on one visitor between writes; the other stays as written.
    const changes: Array<(v: SmartsuppVisitor) => void> = [
      (v) => (v.chatId = 'chat-1'),
      (v) => (v.since = Date.parse('2026-12-06T10:01:00Z')),
      (v) => (v.seen = ['m1']),
      (v) => (v.seen = [...(v.seen ?? []), 'm2']),
      (v) => (v.activeAt += 5000),
    ];
    for (const change of changes) {
      change(b);
      records.flush();
      expect(last()).toEqual(expected());
    }
    expect(last()).toMatchObject({ b: { chatId: 'chat-1', seen: ['m1', 'm2'], activeAt: '2026-12-06T10:00:05.000Z' }, a: { identity: { name: 'Ann' } } });
    expect(b.savedActiveAt).toBe(b.activeAt);

    // A visitor gone is gone from the next write; a new one is in it.
    members.delete('a');
    add(visitor('c'));
    records.flush();
    expect(Object.keys(last() as object)).toEqual(['b', 'c']);
    expect(last()).toEqual(expected());
  });
});
