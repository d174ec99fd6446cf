import type { Logger } from 'pino';
import { CommandError, ConnectorError } from '../../common/errors';
import type { CommandOutcome, Connector, ConnectorContext, ConversationPlacement, UpstreamCommand } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { ConnectionSupervisor } from '../supervisor';
import { ackMessageId, commandEmit, identityOf, type VisitorIdentity } from './smartsupp.commands';
import { ACK_EVENTS, type SmartsuppFrame } from './smartsupp.mapper';
import type { SmartsuppOptions } from './smartsupp.options';
import { Coalescer, loadVisitors, parseVisitor, timeOf, VISITORS_KEY, type PersistedVisitor } from './smartsupp.state';
import { SmartsuppVisitor, type VisitorObserver, type VisitorShared } from './smartsupp.visitor';

/** Events every visitor socket of the account receives: forwarded once per window, not once per socket. */
const ACCOUNT_WIDE = new Set(['account.updated', 'agent.updated', 'agent.removed']);
const COALESCE_WINDOW_MS = 5_000;
/** Delay before message high-water marks are written (new visitors are written at once). */
const PERSIST_DELAY_MS = 2_000;
/** Cluster: longest wait at the first connect for the shared visitor registry's history. */
const REGISTRY_WAIT_MS = 15_000;

interface Member {
  visitor: SmartsuppVisitor;
  supervisor: ConnectionSupervisor;
}

/**
 * The channel's connector: one socket per visitor, each supervised by its own ConnectionSupervisor (so
 * reconnect and backoff live only there). `connect()` starts the persisted visitors and resolves once one
 * is live (or at once when there are none); the channel is lost when the last visitor drops or the account
 * key is refused. Visitor ids are persisted so a restart resumes the same visitors.
 *
 * In a cluster (`ctx.placement`) the channel runs on every replica and each holds the visitors whose ownership key
 * hashes to its partitions. The visitors and their read marks live in the shared registry (the state topic) instead of
 * the state file: a replica starts the visitors it gains, and keeps one it lost (or created for another replica) for
 * `handoverOverlapMs` while the new holder connects, then closes it (make before break; copies share their event ids).
 */
export class SmartsuppConnector implements Connector, VisitorObserver {
  private readonly members = new Map<string, Member>();
  /** Visitors whose socket is initialized now. */
  private readonly live = new Set<SmartsuppVisitor>();
  private readonly placement?: ConversationPlacement;
  /** Cluster: every visitor of the channel in the shared registry, with its latest read mark (this replica runs its own). */
  private readonly known = new Map<string, PersistedVisitor>();
  /** Cluster: visitors that went to another replica, closed when their timer fires. */
  private readonly releasing = new Map<string, NodeJS.Timeout>();
  /** Cluster: visitors whose record changed since the last write. */
  private readonly dirty = new Set<string>();
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
  private loading?: Promise<void>;
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
    this.placement = ctx.placement;
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
    for (const m of this.members.values()) if (!m.visitor.starting && m.supervisor.current === 'disconnected') this.enqueue(m);
    this.pump();
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
    for (const m of this.queue) m.visitor.starting = false;
    for (const m of this.members.values()) m.visitor.starting = false;
    this.queue.length = 0;
    this.inFlight = 0;
    for (const timer of this.releasing.values()) clearTimeout(timer);
    const all = [...this.members.values(), ...[...this.fresh.values()].map((f) => f.member)];
    for (const f of this.fresh.values()) f.done(new ConnectorError('closed', 'connector closed', { retriable: false }));
    await Promise.all(all.map((m) => m.supervisor.stop()));
    this.live.clear();
    // Visitors handed to another replica during the overlap are closed now: they are not this replica's.
    for (const id of this.releasing.keys()) {
      const member = this.members.get(id);
      if (member) this.save(id, member.visitor);
      this.members.delete(id);
    }
    this.releasing.clear();
    this.persistNow();
  }

  placementChanged(fenced: boolean): void {
    if (this.loaded) this.place(fenced);
  }

  async execute(command: UpstreamCommand): Promise<CommandOutcome> {
    if (command.type === 'conversation.start') return this.startConversation(identityOf(command));
    const emit = commandEmit(command);
    const conversationId = str(command.conversationId);
    if (!conversationId) throw new CommandError('invalid_command', `${command.type} needs "conversationId" (the visitor id)`, { retriable: false, sent: false });
    const member = this.members.get(conversationId);
    if (!member) {
      // In a cluster the visitor may be one this replica is about to start (its registry record is on the way): retried.
      throw new CommandError('unknown_conversation', `no Smartsupp visitor "${conversationId}" on this channel${this.placement ? ' at this replica' : ''}`, { retriable: Boolean(this.placement), sent: false });
    }
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
      this.persist(visitor, isNew);
    }
    // A visitor started here for another replica (conversation.start at the channel's holder), or whose id changed.
    if (this.placement && !this.placement.owns(id)) this.release(id, this.placement.handoverOverlapMs);
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
      this.persist(visitor, false);
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

  private addMember(id: string, p: PersistedVisitor): Member {
    const visitor = new SmartsuppVisitor(this.shared, id, p.identity);
    visitor.chatId = p.chatId;
    visitor.since = timeOf(p.since);
    visitor.seen = p.seen;
    const member = this.createMember(visitor);
    this.members.set(id, member);
    return member;
  }

  /** The persisted visitors: the state file's, or in a cluster the shared registry's (the file's copied in once). */
  private async load(): Promise<void> {
    const fromFile = loadVisitors(this.ctx.state);
    if (!this.placement) {
      for (const [id, p] of fromFile) this.addMember(id, p);
      this.loaded = true;
      return;
    }
    const { registry } = this.placement;
    if (!(await registry.ready(REGISTRY_WAIT_MS))) {
      this.log.warn({ waitedMs: REGISTRY_WAIT_MS }, 'the shared visitor registry (state topic) was not read to its end in time; starting with the visitors known so far (the rest start as their records arrive)');
    }
    for (const [id, v] of registry.all()) {
      const p = parseVisitor(v);
      if (p) this.known.set(id, p);
    }
    // Visitors of a single-replica run before cluster mode: copied into the registry so any replica can hold them.
    const migrated = [...fromFile].filter(([id]) => !this.known.has(id));
    for (const [id, p] of migrated) {
      this.known.set(id, p);
      registry.save(id, p);
    }
    if (migrated.length) this.log.info({ visitors: migrated.length }, 'visitors from stateDir copied to the shared visitor registry');
    registry.watch((id, v) => this.registryRecord(id, v));
    this.loaded = true;
    this.place(false);
  }

  /** Cluster: starts the known visitors this replica owns and lets go of the ones it no longer owns. */
  private place(fenced: boolean): void {
    const placement = this.placement;
    if (!placement) return;
    for (const [id, p] of this.known) {
      if (!placement.owns(id)) continue;
      this.keep(id);
      if (!this.members.has(id)) {
        const member = this.addMember(id, p);
        if (!this.closed) this.enqueue(member);
      }
    }
    for (const id of this.members.keys()) if (!placement.owns(id)) this.release(id, fenced ? 0 : placement.handoverOverlapMs);
    if (!this.closed) this.pump();
  }

  /** Cluster: a registry record (another replica's, or this one's own coming back). */
  private registryRecord(id: string, value: unknown): void {
    if (value === null) {
      this.known.delete(id);
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
      const t = timeOf(p.since);
      const { visitor } = member;
      if (t !== undefined && (visitor.since === undefined || t > visitor.since)) {
        visitor.since = t;
        visitor.seen = p.seen;
      } else if (t !== undefined && t === visitor.since && p.seen?.length) {
        visitor.seen = [...new Set([...(visitor.seen ?? []), ...p.seen])];
      }
      if (!visitor.chatId && p.chatId) visitor.chatId = p.chatId;
      this.known.set(id, persisted(visitor));
      return;
    }
    this.known.set(id, p);
    if (this.placement?.owns(id) && !this.closed) {
      this.enqueue(this.addMember(id, p));
      this.pump();
    }
  }

  /** Cluster: closes a visitor this replica no longer owns after `afterMs` (unless it comes back meanwhile). */
  private release(id: string, afterMs: number): void {
    if (this.releasing.has(id) && afterMs > 0) return;
    clearTimeout(this.releasing.get(id));
    const timer = setTimeout(() => {
      this.releasing.delete(id);
      if (this.placement?.owns(id)) return;
      const member = this.members.get(id);
      if (!member) return;
      this.members.delete(id);
      this.live.delete(member.visitor);
      const queued = this.queue.indexOf(member);
      if (queued >= 0) this.queue.splice(queued, 1);
      else if (member.visitor.starting) this.inFlight = Math.max(0, this.inFlight - 1);
      member.visitor.starting = false;
      // Its last read mark, for the new holder.
      this.save(id, member.visitor);
      this.log.debug({ visitor: id }, 'visitor handed to another replica; closing its socket here');
      void member.supervisor.stop();
      this.pump();
    }, afterMs);
    timer.unref?.();
    this.releasing.set(id, timer);
  }

  /** Cluster: a visitor owned again before its release fired stays. */
  private keep(id: string): void {
    clearTimeout(this.releasing.get(id));
    this.releasing.delete(id);
  }

  /** Cluster: writes one visitor's record to the registry. */
  private save(id: string, visitor: SmartsuppVisitor): void {
    const p = persisted(visitor);
    this.known.set(id, p);
    this.placement?.registry.save(id, p);
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
    this.persist(visitor, false);
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
  private persist(visitor: SmartsuppVisitor, now: boolean): void {
    if (visitor.id) this.dirty.add(visitor.id);
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
    if (this.placement) {
      for (const id of this.dirty) {
        const member = this.members.get(id);
        if (member) this.save(id, member.visitor);
      }
      this.dirty.clear();
      return;
    }
    const out: Record<string, PersistedVisitor> = {};
    for (const [id, { visitor }] of this.members) out[id] = persisted(visitor);
    try {
      this.ctx.state.set(VISITORS_KEY, out);
    } catch (err) {
      this.log.error({ err: String(err) }, 'cannot persist Smartsupp visitors');
    }
  }
}

/** What is kept of a visitor: chat, read mark, identity. */
function persisted(visitor: SmartsuppVisitor): PersistedVisitor {
  const p: PersistedVisitor = {};
  if (visitor.chatId) p.chatId = visitor.chatId;
  if (visitor.since !== undefined) p.since = new Date(visitor.since).toISOString();
  if (visitor.seen?.length) p.seen = visitor.seen;
  if (visitor.identity) p.identity = visitor.identity;
  return p;
}
