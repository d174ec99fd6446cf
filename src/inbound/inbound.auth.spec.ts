import { createHmac } from 'node:crypto';
import { plainToInstance } from 'class-transformer';
import { InboundAuthConfig } from '../config/config.schema';
import { needsBody, verifyBeforeBody, verifyInbound } from './inbound.auth';

const TOKEN = 'tok-0123456789abcdef';
const SECRET = 'hmac-secret-0123456789';
const body = Buffer.from('{"event":"messages.upsert","data":{}}');
const cfg = (o: Partial<InboundAuthConfig>) => plainToInstance(InboundAuthConfig, o, { exposeDefaultValues: true });
const mac = (b: Buffer, secret = SECRET) => createHmac('sha256', secret).update(b).digest();

describe('verifyInbound: shared token', () => {
  const token = cfg({ token: TOKEN });

  it('accepts the token in the default header (any case) or as a bearer token', () => {
    expect(verifyInbound(token, { 'x-chatbridge-token': TOKEN }, body)).toEqual({ ok: true });
    expect(verifyInbound(token, { authorization: `Bearer ${TOKEN}` }, body)).toEqual({ ok: true });
    expect(verifyInbound(token, { authorization: `bearer ${TOKEN}`, 'x-chatbridge-token': 'wrong' }, body)).toEqual({ ok: true });
  });

  it('reads a configured header name', () => {
    const custom = cfg({ token: TOKEN, header: 'X-Evolution-Token' });
    expect(verifyInbound(custom, { 'x-evolution-token': TOKEN }, body)).toEqual({ ok: true });
    expect(verifyInbound(custom, { 'x-chatbridge-token': TOKEN }, body)).toEqual({ ok: false, reason: expect.stringContaining('missing token: send it in the X-Evolution-Token header') });
  });

  it('refuses a missing, wrong, prefixed or truncated token', () => {
    expect(verifyInbound(token, {}, body)).toEqual({ ok: false, reason: expect.stringContaining('missing token') });
    for (const t of ['wrong', `${TOKEN}x`, TOKEN.slice(0, -1), ` ${TOKEN}`]) {
      expect(verifyInbound(token, { 'x-chatbridge-token': t }, body)).toEqual({ ok: false, reason: 'invalid token' });
    }
    expect(verifyInbound(token, { authorization: `Basic ${TOKEN}` }, body)).toEqual({ ok: false, reason: expect.stringContaining('missing token') });
  });
});

describe('verifyInbound: HMAC-SHA256 of the raw body', () => {
  const hmac = cfg({ hmacSecret: SECRET });

  it('accepts sha256=<hex>, bare hex (any case), base64 and base64url', () => {
    const sig = mac(body);
    for (const v of [`sha256=${sig.toString('hex')}`, sig.toString('hex').toUpperCase(), sig.toString('base64'), sig.toString('base64url')]) {
      expect(verifyInbound(hmac, { 'x-signature': v }, body)).toEqual({ ok: true });
    }
  });

  it('is computed over the exact bytes: the same JSON re-serialised does not match', () => {
    const spaced = Buffer.from('{"event": "messages.upsert", "data": {}}');
    expect(verifyInbound(hmac, { 'x-signature': `sha256=${mac(body).toString('hex')}` }, spaced)).toEqual({ ok: false, reason: expect.stringContaining('does not match the body') });
  });

  it('refuses a missing header, another secret, a truncated or non-hex signature', () => {
    expect(verifyInbound(hmac, {}, body)).toEqual({ ok: false, reason: expect.stringContaining('missing x-signature header') });
    const wrong = [`sha256=${mac(body, 'other-secret-0123456789').toString('hex')}`, mac(body).toString('hex').slice(0, 62), 'sha256=zz', 'sha1=abc'];
    for (const v of wrong) expect(verifyInbound(hmac, { 'x-signature': v }, body)).toEqual({ ok: false, reason: expect.stringContaining('does not match') });
  });

  it('uses a configured header name', () => {
    const custom = cfg({ hmacSecret: SECRET, hmacHeader: 'x-hub-signature-256' });
    expect(verifyInbound(custom, { 'x-hub-signature-256': `sha256=${mac(body).toString('hex')}` }, body)).toEqual({ ok: true });
  });
});

describe('verifyInbound: no credentials', () => {
  it('refuses everything when neither a token nor a secret is set (the loader never builds such a block)', () => {
    expect(verifyInbound(cfg({}), { 'x-chatbridge-token': '', authorization: 'Bearer x' }, body)).toEqual({ ok: false, reason: expect.stringContaining('no inbound credentials') });
  });
});

describe('verifyBeforeBody: what the headers alone settle, before any body byte is read', () => {
  it('settles a token channel whole: the same answers as with the body', () => {
    const token = cfg({ token: TOKEN });
    expect(needsBody(token)).toBe(false);
    expect(verifyBeforeBody(token, { 'x-chatbridge-token': TOKEN })).toEqual({ ok: true });
    expect(verifyBeforeBody(token, { authorization: `Bearer ${TOKEN}` })).toEqual({ ok: true });
    expect(verifyBeforeBody(token, {})).toEqual({ ok: false, reason: expect.stringContaining('missing token') });
    expect(verifyBeforeBody(token, { 'x-chatbridge-token': 'wrong' })).toEqual({ ok: false, reason: 'invalid token' });
  });

  it('refuses an HMAC post without a signature, or with one that is no SHA-256 signature; a well-formed one waits for the body', () => {
    const hmac = cfg({ hmacSecret: SECRET });
    expect(needsBody(hmac)).toBe(true);
    expect(verifyBeforeBody(hmac, {})).toEqual({ ok: false, reason: expect.stringContaining('missing x-signature header') });
    expect(verifyBeforeBody(hmac, { 'x-signature': '  ' })).toEqual({ ok: false, reason: expect.stringContaining('missing x-signature header') });
    for (const v of ['sha256=zz', 'sha1=abc', 'a'.repeat(63)]) expect(verifyBeforeBody(hmac, { 'x-signature': v })).toEqual({ ok: false, reason: expect.stringContaining('does not match') });
    // Any well-formed signature passes this step; only the body can tell whether it is right.
    expect(verifyBeforeBody(hmac, { 'x-signature': `sha256=${mac(body, 'other-secret-0123456789').toString('hex')}` })).toEqual({ ok: true });
  });
});
