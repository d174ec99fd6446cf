import { commandConversation } from '../connectors/provider-commands';
import { providerDefinition, supportedProviders } from '../connectors/registry';
import { CommandRequestError } from './command.types';
import { checkCommandLimits, checkProviderCommand, parseCommand, type CommandLimits } from './command.dto';

/** `{"a":{"a":…}}` with `levels` objects, built without recursion. */
function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

/** The CommandRequestError `fn` throws (fails the test when it throws anything else or nothing). */
function refusal(fn: () => unknown): CommandRequestError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CommandRequestError) return err;
    throw new Error(`expected a CommandRequestError, got ${String(err)}`);
  }
  throw new Error('expected a refusal, the command passed');
}

describe('command size and depth limits (before validation)', () => {
  const limits: CommandLimits = { maxBytes: 4096, maxDepth: 32 };
  const base = { commandId: 'c-1', type: 'metadata', conversationId: 'conv-1' };

  it('refuses metadata nested 5,000 and 100,000 deep as a 400 naming the field and the limit, without overflowing', () => {
    for (const levels of [5000, 100_000]) {
      const err = refusal(() => parseCommand({ ...base, metadata: nested(levels) }, { maxBytes: 64 * 1024 * 1024, maxDepth: 32 }));
      expect(err).toMatchObject({ code: 'invalid_command', status: 400, limit: 'depth' });
      expect(err.details).toEqual(['metadata: nested deeper than 32 levels (commands.maxDepth; the command itself is level 1)']);
    }
  });

  it('names every field that is too deep, and only those', () => {
    const err = refusal(() => parseCommand({ ...base, metadata: nested(40), data: nested(3), userData: [[[nested(40)]]] }, limits));
    expect(err.details).toEqual([
      'metadata: nested deeper than 32 levels (commands.maxDepth; the command itself is level 1)',
      'userData: nested deeper than 32 levels (commands.maxDepth; the command itself is level 1)',
    ]);
  });

  it('counts the body as level 1: a field of 31 levels passes, one of 32 does not', () => {
    expect(parseCommand({ ...base, metadata: nested(31) }, limits).command).toMatchObject({ commandId: 'c-1' });
    expect(refusal(() => parseCommand({ ...base, metadata: nested(32) }, limits)).limit).toBe('depth');
  });

  it('refuses a command whose JSON is over maxBytes as a 413 command_too_large naming api.maxBodyBytes', () => {
    const err = refusal(() => parseCommand({ ...base, type: 'message.send', text: 'é'.repeat(2100) }, limits));
    expect(err).toMatchObject({ code: 'command_too_large', status: 413, limit: 'bytes', message: 'command larger than the API limit of 4096 bytes (api.maxBodyBytes)' });
    expect(err.details).toBeUndefined();
    expect(parseCommand({ ...base, type: 'message.send', text: 'é'.repeat(1900) }, limits).command).toMatchObject({ type: 'message.send' });
  });

  it('holds a deep body that is also too large to the first limit it reaches, either way a refusal', () => {
    const err = refusal(() => checkCommandLimits({ ...base, metadata: nested(10_000) }, { maxBytes: 2048, maxDepth: 32 }));
    expect(['command_too_large', 'invalid_command']).toContain(err.code);
  });

  it('turns a validator that throws anyway (limits set past what it can take) into a 400, never a crash', () => {
    const err = refusal(() => parseCommand({ ...base, metadata: nested(50_000) }, { maxBytes: 64 * 1024 * 1024, maxDepth: 1_000_000 }));
    expect(err).toMatchObject({ code: 'invalid_command', status: 400 });
    expect(err.details).toEqual([expect.stringMatching(/^\(body\): cannot be validated: /)]);
  });

  it('still refuses a body that is not an object, and passes an ordinary command', () => {
    expect(refusal(() => parseCommand([nested(100)], limits)).details).toEqual(['(body): must be a JSON object']);
    expect(parseCommand({ ...base, channelId: 'hub', metadata: { plan: 'pro', tags: ['a'] } }, limits)).toEqual({
      channelId: 'hub', command: { ...base, metadata: { plan: 'pro', tags: ['a'] } },
    });
  });
});

describe('the provider half of validation (checkProviderCommand)', () => {
  const limits: CommandLimits = { maxBytes: 64 * 1024, maxDepth: 32 };
  const check = (provider: string, body: Record<string, unknown>) => () =>
    checkProviderCommand(providerDefinition(provider)!, 'ch-1', parseCommand({ commandId: 'c-1', ...body }, limits).command);

  it('refuses a type the channel’s provider does not execute as a 422 naming the provider and its types', () => {
    const err = refusal(check('watchers', { type: 'typing', conversationId: 'r' }));
    expect(err).toMatchObject({ code: 'unsupported_command', status: 422 });
    expect(err.message).toBe('provider watchers (channel ch-1) does not support command type "typing"; it supports message.send, room.listen');
  });

  it('holds the other fields to the type’s class: another type’s or another provider’s field is an unknown key', () => {
    expect(() => check('captivate', { type: 'metadata', conversationId: 'c', metadata: { plan: 'pro' }, target: 'bot' })()).not.toThrow();
    expect(refusal(check('captivate', { type: 'message.send', conversationId: 'c', text: 'Hi', metadata: {} })).details).toEqual(['metadata: unknown key']);
    expect(refusal(check('zapthinker', { type: 'message.send', conversationId: 'c', text: 'Hi', roomId: 'r', delay: 'soon' })).details).toEqual([
      'roomId: unknown key', 'delay: must be an integer number',
    ]);
    expect(refusal(check('smartsupp', { type: 'read', conversationId: 'v', typing: true }))).toMatchObject({ code: 'invalid_command', status: 400, details: ['typing: unknown key'] });
  });

  it('checks the canonical fields first, whatever the provider; with those invalid, a field no provider takes is listed too', () => {
    expect(refusal(() => parseCommand({ commandId: 'c-1', type: 'message.send', text: 7, roomId: 'r' }, limits)).details).toEqual(['text: must be a string']);
    expect(refusal(() => parseCommand({ commandId: 'c-1', text: 'x', roomId: 'r', colour: 'red' }, limits)).details).toEqual(['type: required', 'colour: unknown key']);
  });
});

describe('every provider in the registry', () => {
  it('declares a fields class for each of its command types, and names the conversation of a command', () => {
    for (const name of supportedProviders()) {
      const def = providerDefinition(name)!;
      expect(def.name).toBe(name);
      for (const fields of Object.values(def.commands)) expect(typeof fields).toBe('function');
    }
    expect(commandConversation(providerDefinition('watchers'), { commandId: 'c', type: 'room.listen', roomId: 'r-1' })).toBe('r-1');
    expect(commandConversation(providerDefinition('jwt-websocket'), { commandId: 'c', type: 'room.listen', channel: 'conversation:c-1' })).toBe('conversation:c-1');
    expect(commandConversation(providerDefinition('smartsupp'), { commandId: 'c', type: 'message.send', conversationId: 'v-1' })).toBe('v-1');
  });
});
