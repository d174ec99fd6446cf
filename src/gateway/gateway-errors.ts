import { STATUS_CODES } from 'node:http';

/** The API's error JSON (SPEC §8), the same over socket.io acks as in HTTP bodies. */
export interface ApiErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details?: string[];
  /** With 429: how long to wait before the next command (socket.io has no `Retry-After` header). */
  retryAfterMs?: number;
}

/** The ack of a refused socket.io request. */
export interface ErrorAck {
  error: ApiErrorBody;
}

/** Builds the error JSON of an HTTP status. */
export function apiError(statusCode: number, message: string, extra: { details?: string[]; retryAfterMs?: number } = {}): ApiErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, ...extra };
}

/** A refused handshake: socket.io clients get `connect_error` with this `message` and the error JSON as `data`. */
export class HandshakeError extends Error {
  readonly data: ApiErrorBody;

  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'HandshakeError';
    this.data = apiError(statusCode, message);
  }
}
