import type { Logger } from 'pino';
import { CommandError, ConnectorError } from '../../common/errors';
import type { CommandOutcome, Connector, ConnectorContext, UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { ackMessageId, commandEmit, identityOf } from './smartsupp.commands';
import { VisitorEvents } from './smartsupp.events';
import { ACK_EVENTS } from './smartsupp.mapper';
import type { SmartsuppOptions } from './smartsupp.options';
import { VisitorPlacement } from './smartsupp.placement';
import { VisitorPool } from './smartsupp.pool';
import { VisitorRecords } from './smartsupp.records';
import { ConversationStarts } from './smartsupp.starts';
import type { SmartsuppVisitor, VisitorObserver } from './smartsupp.visitor';

/**
 * The channel's connector: one socket per visitor, each supervised by its own ConnectionSupervisor (so
 * reconnect and backoff live only there). `connect()` starts the persisted visitors and resolves once one
 * is live (or at once when there are none); the channel is lost when the last visitor drops or the account
 * key is refused. Visitor ids are persisted so a restart resumes the same visitors. The pool bounds the visitors and
 * expires those whose chat closed or that stayed idle; an expired visitor's record is removed.
 *
 * It is the composition of its parts: the pool (the sockets and their lifetime), the records (where visitors are kept),
 * the placement (which visitors this replica runs, in a cluster too), the events (what the sockets' input becomes) and
 * the starts (`conversation.start`). What stays here is the channel's own state: up, lost, or refused.
 */
export class SmartsuppConnector implements Connector, VisitorObserver {
  private readonly pool: VisitorPool;
  private readonly records: VisitorRecords;
  private readonly placement: VisitorPlacement;
  private readonly events: VisitorEvents;
  private readonly starts: ConversationStarts;
  private readonly log: Logger;
  private closed = true;
  private up = false;
  private pendingConnect?: { resolve: () => void; reject: (e: ConnectorError) => void };
  /** The last handshake failure was a refused key; cleared by the next successful handshake. */
  private authFailed?: ConnectorError;

  constructor(private readonly ctx: ConnectorContext<SmartsuppOptions>) {
    this.log = ctx.logger;
    // Per-visitor retries are summarised by the channel's own status; they log only when debugging.
    const verbose = ['debug', 'trace'].includes(ctx.logger.level);
    const visitorLog = verbose ? ctx.logger.child({ scope: 'visitor' }) : ctx.logger.child({ scope: 'visitor' }, { level: 'error' });
    const shared = { options: ctx.options, observer: this, url: ctx.options.url.replace(/\/+$/, '') };
    this.pool = new VisitorPool(ctx.options, ctx.policy, this.log, visitorLog, {
      owns: (id) => this.placement.owns(id),
      expired: (id) => this.records.forget(id),
      stale: (visitor) => this.records.persist(visitor, false),
      released: (id, visitor) => this.records.save(id, visitor),
      fault: (where, err, input) => ctx.hooks.fault(where, err, input),
    });
    this.records = new VisitorRecords(ctx.store, ctx.placement?.registry, this.pool.members, this.log);
    this.placement = new VisitorPlacement(ctx.store, ctx.placement, this.pool, this.records, shared, this.log, () => !this.closed);
    this.events = new VisitorEvents(ctx.hooks, this.pool, this.records);
    this.starts = new ConversationStarts(this.pool, shared);
  }

  heldConversations(): number {
    return this.pool.members.size;
  }

  async connect(): Promise<void> {
    this.closed = false;
    await this.placement.load();
    if (this.closed) throw new ConnectorError('closed', 'connector closed', { retriable: false });
    this.pool.start();
    for (const m of this.pool.members.values()) if (!m.visitor.starting && m.supervisor.current === 'disconnected') this.pool.enqueue(m);
    this.pool.pump();
    if (!this.authFailed && (this.pool.live.size > 0 || this.pool.members.size === 0)) {
      this.up = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => (this.pendingConnect = { resolve, reject }));
  }

  async subscribe(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    const closed = new ConnectorError('closed', 'connector closed', { retriable: false });
    this.settle(closed);
    const releasing = this.pool.stop();
    const all = [...this.pool.members.values(), ...this.starts.close(closed)];
    await Promise.all(all.map((m) => m.supervisor.stop()));
    this.pool.live.clear();
    // Visitors handed to another replica during the overlap are closed now: they are not this replica's.
    for (const id of releasing) {
      const member = this.pool.members.get(id);
      if (member) this.records.save(id, member.visitor);
      this.pool.members.delete(id);
    }
    this.records.flush();
  }

  placementChanged(): void {
    this.placement.changed();
  }

  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    if (command.type === 'conversation.start') {
      if (this.closed) throw new CommandError('not_connected', 'channel is not running', { retriable: true, sent: false });
      this.pool.admit(this.ctx.channelId, this.placement.count + this.starts.size);
      return this.starts.start(identityOf(command));
    }
    const emit = commandEmit(command);
    const conversationId = str(command.conversationId);
    if (!conversationId) throw new CommandError('invalid_command', `${command.type} needs "conversationId" (the visitor id)`, { retriable: false, sent: false });
    const member = this.pool.members.get(conversationId);
    if (!member) {
      const expired = this.pool.expiredReason(conversationId);
      if (expired) throw new CommandError('unknown_conversation', `Smartsupp visitor "${conversationId}" expired (${expired}); start a new conversation`, { retriable: false, sent: false });
      // In a cluster the visitor may be one this replica is about to start (its registry record is on the way): retried.
      const clustered = Boolean(this.ctx.placement);
      throw new CommandError('unknown_conversation', `no Smartsupp visitor "${conversationId}" on this channel${clustered ? ' at this replica' : ''}`, { retriable: clustered, sent: false });
    }
    this.pool.touch(member.visitor);
    const result = await member.visitor.send(emit);
    const outcome: CommandOutcome = { conversationId, result };
    if (emit.event === 'chat.message' || emit.event === 'chat.upload_finish') {
      const id = ackMessageId(result);
      if (id) outcome.upstreamMessageId = id;
      // Published now from the ack; the later `chat.message_received` echo has the same id and is deduplicated.
      if (isRecord(result)) this.events.forward(member.visitor, emit.event === 'chat.message' ? ACK_EVENTS.message : ACK_EVENTS.uploadFinish, result);
    }
    return outcome;
  }

  // VisitorObserver ---------------------------------------------------------------------------------

  initialized(visitor: SmartsuppVisitor, data: Record<string, unknown>, previousId?: string): void {
    if (this.closed) return;
    this.pool.started(visitor);
    const id = visitor.id as string;
    const members = this.pool.members;
    if (previousId) {
      this.rekey(visitor, previousId);
    } else if (!members.has(id)) {
      const started = this.starts.memberOf(visitor);
      if (started) members.set(id, started);
    }
    // A handshake that finished as the visitor expired or was handed over: it is no longer this pool's.
    if (members.get(id)?.visitor !== visitor) return;
    this.pool.live.add(visitor);
    this.authFailed = undefined;
    const chat = isRecord(data.chat) ? data.chat : undefined;
    const chatId = str(chat?.id) ?? (isRecord(data.visitor) ? str(data.visitor.chatId) : undefined);
    this.events.initialized(visitor, data, chat);
    const isNew = this.starts.memberOf(visitor) !== undefined || previousId !== undefined;
    if (chatId !== visitor.chatId || isNew) {
      visitor.chatId = chatId;
      this.records.persist(visitor, isNew);
    }
    // Its chat was closed while no socket was open.
    if (chat?.status === 'closed') this.pool.chatEnded(visitor);
    this.placement.initialized(visitor, isNew);
    this.starts.settle(visitor);
    if (this.pendingConnect) {
      this.up = true;
      this.settle();
    }
  }

  failed(visitor: SmartsuppVisitor, error: ConnectorError): void {
    if (this.closed) return;
    this.pool.started(visitor);
    this.log.debug({ visitor: visitor.id, code: error.code }, 'visitor connection attempt failed');
    if (error.authFailure) this.authFailed = error;
    this.starts.settle(visitor, error);
    if (this.pendingConnect && this.pool.live.size === 0) {
      this.settle(error);
    } else if (this.up && error.authFailure) {
      this.up = false;
      this.ctx.hooks.lost(error);
    }
  }

  lost(visitor: SmartsuppVisitor, error: ConnectorError): void {
    if (this.closed) return;
    this.pool.live.delete(visitor);
    this.log.debug({ visitor: visitor.id, reason: error.message }, 'visitor socket lost');
    if (this.up && this.pool.live.size === 0) {
      this.up = false;
      this.ctx.hooks.lost(new ConnectorError(error.code, `every visitor socket is down (last: ${error.message})`, { retriable: true, cause: error }));
    }
  }

  event(visitor: SmartsuppVisitor, event: string, data: unknown): void {
    if (!this.closed) this.events.event(visitor, event, data);
  }

  // Internals ---------------------------------------------------------------------------------------

  /** Smartsupp answered a persisted visitor id with a new visitor: the member moves to the new id, read from the start. */
  private rekey(visitor: SmartsuppVisitor, previousId: string): void {
    const id = visitor.id as string;
    const member = this.pool.members.get(previousId);
    this.pool.members.delete(previousId);
    if (member) this.pool.members.set(id, member);
    visitor.since = undefined;
    visitor.seen = undefined;
    this.records.forget(previousId);
    this.log.warn({ visitor: id, previous: previousId }, 'Smartsupp answered a persisted visitor id with a new visitor; the conversation id changed');
  }

  private settle(error?: ConnectorError): void {
    const p = this.pendingConnect;
    if (!p) return;
    this.pendingConnect = undefined;
    if (error) p.reject(error);
    else p.resolve();
  }
}
