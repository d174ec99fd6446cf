import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-v2';
import type { SimAgent, SimAttachment, SimChat, SimConnectedData, SimMessage, SimVisitorInfo } from './smartsupp.simulator.types';

/** One visitor as the simulated server keeps it: identity, current chat, and its initialized sockets. */
export interface VisitorRecord {
  info: SimVisitorInfo;
  chat: SimChat | null;
  sockets: Set<Socket>;
}

/** What `addMessage` needs besides the defaults. */
export interface NewMessage {
  type?: SimMessage['type'];
  subType: SimMessage['subType'];
  content: SimMessage['content'];
  agentId?: string | null;
  trigger?: SimMessage['trigger'];
  attachments?: SimAttachment[];
}

const IDENTITY = ['name', 'email', 'phone', 'lang', 'group'] as const;

const DEFAULT_AGENT: SimAgent = { id: 'agent-1', status: 'online', groups: [], nickname: 'Alice', fullname: 'Alice Agent', description: '', avatar: '' };

/** Visitors, chats and messages of one simulated account; survives simulator restarts. */
export class SmartsuppVisitorStore {
  accountStatus: 'online' | 'offline' = 'online';
  readonly agents: SimAgent[];
  private readonly visitors = new Map<string, VisitorRecord>();
  private lastTs = 0;

  constructor(agents: SimAgent[] = [DEFAULT_AGENT]) {
    this.agents = agents.map((a) => ({ ...a }));
  }

  /** A new id in the service's style (opaque lower-case alphanumerics) [I]. */
  static newId(prefix: string): string {
    return `${prefix}${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`;
  }

  get(id: string): VisitorRecord | undefined {
    return this.visitors.get(id);
  }

  require(id: string): VisitorRecord {
    const v = this.visitors.get(id);
    if (!v) throw new Error(`unknown visitor ${id}`);
    return v;
  }

  all(): IterableIterator<VisitorRecord> {
    return this.visitors.values();
  }

  forget(id: string): void {
    this.visitors.delete(id);
  }

  agent(id: string): SimAgent | undefined {
    return this.agents.find((a) => a.id === id);
  }

  /** The visitor of a `visitor.connect`: the known one by id, else a new one [I: unknown ids get a new visitor]. */
  resume(id: string | null, data: Record<string, unknown>): VisitorRecord {
    let visitor = id ? this.visitors.get(id) : undefined;
    if (!visitor) {
      const info: SimVisitorInfo = { id: SmartsuppVisitorStore.newId('v'), chatId: null, lang: null, name: null, email: null, phone: null, bannedAt: null, group: null, visits: 0, variables: {} };
      visitor = { info, chat: null, sockets: new Set() };
      this.visitors.set(info.id, visitor);
    }
    for (const field of IDENTITY) if (typeof data[field] === 'string') visitor.info[field] = data[field] as string;
    visitor.info.visits++;
    return visitor;
  }

  /** The visitor's chat; a new one when it has none (or, with `reopen`, when it is closed). */
  chatOf(visitorId: string, reopen = false): { visitor: VisitorRecord; chat: SimChat } {
    const visitor = this.require(visitorId);
    if (!visitor.chat || (reopen && visitor.chat.status === 'closed')) {
      visitor.chat = {
        id: SmartsuppVisitorStore.newId('c'),
        assignedIds: [],
        rating: null,
        status: 'pending',
        readInfo: { type: 'agent', lastReadAt: null },
        unreadInfo: { type: 'visitor', count: 0, lastReadAt: null },
        messages: [],
      };
      visitor.info.chatId = visitor.chat.id;
    }
    return { visitor, chat: visitor.chat };
  }

  /** Appends a message with strictly increasing `createdAt`. */
  addMessage(visitor: VisitorRecord, chat: SimChat, m: NewMessage): SimMessage {
    this.lastTs = Math.max(Date.now(), this.lastTs + 1);
    const msg: SimMessage = {
      id: SmartsuppVisitorStore.newId('m'),
      type: m.type ?? 'message',
      subType: m.subType,
      channel: { type: 'default', id: null },
      chatId: chat.id,
      groupId: null,
      visitorId: visitor.info.id,
      agentId: m.agentId ?? null,
      trigger: m.trigger ?? null,
      createdAt: new Date(this.lastTs).toISOString(),
      content: m.content,
      tags: [],
      responseTime: null,
      attachments: m.attachments ?? [],
    };
    chat.messages.push(msg);
    if (m.subType === 'agent' || m.subType === 'trigger') chat.unreadInfo.count++;
    return msg;
  }

  /** The `visitor.connect` ack: latest visitor, account and chat (with every message). */
  connectedData(visitor: VisitorRecord): SimConnectedData {
    const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
    return {
      serverVersion: 3,
      visitor: clone(visitor.info),
      browser: { isMobile: false, isTablet: false, isDesktop: true, isSmartTV: false, isIE: false, isEdge: false },
      account: { status: this.accountStatus, agents: clone(this.agents), groups: [] },
      chat: visitor.chat ? clone(visitor.chat) : null,
    };
  }
}
