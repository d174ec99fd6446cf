import { redactText, redactValue } from './redact';

describe('redactText', () => {
  it.each([
    ['wss://api.zapthinker.com/socket.io/?token=abc.def-123&EIO=4', 'wss://api.zapthinker.com/socket.io/?token=[REDACTED]&EIO=4'],
    ['https://host/x?EIO=4&apikey=K3Y&transport=websocket', 'https://host/x?EIO=4&apikey=[REDACTED]&transport=websocket'],
    ['https://host/x?APIKEY=K3Y', 'https://host/x?APIKEY=[REDACTED]'],
    ['https://host/x?ApiKey=K3Y#frag', 'https://host/x?ApiKey=[REDACTED]#frag'],
    ['https://host/x?api_key=K3Y', 'https://host/x?api_key=[REDACTED]'],
    ['https://host/x?access_token=T0K', 'https://host/x?access_token=[REDACTED]'],
    ['https://host/x?Token=T0K', 'https://host/x?Token=[REDACTED]'],
    ['https://widget?key=SM4RTSUPP', 'https://widget?key=[REDACTED]'],
    ['cannot connect to "wss://h/ws?token=T0K": refused', 'cannot connect to "wss://h/ws?token=[REDACTED]": refused'],
  ])('removes secret query parameters: %s', (input, expected) => {
    expect(redactText(input)).toBe(expected);
  });

  it('removes user:password@ from URLs and keeps the host', () => {
    expect(redactText('connecting to https://bridge:pa55w0rd@kafka.example.com:9093/path')).toBe('connecting to https://[REDACTED]@kafka.example.com:9093/path');
    expect(redactText('amqp://guest:guest@localhost')).toBe('amqp://[REDACTED]@localhost');
  });

  it('removes Bearer tokens in any case', () => {
    expect(redactText('Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig_-+/=')).toBe('Authorization: Bearer [REDACTED]');
    expect(redactText('got bearer abc123 from cache')).toBe('got bearer [REDACTED] from cache');
    expect(redactText('BEARER xyz')).toBe('BEARER [REDACTED]');
  });

  it('redacts every occurrence in one string', () => {
    const out = redactText('a=https://h/?token=ONE b=https://h/?apikey=TWO c=Bearer THREE');
    expect(out).not.toMatch(/ONE|TWO|THREE/);
  });

  it('leaves text without secrets unchanged', () => {
    for (const text of ['socket disconnected: transport close', 'https://api.zapthinker.com/sales?EIO=4&transport=websocket', 'keyId=3A55 monkey=1', 'tokens: 3']) {
      expect(redactText(text)).toBe(text);
    }
  });
});

describe('redactValue', () => {
  it('blanks secret-named keys at any depth, whatever their case, and keeps the rest', () => {
    const input = {
      channel: 'wa-sales',
      apiKey: 'K3Y',
      options: { url: 'https://api.zapthinker.com', Token: 'T0K', nested: { PASSWORD: 'pw', secret: { deep: 'x' } } },
      headers: { Authorization: 'Bearer abc', apikey: 'K3Y', 'content-type': 'application/json' },
      sasl: { mechanism: 'plain', username: 'u', password: 'p' },
      list: [{ bearer: 'b' }, { key: 'k', keyId: 'visible' }],
    };
    expect(redactValue(input)).toEqual({
      channel: 'wa-sales',
      apiKey: '[REDACTED]',
      options: { url: 'https://api.zapthinker.com', Token: '[REDACTED]', nested: { PASSWORD: '[REDACTED]', secret: '[REDACTED]' } },
      headers: { Authorization: '[REDACTED]', apikey: '[REDACTED]', 'content-type': 'application/json' },
      sasl: '[REDACTED]',
      list: [{ bearer: '[REDACTED]' }, { key: '[REDACTED]', keyId: 'visible' }],
    });
  });

  it('redacts secrets inside string values too', () => {
    expect(redactValue({ url: 'wss://h/ws?token=T0K', note: ['Bearer abc'] })).toEqual({ url: 'wss://h/ws?token=[REDACTED]', note: ['Bearer [REDACTED]'] });
  });

  it('returns a copy and does not touch the input', () => {
    const input = { apiKey: 'K3Y', nested: { token: 'T' } };
    const out = redactValue(input);
    expect(input).toEqual({ apiKey: 'K3Y', nested: { token: 'T' } });
    expect(out).not.toBe(input);
  });

  it('passes primitives through and cuts off very deep values instead of recursing forever', () => {
    expect(redactValue(42)).toBe(42);
    expect(redactValue(null)).toBeNull();
    expect(redactValue(undefined)).toBeUndefined();
    type Deep = { next?: Deep; token?: string };
    const deep: Deep = {};
    let cur = deep;
    for (let i = 0; i < 50; i++) cur = cur.next = { token: 'T0K' };
    expect(JSON.stringify(redactValue(deep))).not.toContain('T0K');
  });
});
