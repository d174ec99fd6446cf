import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerToken, TokenSet } from '../common/token-match';
import type { InboundAuthConfig } from '../config/config.schema';

/** Whether an inbound post proved it comes from the channel's upstream, and if not, what was wrong. */
export type InboundAuthResult = { ok: true } | { ok: false; reason: string };

/**
 * Checks one inbound post against the channel's `inbound` block (pure but for a cache of the hashed token). Token: in `header` or as
 * `Authorization: Bearer <token>`, compared in constant time (TokenSet). HMAC: SHA-256
 * of the raw body keyed with `hmacSecret`, in `hmacHeader` as `sha256=<hex>`, bare hex or base64.
 */
export function verifyInbound(cfg: InboundAuthConfig, headers: IncomingHttpHeaders, rawBody: Buffer): InboundAuthResult {
  if (cfg.hmacSecret !== undefined) return verifyHmac(cfg.hmacSecret, cfg.hmacHeader, headers, rawBody);
  if (cfg.token !== undefined) return verifyToken(tokenSetOf(cfg, cfg.token), cfg.header, headers);
  // The loader admits no inbound block without one of them; refuse rather than accept anything.
  return { ok: false, reason: 'no inbound credentials are configured for this channel' };
}

/**
 * What can be checked before the body is read: a token whole; for HMAC, that the signature header is there and is a
 * SHA-256 signature at all. A post refused here is answered without reading its body.
 */
export function verifyBeforeBody(cfg: InboundAuthConfig, headers: IncomingHttpHeaders): InboundAuthResult {
  if (cfg.hmacSecret !== undefined) {
    const value = signatureOf(cfg.hmacHeader, headers);
    if (!value) return missingSignature(cfg.hmacHeader);
    return decodeSignature(value) ? { ok: true } : mismatch(cfg.hmacHeader);
  }
  return verifyInbound(cfg, headers, Buffer.alloc(0));
}

/** True when the check needs the body (HMAC): verifyBeforeBody settles token channels alone. */
export function needsBody(cfg: InboundAuthConfig): boolean {
  return cfg.hmacSecret !== undefined;
}

/** The channel's token, hashed once per config (not once per post). */
const tokenSets = new WeakMap<InboundAuthConfig, TokenSet>();
function tokenSetOf(cfg: InboundAuthConfig, token: string): TokenSet {
  let set = tokenSets.get(cfg);
  if (!set) tokenSets.set(cfg, (set = new TokenSet([token])));
  return set;
}

function verifyToken(tokens: TokenSet, header: string, headers: IncomingHttpHeaders): InboundAuthResult {
  const inHeader = single(headers[header.toLowerCase()]);
  const bearer = bearerToken(single(headers.authorization));
  const given = [inHeader, bearer].filter((v): v is string => v !== undefined && v !== '');
  if (!given.length) return { ok: false, reason: `missing token: send it in the ${header} header or as Authorization: Bearer <token>` };
  return tokens.matchesAny(given) ? { ok: true } : { ok: false, reason: 'invalid token' };
}

function verifyHmac(secret: string, header: string, headers: IncomingHttpHeaders, rawBody: Buffer): InboundAuthResult {
  const value = signatureOf(header, headers);
  if (!value) return missingSignature(header);
  const given = decodeSignature(value);
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) return mismatch(header);
  return { ok: true };
}

function signatureOf(header: string, headers: IncomingHttpHeaders): string | undefined {
  return single(headers[header.toLowerCase()])?.trim() || undefined;
}

function missingSignature(header: string): InboundAuthResult {
  return { ok: false, reason: `missing ${header} header: HMAC-SHA256 of the raw body, as sha256=<hex>` };
}

function mismatch(header: string): InboundAuthResult {
  return { ok: false, reason: `${header} does not match the body (expected HMAC-SHA256 of the raw body as sha256=<hex>, hex or base64)` };
}

/** `sha256=` and 64 hex characters, or base64 / base64url of 32 bytes; anything else is not a SHA-256 signature. */
function decodeSignature(value: string): Buffer | undefined {
  const text = value.replace(/^sha256=/i, '');
  if (/^[0-9a-f]{64}$/i.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return undefined;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
