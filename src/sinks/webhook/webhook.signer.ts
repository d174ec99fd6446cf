import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks 1.0 signing (symmetric, `v1`). Pure: the same inputs always give the same headers.
 *
 * signed content = `${webhook-id}.${webhook-timestamp}.${raw body}`
 * signature      = base64(HMAC-SHA256(key, signed content)), key = base64-decoded part after `whsec_`
 * header         = `v1,<signature>`, several space-separated while a secret is being rotated
 */

const PREFIX = 'whsec_';
/** Strict base64 (standard alphabet, padded): what the reference libraries decode. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Key length allowed by the spec, in bytes. */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** The three headers of one attempt. */
export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** True for `whsec_` + strict base64 of 24..64 bytes. */
export function isValidSecret(secret: string): boolean {
  if (!secret.startsWith(PREFIX)) return false;
  const b64 = secret.slice(PREFIX.length);
  if (!BASE64.test(b64)) return false;
  const bytes = Buffer.from(b64, 'base64').length;
  return bytes >= MIN_KEY_BYTES && bytes <= MAX_KEY_BYTES;
}

/** The HMAC key of a `whsec_` secret. Throws (without quoting the secret) when it is not one. */
export function secretKey(secret: string): Buffer {
  if (!isValidSecret(secret)) throw new TypeError('not a whsec_ secret of 24..64 bytes');
  return Buffer.from(secret.slice(PREFIX.length), 'base64');
}

/** `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` for one key. */
export function signatureV1(key: Buffer, id: string, timestamp: number, body: string): string {
  // Fed in two parts: the body is not copied into one long signed-content string first.
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
}

/**
 * Signs with every key given (current first, then the one being rotated out).
 * Ids and timestamps must not contain `.` (the spec's rule): event ids are hex, timestamps integers.
 */
export function signHeaders(keys: readonly Buffer[], id: string, timestamp: number, body: string): SignatureHeaders {
  if (!keys.length) throw new TypeError('at least one signing key is required');
  if (id.includes('.') || !id) throw new TypeError('webhook-id must be non-empty and must not contain "."');
  if (!Number.isInteger(timestamp) || timestamp < 0) throw new TypeError('webhook-timestamp must be integer unix seconds');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': keys.map((k) => signatureV1(k, id, timestamp, body)).join(' '),
  };
}

/** Signing for one endpoint: its keys decoded once at start. */
export class WebhookSigner {
  private readonly keys: Buffer[];

  constructor(secret: string, previousSecret?: string) {
    this.keys = [secretKey(secret), ...(previousSecret ? [secretKey(previousSecret)] : [])];
  }

  /** The headers of one attempt at `at` (the attempt's own time: `webhook-timestamp` changes on every retry). */
  sign(id: string, body: string, at: Date = new Date()): SignatureHeaders {
    return signHeaders(this.keys, id, Math.floor(at.getTime() / 1000), body);
  }
}
