/**
 * Errors that know whether they can be retried. Retry decisions read `retriable`, never message text.
 */
export class BridgeError extends Error {
  /** Stable machine-readable code, e.g. `auth_rejected`, `invalid_namespace`, `network`. */
  readonly code: string;
  /** True when trying the same operation again later can succeed. */
  readonly retriable: boolean;

  constructor(code: string, message: string, opts: { retriable: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BridgeError';
    this.code = code;
    this.retriable = opts.retriable;
  }
}

/** Error raised by a connector while connecting or while connected. */
export class ConnectorError extends BridgeError {
  /** True when the upstream rejected our credentials (the channel goes to `auth_failed`). */
  readonly authFailure: boolean;
  /** True for a reconnect the connector asked for on purpose (token refresh, connection age limit). */
  readonly planned: boolean;

  constructor(code: string, message: string, opts: { retriable: boolean; authFailure?: boolean; planned?: boolean; cause?: unknown }) {
    super(code, message, opts);
    this.name = 'ConnectorError';
    this.authFailure = opts.authFailure ?? false;
    this.planned = opts.planned ?? false;
  }
}

/**
 * A command that did not reach a confirmed end upstream. `sent` tells whether it may have acted:
 * false = surely not sent (safe to retry when `retriable`); true = ambiguous (resolve through the echo,
 * never by sending again).
 */
export class CommandError extends BridgeError {
  readonly sent: boolean;

  constructor(code: string, message: string, opts: { retriable: boolean; sent: boolean; cause?: unknown }) {
    super(code, message, opts);
    this.name = 'CommandError';
    this.sent = opts.sent;
  }
}

/** Returns a one-line description of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
