import {
  commandRoom, httpNetworkError, httpStatusError, listenAckError, restMessageId, restSendRequest, sendAckError, sendFields, sendFrame,
} from './watchers.commands';

const creds = { apiKey: 'key', bearer: 'jwt', userId: 'bot-1' };

describe('watchers commands: wire formats', () => {
  it('builds external/send and the REST request exactly', () => {
    const fields = sendFields({ commandId: 'c1', type: 'message.send', conversationId: '144444', text: 'Hi' });
    expect(sendFrame(fields, creds)).toEqual({ roomId: '144444', apiKey: 'key', userId: 'bot-1', text: 'Hi' });
    expect(restSendRequest('https://bot.watchers.io/', fields, creds)).toEqual({
      url: 'https://bot.watchers.io/api/bot/sendMessage',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Api-Key': 'key', Authorization: 'Bearer jwt', 'X-Bot-Id': 'bot-1' },
      body: '{"roomId":"144444","text":"Hi"}',
    });
  });

  it('takes the room from conversationId, else roomId, and refuses commands without room or text', () => {
    expect(commandRoom({ commandId: 'c', type: 't', conversationId: 'a', roomId: 'b' })).toBe('a');
    expect(commandRoom({ commandId: 'c', type: 't', roomId: 7 })).toBe('7');
    expect(() => sendFields({ commandId: 'c', type: 'message.send', text: 'x' })).toThrow(expect.objectContaining({ code: 'invalid_command', sent: false }));
    expect(() => sendFields({ commandId: 'c', type: 'message.send', roomId: 'r', text: '' })).toThrow(expect.objectContaining({ code: 'invalid_command' }));
  });
});

describe('watchers commands: reading acks', () => {
  it.each([
    [undefined, false], [null, false], [true, false], ['ok', false], [{}, false], [{ status: 'ok', roomId: 'r' }, false], [{ error: null }, false],
    [{ id: 1, name: 'room' }, false], [{ error: 'Room not found' }, true], [{ status: 'ERROR' }, true], [{ success: false }, true],
    [{ ok: false }, true], ['Error: invalid apiKey', true], ['not found', true], [{ error: { code: 1 } }, true],
  ])('listen ack %j → failure %s', (ack, failed) => {
    expect(listenAckError(ack) !== undefined).toBe(failed);
  });

  it.each([
    [undefined, false], [null, false], [false, false], ['', false], [{}, false], [[], false],
    ['Message not sent', true], [{ message: 'x' }, true], [{ error: 'x' }, true], [1, true],
  ])('send ack (error argument) %j → failure %s', (ack, failed) => {
    expect(sendAckError(ack) !== undefined).toBe(failed);
  });
});

describe('watchers commands: HTTP and network failures', () => {
  it.each([
    [429, 'upstream_unavailable', true], [503, 'upstream_unavailable', true], [500, 'upstream_unavailable', true],
    [400, 'upstream_rejected', false], [404, 'upstream_rejected', false], [401, 'auth_rejected', false], [403, 'auth_rejected', false],
  ])('HTTP %i → %s (retriable %s, never sent)', (status, code, retriable) => {
    expect(httpStatusError(status, '{"message":"x"}')).toMatchObject({ code, retriable, sent: false });
  });

  it('a refused connection was surely not sent; a timeout or reset may have been', () => {
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    expect(httpNetworkError(refused)).toMatchObject({ code: 'network', retriable: true, sent: false });
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(httpNetworkError(timeout)).toMatchObject({ code: 'timeout', retriable: false, sent: true });
    const reset = new TypeError('fetch failed', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
    expect(httpNetworkError(reset)).toMatchObject({ code: 'no_answer', retriable: false, sent: true });
  });

  it('finds the message id of a REST answer where one is recognisable', () => {
    expect(restMessageId({ id: 101, text: 'x' })).toBe('101');
    expect(restMessageId({ ok: true, result: { message_id: 7 } })).toBe('7');
    expect(restMessageId({ message: { id: 'm1' } })).toBe('m1');
    expect(restMessageId('ok')).toBeUndefined();
  });
});
