import type { Logger } from 'pino';
import { CommandError } from '../../common/errors';
import { OldestKey } from '../../common/oldest-key';
import { ConnectionSupervisor, type SupervisorListener, type SupervisorPolicy } from '../supervisor';
import type { SmartsuppOptions } from './smartsupp.options';
import type { SmartsuppVisitor } from './smartsupp.visitor';

/** One visitor socket and the supervisor that reconnects it. */
export interface Member {
  visitor: SmartsuppVisitor;
  supervisor: ConnectionSupervisor;
}

/** Why a visitor left for good: its chat closed, it stayed idle, or another replica expired it. */
export type ExpiryReason = 'chat_closed' | 'idle' | 'elsewhere';

const REASON_TEXT: Record<ExpiryReason, string> = {
  chat_closed: 'its chat was closed',
  idle: 'it was idle longer than smartsupp.visitorIdleMs',
  elsewhere: 'its chat was closed or it was idle',
};

/** What the pool asks of the channel connector. */
export interface PoolHooks {
  /** True when this replica runs the visitor (always, without a cluster): only those expire here. */
  owns(id: string): boolean;
  /** A visitor expired here: forget its record (state file, shared registry). */
  expired(id: string, reason: ExpiryReason): void;
  /** The activity time written to the state is well behind the visitor's: write it again. */
  stale(visitor: SmartsuppVisitor): void;
  /** Cluster: a visitor handed to another replica is closing here (its last read mark goes to the registry). */
  released(id: string, visitor: SmartsuppVisitor): void;
  /** Handling a visitor's upstream input threw (reported by the channel's fault boundary). */
  fault(where: string, err: unknown, input: unknown[]): void;
}

/**
 * The channel's visitor sockets at this replica and their lifetime: handshakes throttled to `startConcurrency`, at most
 * `maxVisitors` visitors, and expiry (a closed chat after `closedVisitorGraceMs`, no frame and no command for
 * `visitorIdleMs`). An expired visitor's socket is closed and its id remembered (up to `maxVisitors` of them), so a
 * later command for it fails as expired instead of starting it again.
 */
export class VisitorPool {
  /** Visitors by id. */
  readonly members = new Map<string, Member>();
  /** Visitors whose socket is initialized now. */
  readonly live = new Set<SmartsuppVisitor>();
  private readonly queue: Member[] = [];
  private inFlight = 0;
  /** Visitors whose chat ended, until their grace runs out. */
  private readonly ending = new Map<SmartsuppVisitor, NodeJS.Timeout>();
  /** Recently expired ids (oldest first). */
  private readonly gone = new Map<string, ExpiryReason>();
  private readonly oldestGone = new OldestKey(this.gone);
  /** Cluster: visitors that went to another replica, closed when their timer fires. */
  private readonly releasing = new Map<string, NodeJS.Timeout>();
  private sweeper?: NodeJS.Timeout;
  /**
   * What every visitor's supervisor reports, one object for all of them (a visitor's status is summarised by the
   * channel's, and its frames come through the connector, not the supervisor), so a visitor costs no closures here.
   */
  private readonly supervised: SupervisorListener = {
    status: () => undefined,
    frame: () => undefined,
    fault: (where, err, input) => this.hooks.fault(where, err, input),
  };

  constructor(
    private readonly options: SmartsuppOptions,
    private readonly policy: SupervisorPolicy,
    private readonly log: Logger,
    private readonly visitorLog: Logger,
    private readonly hooks: PoolHooks,
  ) {}

  /** A supervised member for `visitor` (not yet in `members`, not started). */
  create(visitor: SmartsuppVisitor): Member {
    const supervisor = new ConnectionSupervisor(
      (hooks) => {
        visitor.hooks = hooks;
        return visitor;
      },
      this.policy,
      this.supervised,
      this.visitorLog,
    );
    return { visitor, supervisor };
  }

  /** Refuses a new visitor when the channel already has `count` ≥ `maxVisitors` of them. */
  admit(channelId: string, count: number): void {
    const max = this.options.maxVisitors;
    if (count < max) return;
    throw new CommandError('too_many_visitors', `channel ${channelId} has ${count} Smartsupp visitors, its maximum (smartsupp.maxVisitors ${max}); conversation.start refused until visitors close or expire`, { retriable: false, sent: false });
  }

  /** True when a visitor last active at `activeAt` is past `visitorIdleMs`. */
  idle(activeAt: number, now = Date.now()): boolean {
    return now - activeAt >= this.options.visitorIdleMs;
  }

  /** Records a frame or command of the visitor. */
  touch(visitor: SmartsuppVisitor): void {
    visitor.activeAt = Date.now();
  }

  /** The visitor's chat closed or was deleted: it expires after the grace unless `chatResumed` comes first. */
  chatEnded(visitor: SmartsuppVisitor): void {
    if (this.ending.has(visitor)) return;
    const timer = setTimeout(() => {
      this.ending.delete(visitor);
      if (visitor.id && this.members.get(visitor.id)?.visitor === visitor && this.hooks.owns(visitor.id)) this.expire(visitor.id, 'chat_closed');
    }, this.options.closedVisitorGraceMs);
    timer.unref?.();
    this.ending.set(visitor, timer);
  }

  /** A new message in the visitor's chat (not an echo of one already seen): it is open again. */
  chatResumed(visitor: SmartsuppVisitor): void {
    clearTimeout(this.ending.get(visitor));
    this.ending.delete(visitor);
  }

  /** Why `id` expired, when it did recently. */
  expiredReason(id: string): string | undefined {
    const reason = this.gone.get(id);
    return reason && REASON_TEXT[reason];
  }

  /** Cluster: closes a visitor this replica no longer owns after `afterMs` (unless it is owned again meanwhile). */
  release(id: string, afterMs: number): void {
    if (this.releasing.has(id) && afterMs > 0) return;
    clearTimeout(this.releasing.get(id));
    const timer = setTimeout(() => {
      this.releasing.delete(id);
      if (this.hooks.owns(id)) return;
      const member = this.drop(id);
      if (!member) return;
      this.hooks.released(id, member.visitor);
      this.log.debug({ visitor: id }, 'visitor handed to another replica; closing its socket here');
      void member.supervisor.stop();
    }, afterMs);
    timer.unref?.();
    this.releasing.set(id, timer);
  }

  /** Cluster: a visitor owned again before its release fired stays. */
  keep(id: string): void {
    clearTimeout(this.releasing.get(id));
    this.releasing.delete(id);
  }

  /** Closes a visitor for good; `hooks.expired` forgets its record unless another replica expired it. */
  expire(id: string, reason: ExpiryReason): void {
    const member = this.drop(id);
    this.keep(id);
    // Its own removal coming back from the registry keeps the reason it had here.
    if (reason !== 'elsewhere' || !this.gone.has(id)) {
      this.gone.delete(id);
      this.gone.set(id, reason);
    }
    if (this.gone.size > this.options.maxVisitors) this.oldestGone.take();
    else this.oldestGone.release();
    if (member) void member.supervisor.stop();
    if (member || reason !== 'elsewhere') this.log.info({ visitor: id, reason }, 'Smartsupp visitor expired; its socket is closed and its record removed');
    if (reason !== 'elsewhere') this.hooks.expired(id, reason);
  }

  /** Takes a visitor out of the pool (out of the start queue too) without closing its socket; returns it. */
  drop(id: string): Member | undefined {
    const member = this.members.get(id);
    if (!member) return undefined;
    this.members.delete(id);
    this.live.delete(member.visitor);
    this.chatResumed(member.visitor);
    const queued = this.queue.indexOf(member);
    if (queued >= 0) this.queue.splice(queued, 1);
    else if (member.visitor.starting) this.inFlight = Math.max(0, this.inFlight - 1);
    member.visitor.starting = false;
    this.pump();
    return member;
  }

  /** Queues a member's first connect (see `pump`). */
  enqueue(m: Member): void {
    m.visitor.starting = true;
    this.queue.push(m);
  }

  /** Starts queued visitors, at most `startConcurrency` handshakes at a time. */
  pump(): void {
    while (this.inFlight < this.options.startConcurrency && this.queue.length) {
      const m = this.queue.shift() as Member;
      this.inFlight++;
      m.supervisor.start();
    }
  }

  /** A queued visitor's first handshake ended (either way): the next one may start. */
  started(visitor: SmartsuppVisitor): void {
    if (!visitor.starting) return;
    visitor.starting = false;
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.pump();
  }

  /** Starts the idle sweep (every quarter of `visitorIdleMs`, at most every minute). */
  start(): void {
    if (this.sweeper) return;
    const every = Math.max(10, Math.min(60_000, Math.floor(this.options.visitorIdleMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref?.();
  }

  /** Expires the idle visitors this replica runs; asks for a write where the stored activity time lags. */
  sweep(now = Date.now()): void {
    const lag = this.options.visitorIdleMs / 8;
    for (const [id, { visitor }] of [...this.members]) {
      if (!this.hooks.owns(id)) continue;
      if (this.idle(visitor.activeAt, now)) this.expire(id, 'idle');
      else if (visitor.activeAt - (visitor.savedActiveAt ?? 0) > lag) this.hooks.stale(visitor);
    }
  }

  /**
   * Stops the sweep, the timers and the start queue (the sockets are the connector's to close); returns the visitors
   * that were being handed to another replica.
   */
  stop(): string[] {
    const releasing = [...this.releasing.keys()];
    for (const timer of this.releasing.values()) clearTimeout(timer);
    this.releasing.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const timer of this.ending.values()) clearTimeout(timer);
    this.ending.clear();
    for (const m of this.queue) m.visitor.starting = false;
    for (const m of this.members.values()) m.visitor.starting = false;
    this.queue.length = 0;
    this.inFlight = 0;
    return releasing;
  }
}
