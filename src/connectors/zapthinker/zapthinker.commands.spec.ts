import { CommandError } from '../../common/errors';
import type { UpstreamCommand } from '../connector.interface';
import { restBase, sendTextBody, sendTextOutcome, sendTextRequest } from './zapthinker.commands';

const cmd = (fields: Record<string, unknown>): UpstreamCommand => ({ commandId: 'c1', type: 'message.send', ...fields });
const thrown = (fn: () => unknown): CommandError => {
  try {
    fn();
  } catch (err) {
    return err as CommandError;
  }
  throw new Error('did not throw');
};

describe('zapthinker commands: sendText request', () => {
  it('uses http(s) for REST when the channel url is the socket base, without trailing slashes', () => {
    expect(restBase('wss://api.zapthinker.com/')).toBe('https://api.zapthinker.com');
    expect(restBase('ws://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(restBase('WSS://host')).toBe('https://host');
    expect(restBase('https://api.zapthinker.com')).toBe('https://api.zapthinker.com');
    expect(restBase('http://proxy/evolution//')).toBe('http://proxy/evolution');
  });

  it('builds POST /message/sendText/<instance> with the apikey header and only number and text', () => {
    const body = sendTextBody(cmd({ conversationId: '5511999999999', text: 'Olá!', metadata: { crm: 7 }, quoted: { key: { id: 'x' } } }));
    expect(sendTextRequest('https://api.zapthinker.com', 'sales team', 'tok-1', body)).toEqual({
      url: 'https://api.zapthinker.com/message/sendText/sales%20team',
      method: 'POST',
      headers: { 'Content-Type': 'application/json', apikey: 'tok-1' },
      body: '{"number":"5511999999999","text":"Olá!"}',
    });
  });

  it('passes delay and linkPreview through when given, and group JIDs as they are', () => {
    expect(sendTextBody(cmd({ conversationId: '120363025246125888@g.us', text: 'hi', delay: 1200, linkPreview: false }))).toEqual({
      number: '120363025246125888@g.us', text: 'hi', delay: 1200, linkPreview: false,
    });
  });

  it.each([
    [{ text: 'hi' }, /conversationId/],
    [{ conversationId: '', text: 'hi' }, /conversationId/],
    [{ conversationId: '5511', text: '' }, /non-empty text/],
    [{ conversationId: '5511', text: '   ' }, /non-empty text/],
    [{ conversationId: '5511', text: 7 }, /non-empty text/],
    [{ conversationId: '5511', text: 'hi', delay: 1.5 }, /delay/],
    [{ conversationId: '5511', text: 'hi', delay: -1 }, /delay/],
    [{ conversationId: '5511', text: 'hi', delay: '100' }, /delay/],
    [{ conversationId: '5511', text: 'hi', linkPreview: 'yes' }, /linkPreview/],
  ])('refuses %j as invalid_command, not sent, not retriable', (fields, message) => {
    const err = thrown(() => sendTextBody(cmd(fields)));
    expect(err).toBeInstanceOf(CommandError);
    expect(err).toMatchObject({ code: 'invalid_command', sent: false, retriable: false });
    expect(err.message).toMatch(message);
  });
});

describe('zapthinker commands: reading answers', () => {
  it('takes key.id and key.remoteJid of the 201 WAMessage and keeps the body as the result', () => {
    const body = { key: { remoteJid: '553198296801@s.whatsapp.net', fromMe: true, id: 'BAE594145F4C59B4' }, message: { extendedTextMessage: { text: 'Olá!' } }, messageTimestamp: '1717689097', status: 'PENDING' };
    expect(sendTextOutcome(body)).toEqual({ upstreamMessageId: 'BAE594145F4C59B4', conversationId: '553198296801@s.whatsapp.net', result: body });
  });

  it('still confirms a 2xx whose body it cannot read', () => {
    expect(sendTextOutcome(undefined)).toEqual({ result: null });
    expect(sendTextOutcome('<html>ok</html>')).toEqual({ result: '<html>ok</html>' });
    expect(sendTextOutcome({ key: { id: 'K1' } })).toEqual({ upstreamMessageId: 'K1', result: { key: { id: 'K1' } } });
  });
});
