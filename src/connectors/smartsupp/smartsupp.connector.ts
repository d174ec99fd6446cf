import type { Logger } from 'pino';
import { CommandError, ConnectorError } from '../../common/errors';
import type { CommandOutcome, Connector, ConnectorContext, ConversationPlacement, UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { ackMessageId, commandEmit, identityOf, type VisitorIdentity } from './smartsupp.commands';
import { ACK_EVENTS, type SmartsuppFrame } from './smartsupp.mapper';
import type { SmartsuppOptions } from './smartsupp.options';
import { VisitorPool, type Member } from './smartsupp.pool';
import { persisted, VisitorRecords } from './smartsupp.records';
import { advanceMark, Coalescer, loadVisitors, mergeMark, parseVisitor, timeOf, type PersistedVisitor } from './smartsupp.state';
import { SmartsuppVisitor, type VisitorObserver, type VisitorShared } from './smartsupp.visitor';

/** Events every visitor socket of the account receives: forwarded once per window, not once per socket. */
const ACCOUNT_WIDE = new Set(['account.updated', 'agent.updated', 'agent.removed']);
const COALESCE_WINDOW_MS = 5_000;

/**
 * The channel's connector: one socket per visitor, each supervised by its own ConnectionSupervisor (so
 * reconnect and backoff live only there). `connect()` starts the persisted visitors and resolves once one
 * is live (or at once when there are none); the channel is lost when the last visitor drops or the account
 * key is refused. Visitor ids are persisted so a restart resumes the same visitors. The pool bounds the visitors and
 * expires those whose chat closed or that stayed idle; an expired visitor's record is removed.
 *
 * In a cluster (`ctx.placement`) the channel runs on every replica and each holds the visitors whose ownership key
 * hashes to its partitions. The visitors and their read marks live in the shared registry (the state topic) instead of
 * the state file: a replica starts the visitors it gains, and keeps one it lost (or created for another replica) for
 * `handoverOverlapMs` while the new holder connects, then closes it (make before break; copies share their event ids).
 */
export class SmartsuppConnector implements Connector, VisitorObserver {
  private readonly pool: VisitorPool;
  private readonly members: Map<string, Member>;
  /** Visitors whose socket is initialized now. */
  private readonly live: Set<SmartsuppVisitor>;
  private readonly placement?: ConversationPlacement;
  private readonly records: VisitorRecords;
  /** Cluster: every visitor of the channel in the shared registry (see VisitorRecords). */
  private readonly known: Map<string, PersistedVisitor>;
  /** New visitors (`conversation.start`) until their first handshake. */
  private readonly fresh = new Map<SmartsuppVisitor, { member: Member; done: (error?: ConnectorError) => void }>();
  private readonly coalescer = new Coalescer(COALESCE_WINDOW_MS);
  private readonly log: Logger;
  private readonly shared: VisitorShared;
  private closed = true;
  private up = false;
  private loading?: Promise<void>;
  private pendingConnect?: { resolve: () => void; reject: (e: ConnectorError) => void };
  /** The last handshake failure was a refused key; cleared by the next successful handshake. */
  private authFailed?: ConnectorError;
  private accountStatus?: string;

  constructor(private readonly ctx: ConnectorContext<SmartsuppOptions>) {
    this.log = ctx.logger;
    // Per-visitor retries are summarised by the channel's own status; they log only when debugging.
    const verbose = ['debug', 'trace'].includes(ctx.logger.level);
    const visitorLog = verbose ? ctx.logger.child({ scope: 'visitor' }) : ctx.logger.child({ scope: 'visitor' }, { level: 'error' });
    this.shared = { options: ctx.options, observer: this, url: ctx.options.url.replace(/\/+$/, '') };
    this.placement = ctx.placement;
    this.pool = new VisitorPool(ctx.options, ctx.policy, this.log, visitorLog, {
      owns: (id) => !this.placement || this.placement.owns(id),
      expired: (id) => this.records.forget(id),
      stale: (visitor) => this.records.persist(visitor, false),
      released: (id, visitor) => this.records.save(id, visitor),
      fault: (where, err, input) => ctx.hooks.fault(where, err, input),
    });
    this.members = this.pool.members;
    this.live = this.pool.live;
    this.records = new VisitorRecords(ctx.store, ctx.placement?.registry, this.members, this.log);
    this.known = this.records.known;
  }

  /** Live visitor sockets. */
  get liveVisitors(): number {
    return this.live.size;
  }

  heldConversations(): number {
    return this.members.size;
  }

  async connect(): Promise<void> {
    this.closed = false;
    this.loading ??= this.load();
    await this.loading;
    if (this.closed) throw new ConnectorError('closed', 'connector closed', { retriable: false });
    this.pool.start();
    for (const m of this.members.values()) if (!m.visitor.starting && m.supervisor.current === 'disconnected') this.pool.enqueue(m);
    this.pool.pump();
    if (!this.authFailed && (this.live.size > 0 || this.members.size === 0)) {
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
    const releasing = this.pool.stop();
    const all = [...this.members.values(), ...[...this.fresh.values()].map((f) => f.member)];
    for (const f of this.fresh.values()) f.done(new ConnectorError('closed', 'connector closed', { retriable: false }));
    await Promise.all(all.map((m) => m.supervisor.stop()));
    this.live.clear();
    // Visitors handed to another replica during the overlap are closed now: they are not this replica's.
    for (const id of releasing) {
      const member = this.members.get(id);
      if (member) this.records.save(id, member.visitor);
      this.members.delete(id);
    }
    this.records.flush();
  }

  placementChanged(): void {
    if (this.records.loaded) this.place();
  }

  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    if (command.type === 'conversation.start') return this.startConversation(identityOf(command));
    const emit = commandEmit(command);
    const conversationId = str(command.conversationId);
    if (!conversationId) throw new CommandError('invalid_command', `${command.type} needs "conversationId" (the visitor id)`, { retriable: false, sent: false });
    const member = this.members.get(conversationId);
    if (!member) {
      const expired = this.pool.expiredReason(conversationId);
      if (expired) throw new CommandError('unknown_conversation', `Smartsupp visitor "${conversationId}" expired (${expired}); start a new conversation`, { retriable: false, sent: false });
      // In a cluster the visitor may be one this replica is about to start (its registry record is on the way): retried.
      throw new CommandError('unknown_conversation', `no Smartsupp visitor "${conversationId}" on this channel${this.placement ? ' at this replica' : ''}`, { retriable: Boolean(this.placement), sent: false });
    }
    this.pool.touch(member.visitor);
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
    this.pool.started(visitor);
    const id = visitor.id as string;
    let rekeyed = false;
    if (previousId) {
      const member = this.members.get(previousId);
      this.members.delete(previousId);
      if (member) this.members.set(id, member);
      visitor.since = undefined;
      visitor.seen = undefined;
      rekeyed = true;
      this.records.forget(previousId);
      this.log.warn({ visitor: id, previous: previousId }, 'Smartsupp answered a persisted visitor id with a new visitor; the conversation id changed');
    } else if (!this.members.has(id)) {
      const f = this.fresh.get(visitor);
      if (f) this.members.set(id, f.member);
    }
    // A handshake that finished as the visitor expired or was handed over: it is no longer this pool's.
    if (this.members.get(id)?.visitor !== visitor) return;
    this.live.add(visitor);
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
      this.records.persist(visitor, isNew);
    }
    // Counted against maxVisitors at once (the registry write follows in the next turn).
    if (this.placement && isNew) this.known.set(id, persisted(visitor));
    // Its chat was closed while no socket was open.
    if (chat?.status === 'closed') this.pool.chatEnded(visitor);
    // A visitor started here for another replica (conversation.start at the channel's holder), or whose id changed.
    if (this.placement && !this.placement.owns(id)) this.pool.release(id, this.placement.handoverOverlapMs);
    this.fresh.get(visitor)?.done();
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
    this.fresh.get(visitor)?.done(error);
    if (this.pendingConnect && this.live.size === 0) {
      this.settle(error);
    } else if (this.up && error.authFailure) {
      this.up = false;
      this.ctx.hooks.lost(error);
    }
  }

  lost(visitor: SmartsuppVisitor, error: ConnectorError): void {
    if (this.closed) return;
    this.live.delete(visitor);
    this.log.debug({ visitor: visitor.id, reason: error.message }, 'visitor socket lost');
    if (this.up && this.live.size === 0) {
      this.up = false;
      this.ctx.hooks.lost(new ConnectorError(error.code, `every visitor socket is down (last: ${error.message})`, { retriable: true, cause: error }));
    }
  }

  event(visitor: SmartsuppVisitor, event: string, data: unknown): void {
    if (this.closed) return;
    if (!ACCOUNT_WIDE.has(event)) this.pool.touch(visitor);
    if (event === 'chat.closed' || event === 'chat.deleted') this.pool.chatEnded(visitor);
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
      this.records.persist(visitor, false);
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
    // In a cluster the channel's visitors are the registry's (every replica's); starts in progress count too.
    this.pool.admit(this.ctx.channelId, (this.placement ? this.known.size : this.members.size) + this.fresh.size);
    const member = this.pool.create(new SmartsuppVisitor(this.shared, null, identity));
    const error = await new Promise<ConnectorError | undefined>((resolve) => {
      const done = (e?: ConnectorError) => {
        this.fresh.delete(member.visitor);
        resolve(e);
      };
      this.fresh.set(member.visitor, { member, done });
      member.supervisor.start();
    });
    if (error) {
      await member.supervisor.stop();
      // The visitor may exist upstream only when the handshake timed out after visitor.connect left; it holds no chat.
      throw new CommandError(error.code, `conversation.start failed: ${error.message}`, { retriable: error.retriable && !error.authFailure, sent: false, cause: error });
    }
    const id = member.visitor.id as string;
    return { conversationId: id, result: { visitorId: id, chatId: member.visitor.chatId ?? null } };
  }

  /** A persisted visitor this replica runs; undefined when it was idle too long already (it expires unstarted). */
  private addMember(id: string, p: PersistedVisitor): Member | undefined {
    const activeAt = timeOf(p.activeAt);
    if (activeAt !== undefined && this.pool.idle(activeAt)) {
      this.pool.expire(id, 'idle');
      return undefined;
    }
    const visitor = new SmartsuppVisitor(this.shared, id, p.identity);
    visitor.chatId = p.chatId;
    visitor.since = timeOf(p.since);
    visitor.seen = p.seen;
    if (activeAt !== undefined) visitor.activeAt = visitor.savedActiveAt = activeAt;
    const member = this.pool.create(visitor);
    this.members.set(id, member);
    return member;
  }

  /** The persisted visitors: the state file's, or in a cluster the shared registry's (the file's copied in once). */
  private async load(): Promise<void> {
    const fromFile = loadVisitors(this.ctx.store);
    if (!this.placement) {
      for (const [id, p] of fromFile) this.addMember(id, p);
      this.records.loaded = true;
      return;
    }
    await this.records.loadShared(fromFile);
    this.placement.registry.watch((id, v) => this.registryRecord(id, v));
    this.records.loaded = true;
    this.place();
  }

  /** Cluster: starts the known visitors this replica owns and lets go of the ones it no longer owns. */
  private place(): void {
    const placement = this.placement;
    if (!placement) return;
    for (const [id, p] of this.known) {
      if (!placement.owns(id)) continue;
      this.pool.keep(id);
      if (!this.members.has(id)) {
        const member = this.addMember(id, p);
        if (member && !this.closed) this.pool.enqueue(member);
      }
    }
    for (const id of this.members.keys()) if (!placement.owns(id)) this.pool.release(id, placement.handoverOverlapMs);
    if (!this.closed) this.pool.pump();
  }

  /** Cluster: a registry record (another replica's, or this one's own coming back). */
  private registryRecord(id: string, value: unknown): void {
    if (value === null) {
      // Expired by its holder (or by this replica, coming back): a socket kept here during an overlap closes too.
      this.known.delete(id);
      this.pool.expire(id, 'elsewhere');
      return;
    }
    if (this.pool.expiredReason(id) !== undefined) {
      // A late write of an expired visitor (its previous holder's read mark): not brought back.
      if (this.placement?.owns(id)) this.placement.registry.save(id, null);
      return;
    }
    const p = parseVisitor(value);
    if (!p) {
      this.log.warn({ visitor: id }, 'visitor registry record is not a visitor; skipped');
      return;
    }
    const member = this.members.get(id);
    if (member) {
      // The previous holder's last read mark (written when it let go): never move backwards.
      const { visitor } = member;
      mergeMark(visitor, p);
      if (!visitor.chatId && p.chatId) visitor.chatId = p.chatId;
      this.known.set(id, persisted(visitor));
      return;
    }
    this.known.set(id, p);
    if (this.placement?.owns(id) && !this.closed) {
      const member = this.addMember(id, p);
      if (member) this.pool.enqueue(member);
      this.pool.pump();
    }
  }

  /** Moves a visitor's message high-water mark forward past `msg`: a new message, so its chat is open (again). */
  private advance(visitor: SmartsuppVisitor, msg: unknown): void {
    if (!advanceMark(visitor, msg)) return;
    this.pool.chatResumed(visitor);
    this.records.persist(visitor, false);
  }

  private settle(error?: ConnectorError): void {
    const p = this.pendingConnect;
    if (!p) return;
    this.pendingConnect = undefined;
    if (error) p.reject(error);
    else p.resolve();
  }
}
