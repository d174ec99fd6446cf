import { apiError, type ApiErrorBody } from '../common/api-error';

/** The ack of a refused socket.io request. */
export interface ErrorAck {
  error: ApiErrorBody;
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
