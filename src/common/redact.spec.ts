import { Writable } from 'node:stream';
import { createRootLogger } from './logger';
import { redactLine, redactText } from './redact';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib3QiLCJleHAiOjE5MDAwMDAwMDB9.c2lnbmF0dXJlLXBhcnQ';

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
    ['https://h/ws?jwt=J.W.T&x=1', 'https://h/ws?jwt=[REDACTED]&x=1'],
    ['https://h/file?sig=S1G&expires=9', 'https://h/file?sig=[REDACTED]&expires=9'],
    ['https://h/file?X-Amz-Signature=S1G', 'https://h/file?X-Amz-Signature=[REDACTED]'],
    ['https://h/oauth?client_id=bridge&client_secret=CL13NT', 'https://h/oauth?client_id=bridge&client_secret=[REDACTED]'],
    ['https://h/x?signature=S1G', 'https://h/x?signature=[REDACTED]'],
    ['https://h/x?password=PW&user=u', 'https://h/x?password=[REDACTED]&user=u'],
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

  it('removes Basic credentials (base64 of user:password) and keeps the word basic in prose', () => {
    const b64 = Buffer.from('bridge:s3cr3t-pw').toString('base64');
    expect(redactText(`Authorization: Basic ${b64}`)).toBe('Authorization: Basic [REDACTED]');
    expect(redactText(`basic ${b64}`)).toBe('basic [REDACTED]');
    expect(redactText('basic auth failed')).toBe('basic auth failed');
  });

  it('removes whsec_ signing secrets and JWTs wherever they appear', () => {
    expect(redactText('secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw= rejected')).toBe('secret whsec_[REDACTED] rejected');
    expect(redactText(`token ${JWT} expired`)).toBe('token [REDACTED] expired');
    expect(redactText(`wss://h/ws/${JWT}/x`)).toBe('wss://h/ws/[REDACTED]/x');
  });

  it('redacts every occurrence in one string', () => {
    const out = redactText('a=https://h/?token=ONE b=https://h/?apikey=TWO c=Bearer THREE d=whsec_FOUR');
    expect(out).not.toMatch(/ONE|TWO|THREE|FOUR/);
  });

  it('leaves text without secrets unchanged', () => {
    for (const text of ['socket disconnected: transport close', 'https://api.zapthinker.com/sales?EIO=4&transport=websocket', 'keyId=3A55 monkey=1', 'tokens: 3', 'https://h/?keyword=x&monkey=y']) {
      expect(redactText(text)).toBe(text);
    }
  });
});

describe('redactLine (a serialized JSON log line)', () => {
  const line = (o: unknown) => JSON.stringify(o);
  const redacted = (o: unknown) => JSON.parse(redactLine(line(o))) as unknown;

  it.each([
    'secret', 'hmacSecret', 'previousSecret', 'clientSecret', 'token', 'accessToken', 'refresh_token', 'password', 'PASSWORD', 'passwd',
    'apiKey', 'apikey', 'api_key', 'x-api-key', 'X-Api-Key', 'authorization', 'Authorization', 'proxy-authorization', 'cookie', 'set-cookie',
    'signature', 'webhook-signature', 'credentials',
  ])('blanks the value of a field named %s, at any depth', (name) => {
    expect(redacted({ a: 1, [name]: 'S3CR3T', nested: { deeper: [{ [name]: 'S3CR3T' }] } })).toEqual({ a: 1, [name]: '[REDACTED]', nested: { deeper: [{ [name]: '[REDACTED]' }] } });
  });

  it('blanks whole objects, lists, numbers and nulls under a secret name and keeps the fields after them', () => {
    expect(redacted({ apiTokens: ['one', 'two'], secret: { deep: { x: 'y,}]"' } }, tokenCount: 3, password: null, after: 'kept' }))
      .toEqual({ apiTokens: '[REDACTED]', secret: '[REDACTED]', tokenCount: '[REDACTED]', password: '[REDACTED]', after: 'kept' });
  });

  it('keeps Kafka record keys and other fields named key', () => {
    const record = { topic: 'chatbridge.commands', partition: 0, key: 'wa-sales', keyId: '3A55', partitionKey: 'wa-sales/123', offset: '7' };
    expect(redactLine(line(record))).toBe(line(record));
  });

  it('does not take a quoted name inside a string value for a field', () => {
    const o = { msg: 'upstream said {"token":"abc"} and "secret": no', n: 1 };
    expect(redacted(o)).toEqual(o);
  });

  it('runs the value patterns over the message, bindings and nested strings', () => {
    const out = redactLine(line({ channel: 'c', url: 'wss://h/ws?token=T0K', msg: `connect to wss://h/?jwt=${JWT} with whsec_QUJD`, err: { stack: 'Error: Bearer B34R\n at x' } }));
    expect(out).not.toMatch(/T0K|eyJ|QUJD|B34R/);
    expect(JSON.parse(out)).toEqual({ channel: 'c', url: 'wss://h/ws?token=[REDACTED]', msg: 'connect to wss://h/?jwt=[REDACTED] with whsec_[REDACTED]', err: { stack: 'Error: Bearer [REDACTED]\n at x' } });
  });

  it('returns a line without secrets as it is', () => {
    const plain = line({ level: 'info', time: 't', service: 'chatbridge', channel: 'wa-sales', msg: 'socket connected', attempts: 3 });
    expect(redactLine(plain)).toBe(plain);
  });
});

describe('the root logger', () => {
  it('writes no configured secret, whatever the logging call looks like', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const log = createRootLogger('debug', sink);
    const child = log.child({ tokenUrl: 'https://auth/token?client_secret=CH1LD', channel: 'jwt' });
    child.info({ options: { hmacSecret: 'HM4C', previousSecret: 'PR3V', headers: { 'x-api-key': 'XK3Y', cookie: 'sid=C00K' } }, key: 'record-key' }, 'connecting to %s', 'wss://h/ws?token=F0RM4T');
    log.error({ err: new Error(`upstream rejected Bearer B34R and whsec_W3BH00K`) }, 'failed');
    const text = lines.join('');
    for (const secret of ['CH1LD', 'HM4C', 'PR3V', 'XK3Y', 'C00K', 'F0RM4T', 'B34R', 'W3BH00K']) expect(text).not.toContain(secret);
    expect(text).toContain('"key":"record-key"');
    expect(lines.map((l) => JSON.parse(l) as { level: string }).map((l) => l.level)).toEqual(['info', 'error']);
  });
});
