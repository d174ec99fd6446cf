import type { CommandRecord } from '../command.types';
import { decodeLedgerRecord, encodeLedgerRecord } from './ledger-record';

describe('ledger topic records', () => {
  const record: CommandRecord = {
    commandId: 'c-1', channelId: 'bot-eu', type: 'message.send', status: 'accepted', attempts: 0, fingerprint: 'ab12', door: 'kafka',
    acceptedAt: '2024-05-01T10:00:00.000Z', updatedAt: '2024-05-01T10:00:00.000Z', conversationId: '144444',
    command: { commandId: 'c-1', type: 'message.send', conversationId: '144444', text: 'Hi' },
  };

  it('reads back exactly what it wrote, final records with their error and upstream id included', () => {
    expect(decodeLedgerRecord('c-1', encodeLedgerRecord(record))).toEqual(record);
    const failed: CommandRecord = { ...record, status: 'failed', attempts: 2, upstreamMessageId: 'm-9', error: { code: 'ambiguous_no_echo', message: 'no echo', mayHaveActed: true } };
    delete failed.command;
    expect(decodeLedgerRecord('c-1', encodeLedgerRecord(failed))).toEqual(failed);
  });

  it('drops fields it does not know (a newer version may add some)', () => {
    expect(decodeLedgerRecord('c-1', JSON.stringify({ ...record, owner: 'replica-2' }))).toEqual(record);
  });

  it.each([
    ['no key', null, encodeLedgerRecord(record), /no key/],
    ['a key that is not the commandId', 'c-2', encodeLedgerRecord(record), /commandId: "c-1" differs from the record key "c-2"/],
    ['a tombstone', 'c-1', null, /tombstone/],
    ['not JSON', 'c-1', '{"commandId":', /not JSON/],
    ['an array', 'c-1', '[]', /not a JSON object/],
    ['an unknown status', 'c-1', JSON.stringify({ ...record, status: 'done' }), /status: must be one of accepted, sending, sent, failed/],
    ['an unknown door', 'c-1', JSON.stringify({ ...record, door: 'smtp' }), /door: must be one of/],
    ['negative attempts', 'c-1', JSON.stringify({ ...record, attempts: -1 }), /attempts: must be an integer >= 0/],
    ['a malformed error', 'c-1', JSON.stringify({ ...record, error: 'boom' }), /error: must be \{code, message, mayHaveActed\}/],
    ['a command of another id', 'c-1', JSON.stringify({ ...record, command: { commandId: 'c-9', type: 'message.send' } }), /command: must be an object with the same commandId/],
  ])('refuses a record with %s, saying why', (_what, key, value, why) => {
    expect(() => decodeLedgerRecord(key, value)).toThrow(why);
  });

  it('lists every problem of a record at once', () => {
    const { fingerprint: _f, channelId: _c, ...partial } = record;
    expect(() => decodeLedgerRecord('c-1', JSON.stringify(partial))).toThrow('channelId: must be a non-empty string; fingerprint: must be a non-empty string');
  });
});
