/** Query parameters whose values are secrets wherever they appear in a URL. */
const SECRET_QUERY = /([?&](?:token|apikey|api_key|access_token|key|secret|password|bearer)=)[^&#\s"']*/gi;
/** `user:password@` in URLs. */
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s:]+:[^/@\s]+@/gi;
/** `Bearer xyz` in free text. */
const BEARER = /(\bbearer\s+)[A-Za-z0-9._~+/=-]+/gi;

/** Object keys whose values are never logged (compared case-insensitively). */
export const SECRET_KEYS = ['apikey', 'api_key', 'token', 'password', 'secret', 'authorization', 'bearer', 'key', 'sasl'];

/** Removes secrets from a free-text string (URLs with tokens, credentials, bearer tokens). */
export function redactText(text: string): string {
  return text.replace(SECRET_QUERY, '$1[REDACTED]').replace(URL_CREDENTIALS, '$1[REDACTED]@').replace(BEARER, '$1[REDACTED]');
}

/** Deep-copies a value, replacing secret-named keys and secrets inside strings. For logs only. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[…]';
  if (typeof value === 'string') return redactText(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { type: value.name, message: redactText(value.message) };
    if (value.stack) out.stack = redactText(value.stack);
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEYS.includes(k.toLowerCase()) ? '[REDACTED]' : redactValue(v, depth + 1);
    }
    return out;
  }
  return value;
}
