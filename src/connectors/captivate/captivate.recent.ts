import type { ChannelState } from '../connector.interface';

const STATE_KEY = 'recentConversations';

/**
 * The conversations a channel saw most recently (bounded, least recent evicted), each with the key of the
 * last bot/agent message seen in it: the watermark from which a transcript is replayed after a reconnect.
 * Kept in the channel's durable state so a restart keeps them; writes are batched because the state store
 * rewrites its whole file on every change.
 */
export class RecentConversations {
  private readonly entries = new Map<string, string | null>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly state: ChannelState,
    private readonly max: number,
    private readonly flushAfterMs = 1000,
  ) {
    const saved = state.get<unknown>(STATE_KEY);
    if (!Array.isArray(saved)) return;
    for (const item of saved.slice(-max)) {
      if (Array.isArray(item) && typeof item[0] === 'string') this.entries.set(item[0], typeof item[1] === 'string' ? item[1] : null);
    }
  }

  /** Number of conversations remembered. */
  get size(): number {
    return this.entries.size;
  }

  /** Marks a conversation as just seen, and its last message when given. */
  touch(conversationId: string, messageKey?: string): void {
    if (this.max === 0) return;
    const last = messageKey ?? this.entries.get(conversationId) ?? null;
    this.entries.delete(conversationId);
    this.entries.set(conversationId, last);
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    this.scheduleFlush();
  }

  /** The key of the last message seen in a conversation. */
  lastKey(conversationId: string): string | undefined {
    return this.entries.get(conversationId) ?? undefined;
  }

  /** The conversation seen last. */
  mostRecent(): string | undefined {
    let last: string | undefined;
    for (const id of this.entries.keys()) last = id;
    return last;
  }

  /** Conversation ids, most recent first. */
  ids(): string[] {
    return [...this.entries.keys()].reverse();
  }

  /** Writes pending changes now (nothing when there are none). */
  flush(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.state.set(STATE_KEY, [...this.entries.entries()]);
  }

  private scheduleFlush(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.flushAfterMs);
    this.timer.unref?.();
  }
}
