import { conversationStateKey, decodeModeRecord, encodeModeRecord, foldModeRecords, parseStateKey, type ModeRecord, type PersistedModes } from './mode-store';
import { resolveStartModes } from './mode-persistence';

describe('state topic records', () => {
  it('encode to {"mode","at"} and decode back; unknown fields (a later version\'s) are allowed', () => {
    const value = encodeModeRecord('webhook', new Date('2024-05-01T10:00:00.000Z'));
    expect(JSON.parse(value)).toEqual({ mode: 'webhook', at: '2024-05-01T10:00:00.000Z' });
    expect(decodeModeRecord(value)).toEqual({ mode: 'webhook', at: '2024-05-01T10:00:00.000Z' });
    expect(decodeModeRecord('{"mode":"socket","owner":"pod-2","epoch":7}')).toEqual({ mode: 'socket' });
  });

  it('a malformed value is refused with the reason', () => {
    expect(() => decodeModeRecord('not json')).toThrow('value is not JSON');
    expect(() => decodeModeRecord('["webhook"]')).toThrow('not a JSON object');
    expect(() => decodeModeRecord('null')).toThrow('not a JSON object');
    expect(() => decodeModeRecord('{"mode":"carrier-pigeon"}')).toThrow('mode: must be "socket" or "webhook"');
    expect(() => decodeModeRecord('{}')).toThrow('mode: must be');
  });
});

describe('foldModeRecords: the latest mode per channel, as compaction keeps it', () => {
  const rec = (key: string | null, value: string | null) => ({ key, value });
  const mode = (m: string) => JSON.stringify({ mode: m, at: '2024-05-01T10:00:00.000Z' });

  it('the last record per key wins; a tombstone clears; a later record after a tombstone counts again', () => {
    const skipped: unknown[] = [];
    const modes = foldModeRecords([
      rec('a', mode('webhook')), rec('b', mode('webhook')), rec('a', mode('socket')),
      rec('b', null), rec('c', mode('webhook')), rec('c', null), rec('c', mode('socket')),
    ], (...why) => skipped.push(why));
    expect([...modes]).toEqual([['a', { mode: 'socket', at: '2024-05-01T10:00:00.000Z' }], ['b', null], ['c', { mode: 'socket', at: '2024-05-01T10:00:00.000Z' }]]);
    expect(skipped).toEqual([]);
  });

  it('malformed values and keyless records are skipped and reported, leaving the channel\'s previous record in force', () => {
    const skipped: Array<[string | null, string]> = [];
    const modes = foldModeRecords([rec('a', mode('webhook')), rec('a', '{"mode":"sideways"}'), rec('b', 'garbage'), rec(null, mode('socket'))], (key, reason) => skipped.push([key, reason]));
    expect([...modes]).toEqual([['a', { mode: 'webhook', at: '2024-05-01T10:00:00.000Z' }]]);
    expect(skipped).toEqual([['a', 'mode: must be "socket" or "webhook"'], ['b', 'value is not JSON'], [null, 'record without a key']]);
  });

  it('a cluster\'s spread-conversation records in the same topic are not modes: passed over without a report', () => {
    const skipped: unknown[] = [];
    const modes = foldModeRecords([rec('ss', mode('socket')), rec('ss/conversation/v-1', '{"chatId":"c-1"}'), rec('ss/conversation/v-2', null)], (...why) => skipped.push(why));
    expect([...modes]).toEqual([['ss', { mode: 'socket', at: '2024-05-01T10:00:00.000Z' }]]);
    expect(skipped).toEqual([]);
  });
});

describe('resolveStartModes: topic first, the state file as a local copy and fallback', () => {
  const modes = (entries: Array<[string, ModeRecord | null]>): PersistedModes => new Map(entries);
  const ids = ['a', 'b', 'c', 'd'];
  const file = modes([['a', { mode: 'webhook' }], ['b', { mode: 'webhook' }], ['c', { mode: 'socket' }]]);

  it('no topic (no Kafka, or unreadable in time): the state file decides', () => {
    const r = resolveStartModes(ids, file, undefined);
    expect(Object.fromEntries(r)).toEqual({ a: { mode: 'webhook', source: 'stateDir' }, b: { mode: 'webhook', source: 'stateDir' }, c: { mode: 'socket', source: 'stateDir' }, d: {} });
  });

  it('a readable topic wins: its record, or the config\'s mode after a tombstone; the file is corrected to match', () => {
    const topic = modes([['a', { mode: 'socket' }], ['b', null], ['d', { mode: 'webhook', at: 'x' }]]);
    const r = resolveStartModes(ids, file, topic, 'topic chatbridge.channels');
    expect(r.get('a')).toEqual({ mode: 'socket', source: 'topic chatbridge.channels', fileFix: 'set' });
    expect(r.get('b')).toEqual({ fileFix: 'clear' });
    expect(r.get('d')).toEqual({ mode: 'webhook', source: 'topic chatbridge.channels', fileFix: 'set' });
  });

  it('a channel the topic has never seen keeps the state file\'s mode, to be copied to the topic', () => {
    const r = resolveStartModes(ids, file, modes([['a', { mode: 'webhook' }]]), 'topic t');
    expect(r.get('a')).toEqual({ mode: 'webhook', source: 'topic t' });
    expect(r.get('c')).toEqual({ mode: 'socket', source: 'stateDir', migrate: true });
    expect(r.get('d')).toEqual({});
  });
});

describe('state topic keys', () => {
  it('a channel id names its mode record; <channelId>/conversation/<id> one spread conversation', () => {
    expect(parseStateKey('site')).toEqual({ channelId: 'site' });
    expect(parseStateKey(conversationStateKey('site', 'v-1'))).toEqual({ channelId: 'site', conversationId: 'v-1' });
    // Conversation ids are opaque: a slash inside one survives the round trip.
    expect(parseStateKey(conversationStateKey('site', 'a/b'))).toEqual({ channelId: 'site', conversationId: 'a/b' });
  });

  it('keys of neither kind are not the bridge\'s records', () => {
    for (const key of ['', '/conversation/v-1', 'site/other/v-1', 'site/conversation/', 'site/']) expect(parseStateKey(key)).toBeUndefined();
  });
});
