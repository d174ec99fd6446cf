import {
  commandRoom, listenAckError, restMessageId, restSendRequest, sendAckError, sendFields, sendFrame,
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

describe('watchers commands: REST answers', () => {
  it('finds the message id of a REST answer where one is recognisable', () => {
    expect(restMessageId({ id: 101, text: 'x' })).toBe('101');
    expect(restMessageId({ ok: true, result: { message_id: 7 } })).toBe('7');
    expect(restMessageId({ message: { id: 'm1' } })).toBe('m1');
    expect(restMessageId('ok')).toBeUndefined();
  });
});
