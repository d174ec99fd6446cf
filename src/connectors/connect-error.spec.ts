import { ConnectorError } from '../common/errors';
import { CAPTIVATE_REFUSALS } from './captivate/captivate.connector';
import { classifyConnectError, HandshakeRefusal, networkError, refusalError, type ConnectErrorRules } from './connect-error';
import { JWT_WEBSOCKET_REFUSALS } from './jwt-websocket/jwt-websocket.connector';
import { SMARTSUPP_REFUSALS } from './smartsupp/smartsupp.visitor';
import { WATCHERS_REFUSALS } from './watchers/watchers.connector';
import { ZAPTHINKER_REFUSALS } from './zapthinker/zapthinker.connector';

/** A CONNECT_ERROR as socket.io-client builds it: the server's message, and `data` as an own property (maybe undefined). */
const packetError = (message: string, data?: unknown) => Object.assign(new Error(message), { data });
/** A transport error as engine.io-client builds it. */
const transportError = (description: unknown) => Object.assign(new Error('websocket error'), { type: 'TransportError', description });
const refused = (status: number, body = '') => transportError(new HandshakeRefusal(status, body));
const rules: ConnectErrorRules = { credential: 'key', authStatuses: [401, 403], invalidNamespace: 'no namespace' };

describe('classifyConnectError', () => {
  it('a refused upgrade whose status says the server cannot answer yet (429, 5xx) is not an auth failure', () => {
    for (const status of [429, 500, 502, 503]) {
      expect(classifyConnectError(refused(status, 'busy'), rules)).toMatchObject({ code: 'upstream_not_ready', authFailure: false, retriable: true });
    }
  });

  it('a refused upgrade with an auth status is an auth failure; another status is a plain retriable refusal', () => {
    expect(classifyConnectError(refused(403, 'Forbidden'), rules)).toMatchObject({ code: 'auth_rejected', authFailure: true, retriable: true });
    expect(classifyConnectError(refused(404), rules)).toMatchObject({ code: 'handshake_refused', authFailure: false, retriable: true });
  });

  it('ZapThinker: the body tells a refused key from a server whose key lookup failed', () => {
    expect(classifyConnectError(refused(400, 'Invalid global token'), ZAPTHINKER_REFUSALS)).toMatchObject({ code: 'auth_rejected', authFailure: true });
    expect(classifyConnectError(refused(400, 'apiKey is required'), ZAPTHINKER_REFUSALS)).toMatchObject({ code: 'auth_rejected', authFailure: true });
    const notReady = classifyConnectError(refused(400, 'Authentication error'), ZAPTHINKER_REFUSALS);
    expect(notReady).toMatchObject({ code: 'upstream_not_ready', authFailure: false, retriable: true });
    expect(notReady.message).toContain('HTTP 400: Authentication error');
  });

  it('a middleware refusal (CONNECT_ERROR) is an auth failure unless its data carries a 429/5xx code', () => {
    for (const err of [packetError('invalid bearer', { code: 401 }), packetError('jwt expired')]) {
      const c = classifyConnectError(err, WATCHERS_REFUSALS);
      expect(c).toBeInstanceOf(ConnectorError);
      expect(c).toMatchObject({ code: 'auth_rejected', authFailure: true, retriable: true });
    }
    expect(classifyConnectError(packetError('try later', { code: 503 }), WATCHERS_REFUSALS)).toMatchObject({ code: 'upstream_not_ready', authFailure: false });
    expect(classifyConnectError(packetError('slow down', { status: 429 }), WATCHERS_REFUSALS)).toMatchObject({ code: 'upstream_not_ready', authFailure: false });
    expect(classifyConnectError(packetError('Invalid namespace'), WATCHERS_REFUSALS)).toMatchObject({ code: 'invalid_namespace', authFailure: false, retriable: true });
  });

  it('transport errors, timeouts and anything else are retriable network failures', () => {
    expect(classifyConnectError(transportError(new Error('connect ECONNREFUSED 127.0.0.1:1')), rules)).toMatchObject({ code: 'network', authFailure: false, retriable: true });
    expect(classifyConnectError(new Error('timeout'), rules)).toMatchObject({ code: 'connect_timeout', retriable: true });
    expect(classifyConnectError('weird', rules)).toMatchObject({ code: 'network', retriable: true });
  });

  it('never puts a credential into the message', () => {
    expect(classifyConnectError(packetError('bad token Bearer abc.def.ghi'), WATCHERS_REFUSALS).message).not.toContain('abc.def.ghi');
    expect(classifyConnectError(refused(401, 'token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln refused'), rules).message).not.toContain('eyJzdWIiOiJ4In0');
  });

  it('socket.io v4 polling: a numeric description is the refused request’s HTTP status', () => {
    expect(classifyConnectError(transportError(401), rules)).toMatchObject({ code: 'auth_rejected', authFailure: true });
    expect(classifyConnectError(transportError(503), rules)).toMatchObject({ code: 'upstream_not_ready', authFailure: false });
  });

  it('socket.io v2 (Smartsupp): the string timeout and a refusal without a status fall back to retriable non-auth failures', () => {
    expect(classifyConnectError('timeout', SMARTSUPP_REFUSALS)).toMatchObject({ code: 'connect_timeout', retriable: true, authFailure: false });
    const upgrade = classifyConnectError(transportError(new Error('Unexpected server response: 403')), SMARTSUPP_REFUSALS);
    expect(upgrade).toMatchObject({ code: 'network', retriable: true, authFailure: false });
    expect(upgrade.message).toBe('cannot connect: Unexpected server response: 403');
  });
});

describe('refusalError (raw WebSocket connectors: the same rule by HTTP status)', () => {
  const upgrade = (status: number) => new HandshakeRefusal(status, '');

  it('Captivate: 401/403 refuse the API key; a 502 is an upstream not ready, retried on the normal schedule', () => {
    expect(refusalError(upgrade(403), CAPTIVATE_REFUSALS)).toMatchObject({ code: 'auth_rejected', authFailure: true });
    expect(refusalError(upgrade(401), CAPTIVATE_REFUSALS)).toMatchObject({ code: 'auth_rejected', authFailure: true });
    expect(refusalError(upgrade(502), CAPTIVATE_REFUSALS)).toMatchObject({ code: 'upstream_not_ready', authFailure: false, retriable: true });
  });

  it('jwt-websocket: 401/403 refuse the token; 404 (wrong URL) waits the slowest delay; another status is retried', () => {
    expect(refusalError(upgrade(401), JWT_WEBSOCKET_REFUSALS)).toMatchObject({ code: 'auth_rejected', authFailure: true, retriable: true });
    expect(refusalError(upgrade(404), JWT_WEBSOCKET_REFUSALS)).toMatchObject({ code: 'handshake_refused', authFailure: false, retriable: false });
    expect(refusalError(upgrade(400), JWT_WEBSOCKET_REFUSALS)).toMatchObject({ code: 'handshake_refused', authFailure: false, retriable: true });
  });

  it('a socket error before the upgrade is a retriable network failure naming the error, or its errno code', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(networkError(refused)).toMatchObject({ code: 'network', retriable: true, authFailure: false, message: 'cannot connect: connect ECONNREFUSED 127.0.0.1:9' });
    expect(networkError({ error: { code: 'ECONNRESET' } }).message).toBe('cannot connect: ECONNRESET');
  });
});
