import type { ClientRequest, IncomingMessage } from 'node:http';
import { NodeWebSocket } from 'engine.io-client';
import type WebSocket from 'ws';
import { ConnectorError, describeError } from '../common/errors';
import { redactText } from '../common/redact';

/** Bytes of a refused handshake's body kept for classification and the message. */
const MAX_REFUSAL_BODY = 2048;
/** How long the body of a refused handshake is waited for. */
const REFUSAL_BODY_WAIT_MS = 2000;

/** A handshake the server answered with something other than 101: its status and the start of its body. */
export class HandshakeRefusal {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {}
}

/** Reads at most MAX_REFUSAL_BODY bytes of a refused handshake's answer; what does not come in time is left out. */
export function readRefusal(res: IncomingMessage): Promise<HandshakeRefusal> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(new HandshakeRefusal(res.statusCode ?? 0, Buffer.concat(chunks).subarray(0, MAX_REFUSAL_BODY).toString('utf8')));
      res.destroy();
    };
    const timer = setTimeout(done, REFUSAL_BODY_WAIT_MS);
    timer.unref?.();
    res.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX_REFUSAL_BODY) done();
    });
    res.once('end', done);
    res.once('error', done);
    res.once('close', done);
  });
}

/**
 * socket.io's Node WebSocket transport, except that a refused upgrade reports its status and body (a
 * HandshakeRefusal as the connect_error's `description`) instead of only "Unexpected server response".
 */
export class RefusalAwareWebSocket extends NodeWebSocket {
  override createSocket(uri: string, protocols: string | string[] | undefined, opts: Record<string, unknown>): WebSocket {
    // The payload cap of the connector's `transportOptions.websocket.maxPayload` (engine.io-client passes no such option on).
    const maxPayload = (this.opts as { maxPayload?: number }).maxPayload;
    const ws = super.createSocket(uri, protocols, maxPayload ? { ...opts, maxPayload } : opts) as WebSocket;
    ws.on('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
      void readRefusal(res).then((refusal) => {
        // Closes the transport, which aborts the handshake; a transport already closed (timeout) ignores it.
        this.onError('websocket error', refusal);
        if (ws.readyState === ws.CONNECTING) {
          ws.onerror = () => undefined;
          ws.terminate();
        }
      });
    });
    return ws;
  }
}

/** How one upstream's socket.io refusals read. */
export interface ConnectErrorRules {
  /** The credential, as messages name it (`API key`, `bearer`). */
  credential: string;
  /** Statuses of a refused upgrade that mean the credential was refused. */
  authStatuses: readonly number[];
  /** True for a refusal that says the upstream is not ready rather than the credential wrong. */
  notReady?(refusal: HandshakeRefusal): boolean;
  /** What an unknown namespace means for this upstream. */
  invalidNamespace: string;
}

type SocketIoError = Error & { description?: unknown; type?: unknown; data?: unknown };

/**
 * Maps a socket.io `connect_error` to a ConnectorError by its structure: an error with an own `data` is a CONNECT_ERROR
 * packet (the namespace or its middleware refused us); a `TransportError` carries the refused upgrade (status, body)
 * or the network error. Statuses 429 and 5xx, and what `rules.notReady` recognises, are an upstream not ready yet,
 * never an auth failure. The only texts compared are socket.io's own fixed ones (`Invalid namespace`, `timeout`).
 */
export function classifyConnectError(err: unknown, rules: ConnectErrorRules): ConnectorError {
  if (!(err instanceof Error)) return new ConnectorError('network', `cannot connect: ${redactText(describeError(err))}`, { retriable: true, cause: err });
  const e = err as SocketIoError;
  if (Object.prototype.hasOwnProperty.call(e, 'data')) {
    if (e.message === 'Invalid namespace') return new ConnectorError('invalid_namespace', rules.invalidNamespace, { retriable: true, cause: err });
    const status = statusIn(e.data);
    const said = redactText(e.message);
    if (status !== undefined && isNotReadyStatus(status)) return notReady(`upstream refused the connection for now (${status}): ${said}`, err);
    return new ConnectorError('auth_rejected', `upstream refused the ${rules.credential}: ${said}`, { retriable: true, authFailure: true, cause: err });
  }
  if (e.type === 'TransportError' && e.description instanceof HandshakeRefusal) return refusalError(e.description, rules, err);
  if (e.message === 'timeout') return new ConnectorError('connect_timeout', 'connection attempt timed out', { retriable: true, cause: err });
  const detail = e.type === 'TransportError' ? describeDescription(e.description) : undefined;
  return new ConnectorError('network', `cannot connect: ${redactText(detail ?? e.message)}`, { retriable: true, cause: err });
}

function refusalError(refusal: HandshakeRefusal, rules: ConnectErrorRules, cause: Error): ConnectorError {
  const body = redactText(refusal.body.trim().slice(0, 200));
  const detail = `HTTP ${refusal.status}${body ? `: ${body}` : ''}`;
  if (isNotReadyStatus(refusal.status) || rules.notReady?.(refusal)) return notReady(`upstream is not ready (${detail})`, cause);
  if (rules.authStatuses.includes(refusal.status)) {
    return new ConnectorError('auth_rejected', `upstream refused the handshake (${detail}): ${rules.credential} rejected`, { retriable: true, authFailure: true, cause });
  }
  return new ConnectorError('handshake_refused', `upstream refused the handshake (${detail})`, { retriable: true, cause });
}

function notReady(message: string, cause: Error): ConnectorError {
  return new ConnectorError('upstream_not_ready', message, { retriable: true, cause });
}

function isNotReadyStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** A numeric `code` or `status` in a CONNECT_ERROR's data, when the server put one there. */
function statusIn(data: unknown): number | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as { code?: unknown; status?: unknown };
  const v = typeof d.code === 'number' ? d.code : d.status;
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

function describeDescription(d: unknown): string | undefined {
  if (typeof d === 'string') return d;
  if (d instanceof Error) return d.message;
  if (typeof d === 'object' && d !== null && 'message' in d && typeof d.message === 'string') return d.message;
  if (typeof d === 'object' && d !== null && 'error' in d) return describeDescription(d.error);
  return undefined;
}
