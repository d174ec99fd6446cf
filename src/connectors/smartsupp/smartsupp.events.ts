import type { ConnectorHooks } from '../connector.interface';
import { isRecord, str } from '../mapper';
import { ACK_EVENTS, type SmartsuppFrame } from './smartsupp.mapper';
import type { VisitorPool } from './smartsupp.pool';
import type { VisitorRecords } from './smartsupp.records';
import { advanceMark, Coalescer } from './smartsupp.state';
import type { SmartsuppVisitor } from './smartsupp.visitor';

/** Events every visitor socket of the account receives: forwarded once per window, not once per socket. */
const ACCOUNT_WIDE = new Set(['account.updated', 'agent.updated', 'agent.removed']);
const COALESCE_WINDOW_MS = 5_000;

/**
 * What the visitor sockets' input means for the channel: frames for the pipeline (account-wide events once, not once
 * per socket), activity and chat lifetime for the pool, read marks and chat ids for the records.
 */
export class VisitorEvents {
  private readonly coalescer = new Coalescer(COALESCE_WINDOW_MS);
  private accountStatus?: string;

  constructor(
    private readonly hooks: Pick<ConnectorHooks, 'frame'>,
    private readonly pool: VisitorPool,
    private readonly records: VisitorRecords,
  ) {}

  /**
   * A visitor's handshake (`data` is ConnectedData): its snapshot as the `initialized` frame, to be read from the
   * visitor's read mark on, which then moves past the snapshot's messages; the account status when it changed.
   */
  initialized(visitor: SmartsuppVisitor, data: Record<string, unknown>, chat: Record<string, unknown> | undefined): void {
    const frame: SmartsuppFrame = { visitorId: visitor.id as string, data };
    if (visitor.since !== undefined) {
      frame.since = new Date(visitor.since).toISOString();
      frame.seen = visitor.seen ?? [];
    }
    this.hooks.frame({ event: ACK_EVENTS.initialized, payload: frame });
    for (const msg of Array.isArray(chat?.messages) ? chat.messages : []) this.advance(visitor, msg);
    const status = isRecord(data.account) ? str(data.account.status) : undefined;
    if (status && status !== this.accountStatus) {
      this.accountStatus = status;
      this.forward(visitor, ACK_EVENTS.accountStatus, status);
    }
  }

  /** A server-pushed event of one visitor's socket. */
  event(visitor: SmartsuppVisitor, event: string, data: unknown): void {
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

  /** Publishes one frame of the visitor; a sent message's ack (`ACK_EVENTS`) moves its read mark too. */
  forward(visitor: SmartsuppVisitor, event: string, data: unknown): void {
    if (event === ACK_EVENTS.message || event === ACK_EVENTS.uploadFinish) this.advance(visitor, data);
    const payload: SmartsuppFrame = { visitorId: visitor.id ?? '', data };
    this.hooks.frame({ event, payload });
  }

  /** Moves a visitor's message high-water mark forward past `msg`: a new message, so its chat is open (again). */
  private advance(visitor: SmartsuppVisitor, msg: unknown): void {
    if (!advanceMark(visitor, msg)) return;
    this.pool.chatResumed(visitor);
    this.records.persist(visitor, false);
  }
}
