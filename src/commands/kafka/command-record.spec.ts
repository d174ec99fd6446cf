import { CommandRequestError } from '../command.types';
import { classifyRefusal, parseCommandRecord } from './command-record';

describe('Kafka command records', () => {
  const body = { commandId: 'c-1', type: 'message.send', conversationId: '144444', text: 'Hi' };

  it('reads the JSON value as the command and the key as its channel', () => {
    expect(parseCommandRecord(Buffer.from('bot-eu'), Buffer.from(JSON.stringify(body)))).toEqual({ ok: true, body, channelId: 'bot-eu' });
  });

  it('reads a forwarded record\'s key <channelId>/<conversationId> (a spread conversation\'s holder) as its channel', () => {
    expect(parseCommandRecord(Buffer.from('site/v-7/x'), Buffer.from(JSON.stringify(body)))).toEqual({ ok: true, body, channelId: 'site' });
  });

  it('leaves the channel to the body when the key is missing or empty', () => {
    expect(parseCommandRecord(null, Buffer.from(JSON.stringify({ ...body, channelId: 'bot-eu' })))).toEqual({ ok: true, body: { ...body, channelId: 'bot-eu' }, channelId: undefined });
    expect(parseCommandRecord(Buffer.alloc(0), Buffer.from('{}'))).toEqual({ ok: true, body: {}, channelId: undefined });
  });

  it('refuses a value that is missing or not JSON, saying so', () => {
    expect(parseCommandRecord(Buffer.from('bot-eu'), null)).toEqual({ ok: false, error: 'record has no value (expected the command as JSON)' });
    expect(parseCommandRecord(Buffer.from('bot-eu'), Buffer.from('send hi'))).toEqual({ ok: false, error: expect.stringMatching(/^value is not JSON: /) });
  });

  it('never throws, whatever the record: a value nested 20,000 deep is read (the service judges its depth), odd types are refused', () => {
    const deep = '{"metadata":'.repeat(20_000) + '1' + '}'.repeat(20_000);
    const parsed = parseCommandRecord(Buffer.from('bot-eu'), Buffer.from(deep));
    expect(parsed).toMatchObject({ ok: true, channelId: 'bot-eu' });
    expect(parseCommandRecord('bot-eu' as unknown as Buffer, 'text' as unknown as Buffer)).toEqual({ ok: false, error: 'record has no value (expected the command as JSON)' });
    expect(parseCommandRecord({} as unknown as Buffer, Buffer.from('{}'))).toEqual({ ok: true, body: {}, channelId: undefined });
    expect(parseCommandRecord(null, Buffer.from([0xff, 0xfe, 0x7b]))).toEqual({ ok: false, error: expect.stringMatching(/^value is not JSON: /) });
  });

  it('dead-letters a command over the size limit with its 413 and the depth refusal with its 400, naming the limit', () => {
    expect(classifyRefusal(new CommandRequestError('command_too_large', 'command larger than the API limit of 1024 bytes (api.maxBodyBytes)', undefined, 'bytes')))
      .toEqual({ action: 'dead_letter', code: 'command_too_large', status: 413, error: 'command_too_large: command larger than the API limit of 1024 bytes (api.maxBodyBytes)' });
    expect(classifyRefusal(new CommandRequestError('invalid_command', 'invalid command', ['metadata: nested deeper than 32 levels (commands.maxDepth)'], 'depth')))
      .toMatchObject({ action: 'dead_letter', status: 400, error: 'invalid_command: invalid command (metadata: nested deeper than 32 levels (commands.maxDepth))' });
  });

  it.each([
    ['invalid_command', 400],
    ['unknown_channel', 404],
    ['id_conflict', 409],
    ['unsupported_command', 422],
  ] as const)('dead-letters a %s refusal (%d): sending it again cannot succeed', (code, status) => {
    expect(classifyRefusal(new CommandRequestError(code, 'refused'))).toEqual({ action: 'dead_letter', code, status, error: `${code}: refused` });
  });

  it('keeps the validation details in the dead-letter error', () => {
    const err = new CommandRequestError('invalid_command', 'invalid command', ['text: must be a string', 'type: required']);
    expect(classifyRefusal(err)).toMatchObject({ action: 'dead_letter', error: 'invalid_command: invalid command (text: must be a string; type: required)' });
  });

  it.each(['channel_busy', 'ledger_unavailable', 'shutting_down'] as const)('retries a %s refusal (503): it can pass later', (code) => {
    expect(classifyRefusal(new CommandRequestError(code, 'not now'))).toEqual({ action: 'retry', code, error: `${code}: not now` });
  });

  it('retries an unexpected error rather than losing the command', () => {
    expect(classifyRefusal(new Error('boom'))).toMatchObject({ action: 'retry', code: 'unexpected_error' });
  });
});
