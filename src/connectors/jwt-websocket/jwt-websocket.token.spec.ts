import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../config/config.loader';
import { readErrorFrame } from './jwt-websocket.commands';
import { JwtWebSocketOptions } from './jwt-websocket.options';
import { jwtExpiry, tokenFromBody, tokenSourceFor } from './jwt-websocket.token';

const jwt = (claims: unknown) => `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
const options = (o: Partial<JwtWebSocketOptions>): JwtWebSocketOptions => Object.assign(new JwtWebSocketOptions(), { url: 'wss://x/api/ws' }, o);

describe('jwt-websocket token', () => {
  it('reads exp without checking the signature, and nothing else', () => {
    expect(jwtExpiry(jwt({ sub: 'a', exp: 1692095400 }))).toEqual(new Date('2023-08-15T10:30:00Z'));
    for (const t of [jwt({ sub: 'a' }), jwt({ exp: '1692095400' }), 'a.b', 'a.!!!.c', '', jwt(null)]) expect(jwtExpiry(t)).toBeUndefined();
  });

  it('takes a tokenUrl answer as {token} JSON or as plain text', () => {
    expect(tokenFromBody('{"token":" abc "}')).toBe('abc');
    expect(tokenFromBody('abc\n')).toBe('abc');
    expect(tokenFromBody('"abc"')).toBe('abc');
    expect(tokenFromBody('{"access_token":"abc"}')).toBe('');
    expect(tokenFromBody('{broken')).toBe('');
  });

  it('re-reads tokenFile at every call; a missing or empty file is a retriable token_unavailable', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'jwtws-token-')), 'token');
    const source = tokenSourceFor(options({ tokenFile: file }));
    expect(source.refreshable).toBe(true);
    await expect(source.get()).rejects.toMatchObject({ code: 'token_unavailable', retriable: true, authFailure: false });
    writeFileSync(file, 'first\n');
    await expect(source.get()).resolves.toBe('first');
    writeFileSync(file, 'second');
    await expect(source.get()).resolves.toBe('second');
    writeFileSync(file, '  \n');
    await expect(source.get()).rejects.toMatchObject({ code: 'token_unavailable' });
  });

  it('fetches tokenUrl at every call; an HTTP error is a retriable token_unavailable', async () => {
    const answers: Array<[number, string]> = [[200, '{"token":"t1"}'], [200, 't2'], [503, 'busy']];
    const server: Server = createServer((_req, res) => {
      const [status, body] = answers.shift() ?? [500, ''];
      res.writeHead(status).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const source = tokenSourceFor(options({ tokenUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/t`, connectTimeoutMs: 1000 }));
      await expect(source.get()).resolves.toBe('t1');
      await expect(source.get()).resolves.toBe('t2');
      await expect(source.get()).rejects.toMatchObject({ code: 'token_unavailable', message: 'tokenUrl answered HTTP 503' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('uses the static token when no source is configured, and cannot refresh it', async () => {
    const source = tokenSourceFor(options({ token: 'static' }));
    expect(source.refreshable).toBe(false);
    await expect(source.get()).resolves.toBe('static');
  });
});

describe('jwt-websocket options', () => {
  const load = (block: Record<string, unknown>) => loadConfig({ raw: { channels: [{ id: 'support', provider: 'jwt-websocket', 'jwt-websocket': block }] }, env: {} });
  const problems = (block: Record<string, unknown>): string[] => {
    try {
      load(block);
      return [];
    } catch (err) {
      return err instanceof ConfigError ? err.problems : [String(err)];
    }
  };

  it('applies the defaults', () => {
    const o = load({ url: 'wss://api.example.com/api/ws', token: 't' }).config.channels[0].options as JwtWebSocketOptions;
    expect(o).toMatchObject({ subscribe: [], pingIntervalMs: 25_000, pongTimeoutMs: 10_000, connectTimeoutMs: 10_000, subscribeConfirmMs: 2_000, tokenRefreshMarginMs: 60_000 });
    expect(o.subscribeRetryMaxAttempts).toBeUndefined();
  });

  it('needs a token unless tokenFile or tokenUrl supplies one, and reports every problem with its path', () => {
    expect(problems({ url: 'wss://x/api/ws', tokenFile: '/var/run/secrets/ws/token' })).toEqual([]);
    expect(problems({ url: 'https://x/api/ws', tokenUrl: 'http://token-sidecar:8080/token' })).toEqual([]);
    expect(problems({ url: 'ftp://x', subscribe: 'conversation:1', pingIntervalMs: 'often', extra: 1 })).toEqual(expect.arrayContaining([
      'channels[0].jwt-websocket.url: must be a URL address',
      'channels[0].jwt-websocket.token: required',
      'channels[0].jwt-websocket.subscribe: must be an array',
      'channels[0].jwt-websocket.pingIntervalMs: must be an integer number',
      'channels[0].jwt-websocket.extra: unknown key',
    ]));
  });
});

describe('jwt-websocket error frames', () => {
  it('reads the code at the top level, under data, or as the type', () => {
    expect(readErrorFrame({ type: 'error', data: { code: 'subscription_failed', message: 'm', channel: 'c' } })).toEqual({ code: 'subscription_failed', message: 'm', channel: 'c' });
    expect(readErrorFrame({ type: 'error', code: 'unauthorized', message: 'expired' })).toEqual({ code: 'unauthorized', message: 'expired' });
    expect(readErrorFrame({ type: 'unauthorized', data: {} })).toEqual({ code: 'unauthorized' });
    expect(readErrorFrame({ code: 'internal_error' })).toEqual({ code: 'internal_error' });
    expect(readErrorFrame({ type: 'error' })).toEqual({ code: 'unknown' });
    for (const f of [{ type: 'notification', data: { code: 'unauthorized' } }, { type: 'pong' }, null, 'error', []]) expect(readErrorFrame(f)).toBeUndefined();
  });
});
