import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { isValidSecret, secretKey, signHeaders, signatureV1, WebhookSigner } from './webhook.signer';

const secretOf = (bytes: number) => `whsec_${randomBytes(bytes).toString('base64')}`;

describe('webhook signer (Standard Webhooks v1)', () => {
  const body = JSON.stringify({ specversion: '1.0', id: '0123456789abcdef0123456789abcdef', type: 'chatbridge.message.received', data: { text: 'olá ✓' } });
  const id = '0123456789abcdef0123456789abcdef';

  it('matches the reference library byte for byte', () => {
    const secret = secretOf(32);
    const at = new Date();
    const ts = Math.floor(at.getTime() / 1000);
    expect(signHeaders([secretKey(secret)], id, ts, body)['webhook-signature']).toBe(new Webhook(secret).sign(id, at, body));
  });

  it('matches the Standard Webhooks spec test vector', () => {
    // From the spec's reference implementations' tests.
    const key = secretKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    const sig = signatureV1(key, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('produces headers that `standardwebhooks` verifies, with the attempt time as webhook-timestamp', () => {
    const secret = secretOf(24);
    const at = new Date();
    const headers = new WebhookSigner(secret).sign(id, body, at);
    expect(headers['webhook-id']).toBe(id);
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(at.getTime() / 1000)));
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
  });

  it('signs with both secrets during a rotation: each verifies on its own', () => {
    const current = secretOf(64);
    const previous = secretOf(32);
    const headers = new WebhookSigner(current, previous).sign(id, body);
    const parts = headers['webhook-signature'].split(' ');
    expect(parts).toHaveLength(2);
    for (const p of parts) expect(p).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(() => new Webhook(current).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(previous).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(secretOf(32)).verify(body, { ...headers })).toThrow();
  });

  it('fails verification when the body or the timestamp changed', () => {
    const secret = secretOf(32);
    const headers = new WebhookSigner(secret).sign(id, body);
    expect(() => new Webhook(secret).verify(`${body} `, { ...headers })).toThrow();
    const old = new WebhookSigner(secret).sign(id, body, new Date(Date.now() - 10 * 60_000));
    expect(() => new Webhook(secret).verify(body, { ...old })).toThrow(/timestamp/i);
  });

  it('accepts whsec_ + strict base64 of 24..64 bytes only', () => {
    expect(isValidSecret(secretOf(24))).toBe(true);
    expect(isValidSecret(secretOf(64))).toBe(true);
    expect(isValidSecret(secretOf(23))).toBe(false);
    expect(isValidSecret(secretOf(65))).toBe(false);
    expect(isValidSecret(randomBytes(32).toString('base64'))).toBe(false);
    expect(isValidSecret('whsec_not base64 at all!!!!!!!!!!!!!!!!!!!!!')).toBe(false);
    // base64url ('_' and '-') is not what the reference libraries decode.
    expect(isValidSecret(`whsec_${Buffer.alloc(33, 0xff).toString('base64url')}`)).toBe(false);
    expect(isValidSecret(`whsec_${Buffer.alloc(33, 0xff).toString('base64')}`)).toBe(true);
  });

  it('refuses ids with a dot and never quotes a secret in its errors', () => {
    expect(() => signHeaders([secretKey(secretOf(32))], 'a.b', 1, body)).toThrow(/must not contain/);
    const bad = 'whsec_tooShortButSecret';
    expect(() => secretKey(bad)).toThrow();
    try {
      secretKey(bad);
    } catch (err) {
      expect(String(err)).not.toContain('tooShortButSecret');
    }
  });
});
