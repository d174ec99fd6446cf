import { STATUS_CODES } from 'node:http';

/** The API's error JSON (docs/api.md), the same in HTTP bodies and socket.io acks. */
export interface ApiErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details?: string[];
  /** With 429: how long to wait (socket.io has no `Retry-After` header). */
  retryAfterMs?: number;
}

/** Builds the error JSON of an HTTP status. */
export function apiError(statusCode: number, message: string, extra: { details?: string[]; retryAfterMs?: number } = {}): ApiErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, ...extra };
}

/** The 429 of a token over its rate (`api.rateLimit`), on HTTP and socket.io alike. */
export function rateLimitError(retryAfterMs: number): ApiErrorBody {
  return apiError(429, `rate limit of this API token exceeded (api.rateLimit); retry in ${retryAfterMs} ms`, { retryAfterMs });
}

/** The 401 message when CHATBRIDGE_API_TOKENS is empty: every call is refused, saying how to enable the API. */
export const NO_API_TOKENS = 'no API tokens are configured: set CHATBRIDGE_API_TOKENS (comma-separated) to enable the API';
