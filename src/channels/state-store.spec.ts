import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileChannelStore } from './state-store';

describe('FileChannelStore', () => {
  let dir: string;
  const file = () => JSON.parse(readFileSync(join(dir, 'ch.json'), 'utf8')) as Record<string, unknown>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chatbridge-store-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes every change whole, keeps each key where it was, and a new store reads it back', () => {
    const store = new FileChannelStore(dir, 'ch');
    store.set('mode', 'socket');
    store.set('rooms', ['a', 'b']);
    store.set('mode', 'webhook');
    expect(readFileSync(join(dir, 'ch.json'), 'utf8')).toBe('{"mode":"webhook","rooms":["a","b"]}');
    store.set('rooms', undefined);
    expect(file()).toEqual({ mode: 'webhook' });
    expect(new FileChannelStore(dir, 'ch').get('mode')).toBe('webhook');
    expect(new FileChannelStore(dir, 'ch').get('rooms')).toBeUndefined();
  });

  it('a value given as JSON text is written as it is and read back parsed, here and by a new store', () => {
    const store = new FileChannelStore(dir, 'ch');
    store.set('mode', 'socket');
    store.setJson('visitors', '{"v1":{"chatId":"c1"},"v2":{}}');
    expect(file()).toEqual({ mode: 'socket', visitors: { v1: { chatId: 'c1' }, v2: {} } });
    expect(store.get('visitors')).toEqual({ v1: { chatId: 'c1' }, v2: {} });
    store.setJson('visitors', '{"v2":{}}');
    expect(store.get('visitors')).toEqual({ v2: {} });
    store.set('mode', 'webhook');
    const again = new FileChannelStore(dir, 'ch');
    expect([again.get('mode'), again.get('visitors')]).toEqual(['webhook', { v2: {} }]);
  });

  it('a file it cannot read starts empty, and the next change replaces it', () => {
    writeFileSync(join(dir, 'ch.json'), '{"mode": "sock');
    const store = new FileChannelStore(dir, 'ch');
    expect(store.get('mode')).toBeUndefined();
    store.set('mode', 'socket');
    expect(file()).toEqual({ mode: 'socket' });
  });
});
