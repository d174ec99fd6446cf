import type { Logger } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { ConnectorError } from '../../common/errors';
import { upstreamHttp } from '../../common/upstream-http';
import { classifyConnectError, RefusalAwareWebSocket, type ConnectErrorRules } from '../connect-error';
import type { CommandOutcome, Connector, ConnectorContext, ConnectorHooks, UpstreamCommand } from '../connector.interface';
import { restBase, sendTextBody, sendTextOutcome, sendTextRequest } from './zapthinker.commands';
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
      transports: [RefusalAwareWebSocket],
      transportOptions: { websocket: { maxPayload: ctx.maxPayloadBytes } },
      path: options.path,
      autoConnect: false,
      reconnection: false,
      forceNew: true,
      timeout: options.connectTimeoutMs,
      query: { apikey: options.apiKey },
      extraHeaders: { apikey: options.apiKey },
    });
    this.socket.on('connect', () => this.settle());
    this.socket.on('connect_error', (err: Error) => this.settle(classifyConnectError(err, ZAPTHINKER_REFUSALS)));
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

  /**
   * `message.send` (its only command type: the channel runtime refuses others) → `POST /message/sendText/<instance>`;
   * resolves with the WAMessage key of the 2xx answer. Any other answer or failure is the shared table's
   * (src/common/upstream-http.ts; a 400 quotes the body, which says e.g. `"exists":false`).
   */
  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    const body = sendTextBody(command);
    const req = sendTextRequest(this.restBase, this.options.instance, this.options.apiKey, body);
    // Evolution answers only after `delay` (it shows "composing" first): that wait is not an upstream stall.
    const timeoutMs = this.options.commandTimeoutMs + (body.delay ?? 0);
    const res = await upstreamHttp.request({
      url: req.url, method: req.method, headers: req.headers, data: req.body, timeout: timeoutMs, upstream: { what: 'ZapThinker sendText' },
    });
    return sendTextOutcome(parseJson(res.data ?? ''));
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

/**
 * Evolution checks the key in its engine.io `allowRequest`, and engine.io answers any refused websocket upgrade with
 * HTTP 400 and the callback's message as the body: `Invalid global token` (no instance has the key, which a server
 * still loading its instances also says) and `apiKey is required` are refusals of the key; `Authentication error` is
 * its key lookup failing (database not ready), so the server, not the key, is the problem.
 */
export const ZAPTHINKER_REFUSALS: ConnectErrorRules = {
  credential: 'API key',
  authStatuses: [400, 401, 403],
  notReady: (refusal) => refusal.body.trim() === 'Authentication error',
  // Namespaces are created lazily after an upstream restart: retried.
  invalidNamespace: 'upstream has not created the instance namespace yet',
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text || undefined;
  }
}
