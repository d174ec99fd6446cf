import { readFile } from 'node:fs/promises';
import { ConnectorError, describeError } from '../../common/errors';
import { describeStatus, upstreamHttp } from '../../common/upstream-http';
import { isRecord } from '../mapper';
import type { JwtWebSocketOptions } from './jwt-websocket.options';

/** Where the JWT comes from: re-read at every connect, so a rotated Secret or a refreshed token is picked up. */
export interface TokenSource {
  /** True when a fresh token can be obtained (tokenFile/tokenUrl), so a near `exp` is refreshed by reconnecting. */
  readonly refreshable: boolean;
  /** The token to connect with; rejects with a retriable ConnectorError (`token_unavailable`). */
  get(): Promise<string>;
}

/** Builds the token source the options describe: tokenFile, else tokenUrl, else the static token. */
export function tokenSourceFor(options: JwtWebSocketOptions): TokenSource {
  const { tokenFile, tokenUrl, token, connectTimeoutMs } = options;
  if (tokenFile !== undefined) return { refreshable: true, get: () => readTokenFile(tokenFile) };
  if (tokenUrl !== undefined) return { refreshable: true, get: () => fetchToken(tokenUrl, connectTimeoutMs) };
  return { refreshable: false, get: async () => token ?? '' };
}

async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw unavailable(`cannot read tokenFile: ${describeError(err)}`, err);
  }
  return nonEmpty(text.trim(), 'tokenFile is empty');
}

/** GETs tokenUrl; every failure, a non-2xx answer included, is a retriable `token_unavailable`. */
async function fetchToken(url: string, timeoutMs: number): Promise<string> {
  let body: string | undefined;
  try {
    const status = (code: number): ConnectorError => unavailable(`tokenUrl answered ${describeStatus(code)}`);
    ({ data: body } = await upstreamHttp.request({ url, headers: { accept: 'application/json, text/plain' }, timeout: timeoutMs, upstream: { what: 'tokenUrl request', status } }));
  } catch (err) {
    throw err instanceof ConnectorError ? err : unavailable(describeError(err), err);
  }
  return nonEmpty(tokenFromBody(body ?? ''), 'tokenUrl returned no token');
}

/** The token in a tokenUrl answer: `{"token": "…"}` JSON or the body as plain text. */
export function tokenFromBody(body: string): string {
  const text = body.trim();
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      return isRecord(parsed) && typeof parsed.token === 'string' ? parsed.token.trim() : '';
    } catch {
      return '';
    }
  }
  return text.replace(/^"|"$/g, '');
}

/** The `exp` claim (unix seconds) of a JWT, read without verifying the signature; undefined when absent or unreadable. */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    const exp = isRecord(claims) ? claims.exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? new Date(exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}

function nonEmpty(token: string, problem: string): string {
  if (!token) throw unavailable(problem);
  return token;
}

function unavailable(message: string, cause?: unknown): ConnectorError {
  return new ConnectorError('token_unavailable', message, { retriable: true, cause });
}
