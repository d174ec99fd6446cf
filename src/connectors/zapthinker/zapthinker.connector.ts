import type { Logger } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { CommandError, ConnectorError } from '../../common/errors';
import { redactText } from '../../common/redact';
import { upstreamFetch } from '../../common/upstream-http';
import type { CommandOutcome, Connector, ConnectorContext, ConnectorHooks, UpstreamCommand } from '../connector.interface';
import { restBase, sendTextBody, sendTextOutcome, sendTextRequest, sendTextRequestError, sendTextStatusError } from './zapthinker.commands';
import type { ZapThinkerOptions } from './zapthinker.options';

/**
 * socket.io v4 client for one Evolution/ZapThinker instance namespace (`<url>/<instance>`).
 * The library's own reconnection is off: the supervisor decides when to reconnect. The socket object
 * and its listeners are created once and reused by every attempt, so no handler is ever doubled.
 * Commands go over Evolution's REST API, which does not depend on the socket (so they work in both modes).
 */
export class ZapThinkerConnector implements Connector {
  private readonly socket: Socket;
  private readonly options: ZapThinkerOptions;
  private readonly restBase: string;
  private readonly hooks: ConnectorHooks;
  private readonly log: Logger;
  private pending?: { resolve: () => void; reject: (e: ConnectorError) => void };
  private closing = false;

  constructor(ctx: ConnectorContext<ZapThinkerOptions>) {
    const { options } = ctx;
    this.options = options;
    this.restBase = restBase(options.url);
    this.hooks = ctx.hooks;
    this.log = ctx.logger;
    const base = options.url.replace(/\/+$/, '');
    this.socket = io(`${base}/${encodeURIComponent(options.instance)}`, {
      transports: ['websocket'],
      path: options.path,
      autoConnect: false,
      reconnection: false,
      forceNew: true,
      timeout: options.connectTimeoutMs,
      query: { apikey: options.apiKey },
      extraHeaders: { apikey: options.apiKey },
    });
    this.socket.on('connect', () => this.settle());
    this.socket.on('connect_error', (err: Error) => this.settle(classifyConnectError(err)));
    this.socket.on('disconnect', (reason: string) => this.onDisconnect(reason));
    // Evolution emits `(event, envelope)`; every event name is forwarded, the mapper decides.
    this.socket.onAny(this.hooks.guard('onAny', (event: string, ...args: unknown[]) => {
      this.hooks.frame({ event, payload: args.length <= 1 ? args[0] : args });
    }));
  }

  connect(): Promise<void> {
    this.closing = false;
    return new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.connect();
    });
  }

  /** Evolution subscribes server-side (`POST /websocket/set/{instance}`); nothing to send on the socket. */
  async subscribe(): Promise<void> {}

  async close(): Promise<void> {
    this.closing = true;
    this.settle(new ConnectorError('closed', 'connector closed', { retriable: false }));
    this.socket.disconnect();
  }

  /** `message.send` → `POST /message/sendText/<instance>`; resolves with the WAMessage key of the 2xx answer. */
  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    if (command.type !== 'message.send') {
      throw new CommandError('unsupported_command', `provider zapthinker does not support command type "${command.type}"`, { retriable: false, sent: false });
    }
    const body = sendTextBody(command);
    const req = sendTextRequest(this.restBase, this.options.instance, this.options.apiKey, body);
    // Evolution answers only after `delay` (it shows "composing" first): that wait is not an upstream stall.
    const timeoutMs = this.options.commandTimeoutMs + (body.delay ?? 0);
    let res: Response;
    try {
      res = await upstreamFetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw sendTextRequestError(err);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw sendTextStatusError(res.status, text);
    return sendTextOutcome(parseJson(text));
  }

  private settle(error?: ConnectorError): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (error) {
      // A failed attempt leaves the manager half-open; reset it so the next connect() starts clean.
      this.socket.disconnect();
      p.reject(error);
    } else p.resolve();
  }

  private onDisconnect(reason: string): void {
    if (this.closing || this.pending) return;
    this.log.warn({ reason }, 'zapthinker socket disconnected');
    this.hooks.lost(new ConnectorError('disconnected', `socket disconnected: ${reason}`, { retriable: true }));
  }
}

/** Maps a socket.io connect_error to a ConnectorError. Classified by structured fields, not prose. */
export function classifyConnectError(err: Error & { description?: unknown; type?: string }): ConnectorError {
  // Namespaces are created lazily after an upstream restart: retry (upstreams.md A1.1, Evolution #1101).
  if (err.message === 'Invalid namespace') {
    return new ConnectorError('invalid_namespace', 'upstream has not created the instance namespace yet', { retriable: true, cause: err });
  }
  const status = httpStatusOf(err.description);
  // Evolution checks the key in allowRequest; engine.io answers a refused websocket upgrade with HTTP 400
  // whatever the reason (polling gets 403). A refused handshake on this path is a rejected key.
  if (status === 400 || status === 401 || status === 403) {
    return new ConnectorError('auth_rejected', `upstream refused the handshake (HTTP ${status}): API key rejected`, { retriable: true, authFailure: true, cause: err });
  }
  if (err.message === 'timeout') return new ConnectorError('connect_timeout', 'connection attempt timed out', { retriable: true, cause: err });
  const detail = status ? `HTTP ${status}` : redactText(describeDescription(err.description) ?? err.message);
  return new ConnectorError('network', `cannot connect: ${detail}`, { retriable: true, cause: err });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text || undefined;
  }
}

/** The websocket transport reports a refused upgrade as an error whose message names the status. */
function httpStatusOf(description: unknown): number | undefined {
  const text = describeDescription(description);
  const m = text ? /Unexpected server response: (\d{3})/.exec(text) : null;
  return m ? Number(m[1]) : undefined;
}

function describeDescription(d: unknown): string | undefined {
  if (!d) return undefined;
  if (typeof d === 'string') return d;
  if (d instanceof Error) return d.message;
  if (typeof d === 'object' && 'message' in d && typeof (d as { message: unknown }).message === 'string') return (d as { message: string }).message;
  if (typeof d === 'object' && 'error' in d) return describeDescription((d as { error: unknown }).error);
  return undefined;
}
