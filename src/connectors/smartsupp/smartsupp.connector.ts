import type { Logger } from 'pino';
import { CommandError, ConnectorError } from '../../common/errors';
import type { CommandOutcome, Connector, ConnectorContext, UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { ConnectionSupervisor } from '../supervisor';
import { ackMessageId, commandEmit, identityOf, type VisitorIdentity } from './smartsupp.commands';
import { ACK_EVENTS, type SmartsuppFrame } from './smartsupp.mapper';
import type { SmartsuppOptions } from './smartsupp.options';
import { Coalescer, loadVisitors, timeOf, VISITORS_KEY, type PersistedVisitor } from './smartsupp.state';
import { SmartsuppVisitor, type VisitorObserver, type VisitorShared } from './smartsupp.visitor';

/** Events every visitor socket of the account receives: forwarded once per window, not once per socket. */
const ACCOUNT_WIDE = new Set(['account.updated', 'agent.updated', 'agent.removed']);
const COALESCE_WINDOW_MS = 5_000;
/** Delay before message high-water marks are written (new visitors are written at once). */
const PERSIST_DELAY_MS = 2_000;

interface Member {
  visitor: SmartsuppVisitor;
  supervisor: ConnectionSupervisor;
}

/**
 * The channel's connector: one socket per visitor, each supervised by its own ConnectionSupervisor (so
 * reconnect and backoff live only there). `connect()` starts the persisted visitors and resolves once one
 * is live (or at once when there are none); the channel is lost when the last visitor drops or the account
 * key is refused. Visitor ids are persisted so a restart resumes the same visitors.
 */
export class SmartsuppConnector implements Connector, VisitorObserver {
  private readonly members = new Map<string, Member>();
  /** New visitors (`conversation.start`) until their first handshake. */
  private readonly fresh = new Map<SmartsuppVisitor, { member: Member; done: (error?: ConnectorError) => void }>();
  private readonly queue: Member[] = [];
  private readonly coalescer = new Coalescer(COALESCE_WINDOW_MS);
  private readonly log: Logger;
  private readonly visitorLog: Logger;
  private readonly shared: VisitorShared;
  private loaded = false;
  private closed = true;
  private up = false;
  private live = 0;
  private inFlight = 0;
  private pendingConnect?: { resolve: () => void; reject: (e: ConnectorError) => void };
  /** The last handshake failure was a refused key; cleared by the next successful handshake. */
  private authFailed?: ConnectorError;
  private accountStatus?: string;
  private persistTimer?: NodeJS.Timeout;
  private persistSoon?: NodeJS.Immediate;

  constructor(private readonly ctx: ConnectorContext<SmartsuppOptions>) {
    this.log = ctx.logger;
    // Per-visitor retries are summarised by the channel's own status; they log only when debugging.
    const verbose = ['debug', 'trace'].includes(ctx.logger.level);
    this.visitorLog = verbose ? ctx.logger.child({ scope: 'visitor' }) : ctx.logger.child({ scope: 'visitor' }, { level: 'error' });
    this.shared = { options: ctx.options, observer: this, url: ctx.options.url.replace(/\/+$/, '') };
  }

  /** Live visitor sockets. */
  get liveVisitors(): number {
    return this.live;
  }

  connect(): Promise<void> {
    this.closed = false;
    if (!this.loaded) {
      this.loaded = true;
      for (const [id, p] of loadVisitors(this.ctx.state)) this.addMember(id, p);
    }
    for (const m of this.members.values()) if (!m.visitor.starting && m.supervisor.current === 'disconnected') this.enqueue(m);
    this.pump();
    if (!this.authFailed && (this.live > 0 || this.members.size === 0)) {
      this.up = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => (this.pendingConnect = { resolve, reject }));
  }

  async subscribe(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    this.settle(new ConnectorError('closed', 'connector closed', { retriable: false }));
    for (const m of this.queue) m.visitor.starting = false;
    for (const m of this.members.values()) m.visitor.starting = false;
    this.queue.length = 0;
    this.inFlight = 0;
    const all = [...this.members.values(), ...[...this.fresh.values()].map((f) => f.member)];
    for (const f of this.fresh.values()) f.done(new ConnectorError('closed', 'connector closed', { retriable: false }));
    await Promise.all(all.map((m) => m.supervisor.stop()));
    this.live = 0;
    this.persistNow();
  }

  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    if (command.type === 'conversation.start') return this.startConversation(identityOf(command));
    const emit = commandEmit(command);
    const conversationId = str(command.conversationId);
    if (!conversationId) throw new CommandError('invalid_command', `${command.type} needs "conversationId" (the visitor id)`, { retriable: false, sent: false });
    const member = this.members.get(conversationId);
    if (!member) throw new CommandError('unknown_conversation', `no Smartsupp visitor "${conversationId}" on this channel`, { retriable: false, sent: false });
    const result = await member.visitor.send(emit);
    const outcome: CommandOutcome = { conversationId, result };
    if (emit.event === 'chat.message' || emit.event === 'chat.upload_finish') {
      const id = ackMessageId(result);
      if (id) outcome.upstreamMessageId = id;
      // Published now from the ack; the later `chat.message_received` echo has the same id and is deduplicated.
      if (isRecord(result)) this.forward(member.visitor, emit.event === 'chat.message' ? ACK_EVENTS.message : ACK_EVENTS.uploadFinish, result);
    }
    return outcome;
  }

  // VisitorObserver ---------------------------------------------------------------------------------

  initialized(visitor: SmartsuppVisitor, data: Record<string, unknown>, previousId?: string): void {
    if (this.closed) return;
    this.started(visitor);
    const id = visitor.id as string;
    let rekeyed = false;
    if (previousId) {
      const member = this.members.get(previousId);
      this.members.delete(previousId);
      if (member) this.members.set(id, member);
      visitor.since = undefined;
      visitor.seen = undefined;
      rekeyed = true;
      this.log.warn({ visitor: id, previous: previousId }, 'Smartsupp answered a persisted visitor id with a new visitor; the conversation id changed');
    } else if (!this.members.has(id)) {
      const f = this.fresh.get(visitor);
      if (f) this.members.set(id, f.member);
    }
    this.live++;
    this.authFailed = undefined;
    const chat = isRecord(data.chat) ? data.chat : undefined;
    const chatId = str(chat?.id) ?? (isRecord(data.visitor) ? str(data.visitor.chatId) : undefined);
    const frame: SmartsuppFrame = { visitorId: id, data };
    if (visitor.since !== undefined) {
      frame.since = new Date(visitor.since).toISOString();
      frame.seen = visitor.seen ?? [];
    }
    this.ctx.hooks.frame({ event: ACK_EVENTS.initialized, payload: frame });
    for (const msg of Array.isArray(chat?.messages) ? chat.messages : []) this.advance(visitor, msg);
    const status = isRecord(data.account) ? str(data.account.status) : undefined;
    if (status && status !== this.accountStatus) {
      this.accountStatus = status;
      this.forward(visitor, ACK_EVENTS.accountStatus, status);
    }
    const isNew = this.fresh.has(visitor) || rekeyed;
    if (chatId !== visitor.chatId || isNew) {
      visitor.chatId = chatId;
      this.persist(isNew);
    }
    this.fresh.get(visitor)?.done();
    if (this.pendingConnect) {
      this.up = true;
      this.settle();
    }
  }

  failed(visitor: SmartsuppVisitor, error: ConnectorError): void {
    if (this.closed) return;
    this.started(visitor);
    this.log.debug({ visitor: visitor.id, code: error.code }, 'visitor connection attempt failed');
    if (error.authFailure) this.authFailed = error;
    this.fresh.get(visitor)?.done(error);
    if (this.pendingConnect && this.live === 0) {
      this.settle(error);
    } else if (this.up && error.authFailure) {
      this.up = false;
      this.ctx.hooks.lost(error);
    }
  }

  lost(visitor: SmartsuppVisitor, error: ConnectorError): void {
    if (this.closed) return;
    this.live = Math.max(0, this.live - 1);
    this.log.debug({ visitor: visitor.id, reason: error.message }, 'visitor socket lost');
    if (this.up && this.live === 0) {
      this.up = false;
      this.ctx.hooks.lost(new ConnectorError(error.code, `every visitor socket is down (last: ${error.message})`, { retriable: true, cause: error }));
    }
  }

  event(visitor: SmartsuppVisitor, event: string, data: unknown): void {
    if (this.closed) return;
    if (ACCOUNT_WIDE.has(event)) {
      const status = event === 'account.updated' && isRecord(data) ? str(data.status) : undefined;
      if (status) {
        if (status === this.accountStatus) return;
        this.accountStatus = status;
      } else if (!this.coalescer.admit(event, data)) return;
    } else if (event === 'chat.message_received' && isRecord(data)) {
      this.advance(visitor, data.message);
    } else if (event === 'visitor.updated' && isRecord(data) && isRecord(data.changes) && 'chatId' in data.changes) {
      visitor.chatId = str(data.changes.chatId);
      this.persist(false);
    }
    this.forward(visitor, event, data);
  }

  // Internals ---------------------------------------------------------------------------------------

  private forward(visitor: SmartsuppVisitor, event: string, data: unknown): void {
    if (event === ACK_EVENTS.message || event === ACK_EVENTS.uploadFinish) this.advance(visitor, data);
    const payload: SmartsuppFrame = { visitorId: visitor.id ?? '', data };
    this.ctx.hooks.frame({ event, payload });
  }

  private async startConversation(identity: VisitorIdentity | undefined): Promise<CommandOutcome> {
    if (this.closed) throw new CommandError('not_connected', 'channel is not running', { retriable: true, sent: false });
    const member = this.createMember(new SmartsuppVisitor(this.shared, null, identity));
    const error = await new Promise<ConnectorError | undefined>((resolve) => {
      this.fresh.set(member.visitor, { member, done: resolve });
      member.supervisor.start();
    });
    this.fresh.delete(member.visitor);
    if (error) {
      await member.supervisor.stop();
      // The visitor may exist upstream only when the handshake timed out after visitor.connect left; it holds no chat.
      throw new CommandError(error.code, `conversation.start failed: ${error.message}`, { retriable: error.retriable && !error.authFailure, sent: false, cause: error });
    }
    const id = member.visitor.id as string;
    return { conversationId: id, result: { visitorId: id, chatId: member.visitor.chatId ?? null } };
  }

  private addMember(id: string, p: PersistedVisitor): void {
    const visitor = new SmartsuppVisitor(this.shared, id, p.identity);
    visitor.chatId = p.chatId;
    visitor.since = timeOf(p.since);
    visitor.seen = p.seen;
    this.members.set(id, this.createMember(visitor));
  }

  private createMember(visitor: SmartsuppVisitor): Member {
    const supervisor = new ConnectionSupervisor(
      (hooks) => {
        visitor.hooks = hooks;
        return visitor;
      },
      this.ctx.policy,
      { status: () => undefined, frame: () => undefined },
      this.visitorLog,
    );
    return { visitor, supervisor };
  }

  private enqueue(m: Member): void {
    m.visitor.starting = true;
    this.queue.push(m);
  }

  /** Starts queued visitors, at most `startConcurrency` handshakes at a time. */
  private pump(): void {
    while (this.inFlight < this.ctx.options.startConcurrency && this.queue.length) {
      const m = this.queue.shift() as Member;
      this.inFlight++;
      m.supervisor.start();
    }
  }

  private started(visitor: SmartsuppVisitor): void {
    if (!visitor.starting) return;
    visitor.starting = false;
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.pump();
  }

  /** Moves a visitor's message high-water mark (time, and the ids at that time) forward past `msg`. */
  private advance(visitor: SmartsuppVisitor, msg: unknown): void {
    const t = isRecord(msg) ? timeOf(msg.createdAt) : undefined;
    const id = isRecord(msg) ? str(msg.id) : undefined;
    if (t === undefined || !id || (visitor.since !== undefined && t < visitor.since)) return;
    if (t === visitor.since) {
      if (visitor.seen?.includes(id)) return;
      visitor.seen = [...(visitor.seen ?? []), id];
    } else {
      visitor.since = t;
      visitor.seen = [id];
    }
    this.persist(false);
  }

  private settle(error?: ConnectorError): void {
    const p = this.pendingConnect;
    if (!p) return;
    this.pendingConnect = undefined;
    if (error) p.reject(error);
    else p.resolve();
  }

  /**
   * Writes the visitor list: new visitors in the same turn of the event loop (coalesced, so a thousand
   * concurrent `conversation.start` write once per turn), high-water marks and chat ids after a short delay.
   */
  private persist(now: boolean): void {
    if (now) {
      if (this.persistTimer) clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
      this.persistSoon ??= setImmediate(() => this.persistNow());
      return;
    }
    if (this.persistTimer || this.persistSoon) return;
    this.persistTimer = setTimeout(() => this.persistNow(), PERSIST_DELAY_MS);
    this.persistTimer.unref?.();
  }

  private persistNow(): void {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    if (this.persistSoon) clearImmediate(this.persistSoon);
    this.persistTimer = undefined;
    this.persistSoon = undefined;
    if (!this.loaded) return;
    const out: Record<string, PersistedVisitor> = {};
    for (const [id, { visitor }] of this.members) {
      const p: PersistedVisitor = {};
      if (visitor.chatId) p.chatId = visitor.chatId;
      if (visitor.since !== undefined) p.since = new Date(visitor.since).toISOString();
      if (visitor.seen?.length) p.seen = visitor.seen;
      if (visitor.identity) p.identity = visitor.identity;
      out[id] = p;
    }
    try {
      this.ctx.state.set(VISITORS_KEY, out);
    } catch (err) {
      this.log.error({ err: String(err) }, 'cannot persist Smartsupp visitors');
    }
  }
}
