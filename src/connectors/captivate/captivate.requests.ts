import WebSocket from 'ws';
import { CommandError } from '../../common/errors';
import type { ChannelMode, CommandOutcome, UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { buildCommandEvent, transcriptRequestEvent, type CaptivateWireEvent } from './captivate.commands';
import { conversationOf, unwrapEvent, type CaptivateEvent } from './captivate.frames';
import type { TranscriptGapFill } from './captivate.gap-fill';
import type { CaptivateHttp } from './captivate.http';
import type { CaptivateOptions } from './captivate.options';
import type { RecentConversations } from './captivate.recent';
import type { PendingReplies } from './captivate.replies';

/** The connector's socket, as the requests see it. */
export interface HubLink {
  /** The confirmed socket commands use (open or not), if any. */
  current(): WebSocket | undefined;
  /** The hub's id of that socket, which HTTP sends name so the replies come to it. */
  socketId(): string | undefined;
  /** Writes one event to the socket; rejects `not_connected` when it was not written. */
  send(ws: WebSocket, ev: CaptivateWireEvent): Promise<undefined>;
}

/**
 * What the connector asks the hub: commands over the live socket or over HTTP (webhook mode, `sendVia: http`),
 * `conversation.start` and `transcript` waiting for their reply event, and the transcripts the gap-fill asks for after
 * a connect. Replies carry no request id: PendingReplies pairs them by type, conversation and order.
 */
export class HubRequests {
  private starts: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly link: HubLink,
    private readonly opts: CaptivateOptions,
    private readonly http: CaptivateHttp | undefined,
    private readonly replies: PendingReplies,
    private readonly recent: RecentConversations,
    private readonly gapFill: TranscriptGapFill,
    private readonly mode: () => ChannelMode,
  ) {}

  /** One command: over the live socket, or over HTTP in webhook mode and with `sendVia: http`. */
  async execute(cmd: UpstreamCommand): Promise<CommandOutcome> {
    const ev = buildCommandEvent(cmd);
    const conversationId = str(ev.event_payload.conversation_id);
    if (conversationId) this.recent.touch(conversationId);
    const viaHttp = this.mode() === 'webhook' || this.opts.sendVia === 'http';
    if (cmd.type === 'conversation.start') return this.serialised(() => this.startConversation(ev, viaHttp));
    if (cmd.type === 'transcript' && conversationId) return this.transcript(conversationId, ev, viaHttp);
    const result = viaHttp ? await this.httpClient().postEvent(ev, this.link.socketId()) : await this.link.send(this.requireLive(), ev);
    return { ...(conversationId ? { conversationId } : {}), ...(result !== undefined ? { result } : {}) };
  }

  private async startConversation(ev: CaptivateWireEvent, viaHttp: boolean): Promise<CommandOutcome> {
    if (viaHttp && this.link.current()?.readyState !== WebSocket.OPEN) {
      // Webhook mode: no socket carries conversation_start_success; the HTTP answer is all there is.
      const body = await this.httpClient().postEvent(ev, undefined);
      const reply = unwrapEvent(body);
      const id = reply ? conversationOf(reply.payload) : isRecord(body) ? conversationOf(body) : undefined;
      return { ...(id ? { conversationId: id } : {}), result: body };
    }
    const ws = this.requireLive();
    const wait = this.replies.expect(ws, {
      what: 'conversation_start',
      accepts: (e) => e.type === 'conversation_start_success',
      // An error that names no conversation while a start is pending is the start's error.
      fails: (e) => (e.type === 'general_error' && !conversationOf(e.payload) ? errorText(e) : undefined),
      timeoutMs: this.opts.commandTimeoutMs,
    });
    try {
      if (viaHttp) await this.httpClient().postEvent(ev, this.link.socketId());
      else await this.link.send(ws, ev);
    } catch (err) {
      wait.cancel();
      throw err;
    }
    const reply = await wait.reply;
    const id = conversationOf(reply.payload);
    if (!id) throw new CommandError('upstream_error', 'conversation_start_success without conversation_id', { retriable: false, sent: true });
    this.recent.touch(id);
    return { conversationId: id, result: reply.payload };
  }

  private async transcript(conversationId: string, ev: CaptivateWireEvent, viaHttp: boolean): Promise<CommandOutcome> {
    if (viaHttp) {
      const body = await this.httpClient().getTranscript(conversationId);
      this.gapFill.replay(conversationId, body, 'GET /api/transcript');
      return { conversationId, result: body };
    }
    const ws = this.requireLive();
    const wait = this.replies.expect(ws, {
      what: 'conversation_transcript_request',
      accepts: (e) => e.type === 'conversation_transcript' && conversationOf(e.payload) === conversationId,
      fails: (e) => (e.type === 'general_error' && conversationOf(e.payload) === conversationId ? errorText(e) : undefined),
      timeoutMs: this.opts.commandTimeoutMs,
      idempotent: true,
    });
    await this.link.send(ws, ev).catch((err: unknown) => {
      wait.cancel();
      throw err;
    });
    return { conversationId, result: (await wait.reply).payload };
  }

  /**
   * A transcript for the gap-fill of the connection `ws`: asked over that socket (the answer is replayed, not
   * published); when the socket does not answer in time, over HTTP. Once `ws` is gone nothing is fetched: the next
   * connection runs its own gap-fill.
   */
  async fetchTranscript(ws: WebSocket, conversationId: string): Promise<{ body: unknown; source: string }> {
    try {
      if (ws !== this.link.current() || ws.readyState !== WebSocket.OPEN) throw new CommandError('not_connected', 'the socket of this gap-fill is gone', { retriable: true, sent: false });
      const wait = this.replies.expect(ws, {
        what: 'transcript gap-fill',
        accepts: (e) => e.type === 'conversation_transcript' && conversationOf(e.payload) === conversationId,
        fails: (e) => (e.type === 'general_error' && conversationOf(e.payload) === conversationId ? errorText(e) : undefined),
        swallow: true,
        timeoutMs: this.opts.commandTimeoutMs,
        idempotent: true,
      });
      await this.link.send(ws, transcriptRequestEvent(conversationId)).catch((err: unknown) => {
        wait.cancel();
        throw err;
      });
      return { body: (await wait.reply).payload, source: 'conversation_transcript' };
    } catch (err) {
      // Only a request the live socket left unanswered goes to HTTP: an error answer (e.g. an unknown conversation)
      // would be the same there, and a lost socket means a new connection and a new gap-fill.
      if (!this.http || !(err instanceof CommandError && err.code === 'timeout')) throw err;
      return { body: await this.http.getTranscript(conversationId), source: 'GET /api/transcript' };
    }
  }

  /** Runs conversation starts one at a time: replies carry no request id, so order is what pairs them. */
  private serialised<T>(run: () => Promise<T>): Promise<T> {
    const next = this.starts.then(run, run);
    this.starts = next.catch(() => undefined);
    return next;
  }

  private requireLive(): WebSocket {
    const ws = this.link.current();
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new CommandError('not_connected', 'the Captivate socket is not connected', { retriable: true, sent: false });
    return ws;
  }

  private httpClient(): CaptivateHttp {
    if (!this.http) throw new CommandError('http_unavailable', 'this channel has no httpUrl; webhook mode and sendVia: http need one', { retriable: false, sent: false });
    return this.http;
  }
}

function errorText(ev: CaptivateEvent): string {
  const code = str(ev.payload.error_code);
  const desc = str(ev.payload.error_desc) ?? 'general_error';
  return code ? `${code} ${desc}` : desc;
}
