/**
 * Secrets kept out of logs and error texts. Two kinds of rule:
 * - by NAME: a field whose name contains one of SECRET_NAME's words (any case, `-`/`_` allowed inside `api key`)
 *   has its whole value replaced, whatever it is (string, number, object, list). A field named just `key` (a Kafka
 *   record key, a partition key) is not a secret and stays.
 * - by VALUE: anywhere in any text, `whsec_…` signing secrets, `Bearer …`, `Basic <user:password>`, JWTs,
 *   `user:password@` in URLs and secret-named URL query parameters (`?token=`, `jwt=`, `sig=`, `client_secret=`…).
 */

/** Words that make a field name secret (hmacSecret, previousSecret, accessToken, x-api-key, Set-Cookie…). */
export const SECRET_NAME = /secret|token|passw(?:or)?d|api[-_]?key|authori[sz]ation|cookie|signature|credential/i;

const REDACTED = '[REDACTED]';
/** URL query parameters whose values are secrets: any secret-named one, plus the usual short names. */
const SECRET_QUERY = /([?&](?:[\w.~-]*(?:secret|token|passw(?:or)?d|api[-_]?key|signature|credential)[\w.~-]*|jwt|sig|key|bearer|auth|pwd)=)[^&#\s"'\\]*/gi;
/** `user:password@` in URLs. */
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s:"\\]+:[^/@\s"\\]+@/gi;
/** `Bearer xyz` in free text. */
const BEARER = /(\bbearer\s+)[A-Za-z0-9._~+/=-]+/gi;
/** `Basic <base64>`: redacted when the base64 decodes to `user:password` (so "basic auth failed" stays). */
const BASIC = /(\bbasic\s+)([A-Za-z0-9+/]{4,}={0,2})/gi;
/** Standard Webhooks signing secrets. */
const WHSEC = /\bwhsec_[A-Za-z0-9+/=_-]+/g;
/** A JWT anywhere (header and claims are base64url JSON, so both start with `eyJ`). */
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
/** A field of a JSON line whose name is secret: `{"…":` or `,"…":` (a quote inside a string value is escaped). */
const SECRET_FIELD = new RegExp(`[{,]"[^"\\\\]*(?:${SECRET_NAME.source})[^"\\\\]*":`, 'gi');
/** Cheap first look at a JSON line: most lines hold none of these and are written as they are. */
const SUSPECT = new RegExp(`${SECRET_NAME.source}|whsec_|bearer|basic|eyJ|:\\/\\/[^/\\s"]*@|[?&](?:jwt|sig|key|auth|pwd)=`, 'i');

/** Removes secrets from a free-text string (URLs with tokens, credentials, bearer/basic tokens, JWTs, whsec_ secrets). */
export function redactText(text: string): string {
  return text
    .replace(SECRET_QUERY, `$1${REDACTED}`)
    .replace(URL_CREDENTIALS, `$1${REDACTED}@`)
    .replace(BEARER, `$1${REDACTED}`)
    .replace(BASIC, (all, prefix: string, b64: string) => (Buffer.from(b64, 'base64').toString('latin1').includes(':') ? `${prefix}${REDACTED}` : all))
    .replace(WHSEC, `whsec_${REDACTED}`)
    .replace(JWT, REDACTED);
}

/**
 * Redacts one serialized JSON log line (pino's output, before it is written): secret-named fields lose their
 * value, then the value patterns run over the whole line (message, bindings, nested fields, error stacks alike).
 * One regex pass for the common line without secrets; no walk over the logged objects.
 */
export function redactLine(line: string): string {
  if (!SUSPECT.test(line)) return line;
  let out = '';
  let from = 0;
  SECRET_FIELD.lastIndex = 0;
  for (let m = SECRET_FIELD.exec(line); m; m = SECRET_FIELD.exec(line)) {
    const start = m.index + m[0].length;
    const end = valueEnd(line, start);
    out += `${line.slice(from, start)}"${REDACTED}"`;
    from = end;
    SECRET_FIELD.lastIndex = end;
  }
  return redactText(out + line.slice(from));
}

/** Where the JSON value starting at `i` ends: a string, a balanced object/list, or a bare number/literal. */
function valueEnd(s: string, i: number): number {
  if (s[i] === '"') return stringEnd(s, i);
  if (s[i] !== '{' && s[i] !== '[') {
    let j = i;
    while (j < s.length && s[j] !== ',' && s[j] !== '}' && s[j] !== ']') j++;
    return j;
  }
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const c = s[j];
    if (c === '"') j = stringEnd(s, j) - 1;
    else if (c === '{' || c === '[') depth++;
    else if ((c === '}' || c === ']') && --depth === 0) return j + 1;
  }
  return s.length;
}

/** The index after the closing quote of the JSON string opening at `i`. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '"') return j + 1;
  }
  return s.length;
}
