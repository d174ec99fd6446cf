import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import WebSocket, { type RawData } from 'ws';
import { CommandError, ConnectorError, describeError } from '../../common/errors';
import { redactText } from '../../common/redact';
import type { CommandOutcome, Connector, ConnectorContext, ConnectorHooks, UpstreamCommand } from '../connector.interface';
import { HandshakeRefusal, networkError, refusalError, type ConnectErrorRules } from '../connect-error';
import { str } from '../mapper';
import { keepaliveEvent, socketFrame, type CaptivateWireEvent } from './captivate.commands';
import { conversationOf, messageKey, UNPARSEABLE, unwrapEvent, type CaptivateEvent } from './captivate.frames';
import { TranscriptGapFill } from './captivate.gap-fill';
import { CaptivateHttp } from './captivate.http';
import type { CaptivateOptions } from './captivate.options';
import { RecentConversations } from './captivate.recent';
import { PendingReplies } from './captivate.replies';
import { HubRequests } from './captivate.requests';

/** Cluster: longest wait at a connect for the shared list of recent conversations. */
const REGISTRY_WAIT_MS = 15_000;

/**
 * Raw WebSocket client of one Captivate Hub channel (docs/providers.md#captivate), which looks like AWS API Gateway:
 * `socket_connected` is the real "connected" signal; idle sockets close after 10 min (hence the keepalive) and
 * every socket closes at 2 h (hence the planned reconnect, opened before the old socket is closed).
 * A new `ws` socket per attempt is unavoidable; each gets its listeners once, at creation, never in a handler.
 * This class is the socket's life (connect, keepalive, planned reconnect, what arrives); what is asked of the hub,
 * commands and the gap-fill's transcripts, is HubRequests' (captivate.requests.ts).
 */
export class CaptivateConnector implements Connector {
  private readonly opts: CaptivateOptions;
  private readonly hooks: ConnectorHooks;
  private readonly log: Logger;
  private readonly recent: RecentConversations;
  private readonly replies = new PendingReplies();
  private readonly gapFill: TranscriptGapFill;
  private readonly requests: HubRequests;
  /** The socket of the latest attempt. */
  private ws?: WebSocket;
  /** The confirmed socket commands use (during a planned reconnect, the old one until the new one is confirmed). */
  private live?: WebSocket;
  /** The previous socket during a planned reconnect. */
  private retiring?: WebSocket;
  private socketId?: string;
  private pending?: { ws: WebSocket; resolve: () => void; reject: (e: ConnectorError) => void; timer: NodeJS.Timeout };
  private closing = false;
  private keepaliveTimer?: NodeJS.Timeout;
  private ageTimer?: NodeJS.Timeout;
  private lastSentAt = 0;

  constructor(private readonly ctx: ConnectorContext<CaptivateOptions>) {
    this.opts = ctx.options;
    this.hooks = ctx.hooks;
    this.log = ctx.logger;
    const http = this.opts.httpUrl ? new CaptivateHttp(this.opts.httpUrl, this.opts.apiKey, this.opts.commandTimeoutMs) : undefined;
    this.recent = new RecentConversations(ctx.store, this.opts.recentConversations, undefined, ctx.registry);
    this.gapFill = new TranscriptGapFill(this.recent, (frame) => this.hooks.frame(frame), this.log);
    const link = { current: () => this.live, socketId: () => this.socketId, send: (ws: WebSocket, ev: CaptivateWireEvent) => this.sendFrame(ws, ev) };
    this.requests = new HubRequests(link, this.opts, http, this.replies, this.recent, this.gapFill, () => ctx.mode());
  }

  connect(): Promise<void> {
    this.closing = false;
    const maxPayload = this.ctx.maxPayloadBytes;
    const ws = new WebSocket(socketUrl(this.opts), { handshakeTimeout: this.opts.connectTimeoutMs, perMessageDeflate: false, ...(maxPayload ? { maxPayload } : {}) });
    this.ws = ws;
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume();
      this.failAttempt(ws, refusalError(new HandshakeRefusal(res.statusCode ?? 0, ''), CAPTIVATE_REFUSALS));
    });
    ws.on('error', (err: Error) => this.onError(ws, err));
    ws.on('message', this.hooks.guard('message', (data: RawData, isBinary: boolean) => this.onMessage(ws, data, isBinary)));
    ws.on('close', (code: number, reason: Buffer) => this.onClose(ws, code, reason.toString('utf8')));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.failAttempt(ws, new ConnectorError('connect_timeout', `no socket_connected within ${this.opts.connectTimeoutMs} ms`, { retriable: true })),
        this.opts.connectTimeoutMs,
      );
      this.pending = { ws, resolve, reject, timer };
    });
  }

  /**
   * Captivate has no subscriptions (one socket serves every conversation of the key). Instead, after every connect,
   * each recent conversation is asked for its transcript over the new socket: that request acts in the conversation,
   * so the hub routes its replies to this socket again, and its answer fills the gap.
   */
  async subscribe(): Promise<void> {
    if (!this.opts.transcriptOnReconnect) return;
    const ws = this.live;
    // In the background: a slow registry or hub must not hold the channel in `connecting`.
    void this.recent.sync(REGISTRY_WAIT_MS).then(async (read) => {
      if (!read) this.log.warn({ waitedMs: REGISTRY_WAIT_MS }, 'the shared list of recent conversations (state topic) was not read to its end in time; gap-filling the ones known so far');
      // Unless this connection ended meanwhile (the next one runs its own).
      if (ws && ws === this.live && !this.closing && this.recent.size) await this.gapFill.run((id) => this.requests.fetchTranscript(ws, id));
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.gapFill.cancel();
    this.stopTimers();
    if (this.pending) this.failAttempt(this.pending.ws, new ConnectorError('closed', 'connector closed', { retriable: false }));
    for (const ws of new Set([this.ws, this.live, this.retiring])) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.close(1000, 'closing');
      else ws?.terminate();
    }
    this.live = this.retiring = undefined;
    this.socketId = undefined;
    this.replies.dropSocket(undefined, 'connector closed');
    this.recent.flush();
  }

  execute(cmd: UpstreamCommand): Promise<CommandOutcome> {
    return this.requests.execute(cmd);
  }

  private onMessage(ws: WebSocket, data: RawData, isBinary: boolean): void {
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const text = bytes.toString('utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.hooks.frame({ event: UNPARSEABLE, payload: isBinary ? { base64: bytes.toString('base64') } : text });
      return;
    }
    const ev = unwrapEvent(raw);
    if (ev?.type === 'socket_connected') this.onSocketConnected(ws, ev);
    if (ev) {
      this.remember(ev);
      if (this.replies.settle(ws, ev)) return;
    }
    this.hooks.frame({ event: ev?.type ?? 'message', payload: raw });
    if (ev?.type === 'conversation_transcript') this.gapFill.replay(conversationOf(ev.payload), ev.payload, 'conversation_transcript');
  }

  private onSocketConnected(ws: WebSocket, ev: CaptivateEvent): void {
    const p = this.pending;
    if (!p || p.ws !== ws) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    this.socketId = str(ev.payload.socket_id);
    if (!this.socketId) this.log.warn('socket_connected without socket_id; HTTP sends will not name a socket');
    const old = this.retiring;
    this.live = ws;
    this.retiring = undefined;
    this.startTimers(ws);
    // Make before break: the old socket served replies until now.
    if (old && old !== ws) old.close(1000, 'planned reconnect');
    p.resolve();
  }

  private onError(ws: WebSocket, err: Error & { code?: string }): void {
    if (this.pending?.ws === ws) this.failAttempt(ws, networkError(err));
    else this.log.debug({ err: redactText(describeError(err)) }, 'captivate socket error');
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    this.replies.dropSocket(ws, `socket closed (${code})`);
    if (this.pending?.ws === ws) {
      this.failAttempt(ws, new ConnectorError('closed_before_ready', `socket closed (${code}) before socket_connected`, { retriable: true }));
      return;
    }
    if (ws === this.retiring) this.retiring = undefined;
    if (ws !== this.live) return;
    this.live = undefined;
    this.socketId = undefined;
    this.stopTimers();
    // An old socket closing during a planned reconnect is not a new loss: the supervisor is already reconnecting.
    if (this.closing || ws !== this.ws) return;
    this.log.warn({ code, reason }, 'captivate socket closed by upstream');
    this.hooks.lost(new ConnectorError('disconnected', `socket closed by upstream (code ${code}${reason ? `: ${reason}` : ''})`, { retriable: true }));
  }

  private failAttempt(ws: WebSocket, err: ConnectorError): void {
    const p = this.pending;
    if (!p || p.ws !== ws) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    ws.terminate();
    p.reject(err);
  }

  private startTimers(ws: WebSocket): void {
    this.stopTimers();
    this.keepaliveTimer = setInterval(() => this.keepalive(ws), this.opts.keepaliveMs);
    this.ageTimer = setTimeout(() => this.retire(ws), this.opts.maxConnectionAgeMs);
    this.keepaliveTimer.unref?.();
    this.ageTimer.unref?.();
  }

  private stopTimers(): void {
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.ageTimer);
    this.keepaliveTimer = this.ageTimer = undefined;
  }

  /**
   * API Gateway closes a socket idle for 10 min, and a WebSocket ping may not reset its timer. The keepalive is
   * `metadata_request` for the latest conversation (documented, read-only, one small reply that is not published);
   * with no conversation known yet there is nothing to ask about, so a ping is the best available.
   */
  private keepalive(ws: WebSocket): void {
    if (ws !== this.live || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastSentAt < this.opts.keepaliveMs * 0.9) return;
    const conversationId = this.recent.mostRecent();
    this.lastSentAt = Date.now();
    if (!conversationId) {
      ws.ping();
      return;
    }
    const wait = this.replies.expect(ws, {
      what: 'keepalive',
      accepts: (e) => e.type === 'conversation_metadata' && conversationOf(e.payload) === conversationId,
      swallow: true,
      timeoutMs: this.opts.commandTimeoutMs,
      idempotent: true,
    });
    wait.reply.catch(() => undefined);
    this.sendFrame(ws, keepaliveEvent(conversationId)).catch(() => wait.cancel());
  }

  /** Planned reconnect before the upstream's 2-hour limit; the old socket stays open until the new one is confirmed. */
  private retire(ws: WebSocket): void {
    if (ws !== this.live || this.closing) return;
    this.stopTimers();
    this.retiring = ws;
    const minutes = Math.round(this.opts.maxConnectionAgeMs / 60_000);
    this.hooks.lost(new ConnectorError('max_age', `connection reached its maximum age (${minutes} min); planned reconnect`, { retriable: true, planned: true }));
  }

  private remember(ev: CaptivateEvent): void {
    const id = conversationOf(ev.payload);
    // A general_error's conversation may be the invalid one it complains about.
    if (!id || ev.type === 'general_error' || ev.type === 'conversation_transcript') return;
    const isMessage = ev.type === 'bot_message' || ev.type === 'livechat_message';
    this.recent.touch(id, isMessage ? messageKey(ev.payload, ev.eventId) : undefined);
  }

  private sendFrame(ws: WebSocket, ev: CaptivateWireEvent): Promise<undefined> {
    return new Promise((resolve, reject) => {
      ws.send(socketFrame(ev), (err) => {
        // The callback's error means the frame was not written to the socket.
        if (err) reject(new CommandError('not_connected', `socket send failed: ${err.message}`, { retriable: true, sent: false, cause: err }));
        else {
          this.lastSentAt = Date.now();
          resolve(undefined);
        }
      });
    });
  }
}

/** `<url>?apikey=<key>` (or `apiKey`, as the SDK sends it), keeping any path such as the `/dev` stage. */
export function socketUrl(o: Pick<CaptivateOptions, 'url' | 'apiKey' | 'apiKeyParam'>): string {
  const u = new URL(o.url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  u.searchParams.set(o.apiKeyParam, o.apiKey);
  return u.toString();
}

/** How a refused upgrade reads: API Gateway answers 401/403 when its authorizer rejects the key. */
export const CAPTIVATE_REFUSALS: ConnectErrorRules = {
  credential: 'API key',
  authStatuses: [401, 403],
};
