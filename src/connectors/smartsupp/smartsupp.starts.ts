import { CommandError, type ConnectorError } from '../../common/errors';
import type { CommandOutcome } from '../connector.interface';
import type { VisitorIdentity } from './smartsupp.commands';
import type { Member, VisitorPool } from './smartsupp.pool';
import { SmartsuppVisitor, type VisitorShared } from './smartsupp.visitor';

/**
 * `conversation.start`: a new visitor, started at once (not queued behind the persisted ones), held here until its
 * first handshake ends. It joins the pool's members when the handshake gives it an id.
 */
export class ConversationStarts {
  private readonly fresh = new Map<SmartsuppVisitor, { member: Member; done: (error?: ConnectorError) => void }>();

  constructor(
    private readonly pool: VisitorPool,
    private readonly shared: VisitorShared,
  ) {}

  /** Starts in progress (they count against `maxVisitors`). */
  get size(): number {
    return this.fresh.size;
  }

  /** The member of a visitor being started here, undefined for any other. */
  memberOf(visitor: SmartsuppVisitor): Member | undefined {
    return this.fresh.get(visitor)?.member;
  }

  /** The visitor's first handshake ended: its start resolves, or fails with `error`. */
  settle(visitor: SmartsuppVisitor, error?: ConnectorError): void {
    this.fresh.get(visitor)?.done(error);
  }

  /** Starts a new visitor; resolves with its id once it is live. */
  async start(identity: VisitorIdentity | undefined): Promise<CommandOutcome> {
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

  /** The channel closes: every start fails with `error`; returns their members, whose sockets the caller stops. */
  close(error: ConnectorError): Member[] {
    const members = [...this.fresh.values()].map((f) => f.member);
    for (const f of [...this.fresh.values()]) f.done(error);
    return members;
  }
}
