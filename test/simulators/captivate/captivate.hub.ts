import { randomUUID } from 'node:crypto';
import { asRecord, newEventId } from './captivate.wire';

/** One transcript entry, in the SDK ≥5 REST shape (bot replies keep their ch_msg_id as message_id). */
export interface SimTranscriptEntry {
  from: 'user' | 'bot' | 'agent';
  message_id?: string;
  event_id?: string;
  content: unknown;
  timestamp: string;
}

/** A conversation: the socket its replies go to, its metadata and transcript. */
export interface Conversation {
  id: string;
  socketId?: string;
  metadata: Record<string, unknown>;
  transcript: SimTranscriptEntry[];
}

/** What the hub needs of the sockets. */
export interface HubSockets {
  /** Sends one event to the socket when it is open (false when it is gone: the event is lost). */
  send(socketId: string, type: string, payload: Record<string, unknown>, eventId: string): boolean;
}

/**
 * The hub behind the sockets: conversations and their transcripts, and the scripted bot (a greeting, an echo of every
 * user message, an agent for `escalateToHuman`). Replies go to the socket that last acted for the conversation;
 * when it is gone they are lost, kept only in the transcript, as the manual warns.
 */
export class CaptivateHub {
  readonly conversations = new Map<string, Conversation>();

  constructor(
    private readonly sockets: HubSockets,
    private readonly opts: { greeting: boolean; botReplyDelayMs: number },
  ) {}

  /** Creates a conversation as if another client had started it; bound to `socketId` when given. */
  createConversation(socketId?: string, userId = 'anon'): string {
    const id = `${userId}-${randomUUID()}`;
    this.conversations.set(id, { id, socketId, metadata: {}, transcript: [] });
    return id;
  }

  /** A bot reply in a conversation; delivered to its socket if that is open. Returns the event sent. */
  botMessage(conversationId: string, text: string, extra: unknown[] = []): Record<string, unknown> {
    const chMsgId = randomUUID();
    const content = [{ type: 'text', text }, ...extra];
    this.record(conversationId, { from: 'bot', message_id: chMsgId, content });
    return this.deliver(conversationId, 'bot_message', { type: 'message_create', conversation_id: conversationId, ch_msg_id: chMsgId, bot: {}, content });
  }

  /** A human agent's message (no message id upstream: the transcript keeps the delivery's event_id). */
  livechatMessage(conversationId: string, text: string, files: unknown[] = []): Record<string, unknown> {
    const content: unknown[] = [{ type: 'text', text }];
    if (files.length) content.push({ type: 'files', files });
    const eventId = newEventId();
    this.record(conversationId, { from: 'agent', event_id: eventId, content });
    return this.deliver(conversationId, 'livechat_message', { type: 'message_create', conversation_id: conversationId, content }, eventId);
  }

  /** conversation_update (livechatAgentConnected, livechatAgentDisconnected, failedAgentAssignment). */
  conversationUpdate(conversationId: string, type: string, data: Record<string, unknown> = {}): Record<string, unknown> {
    return this.deliver(conversationId, 'conversation_update', { type, conversation_id: conversationId, data });
  }

  /** Acts on one client event; replies go to `socketId`'s socket. Returns the HTTP answer body. */
  handle(socketId: string | undefined, type: string, p: Record<string, unknown>): Record<string, unknown> {
    if (type === 'conversation_start') {
      const id = this.createConversation(socketId, typeof p.userId === 'string' ? p.userId : 'anon');
      this.deliver(id, 'conversation_start_success', { conversation_id: id });
      if (this.opts.greeting) this.later(() => this.botMessage(id, "Hi. I'm the Captivate Bot."));
      return { status: 'success', conversation_id: id };
    }
    const conv = typeof p.conversation_id === 'string' ? this.conversations.get(p.conversation_id) : undefined;
    if (!conv) {
      const error = { conversation_id: p.conversation_id ?? null, error_code: 400, error_desc: 'Invalid conversation_id' };
      if (socketId) this.sockets.send(socketId, 'general_error', error, newEventId());
      return { status: 'error', ...error };
    }
    if (socketId) conv.socketId = socketId;
    switch (type) {
      case 'user_message': {
        const content = asRecord(p.content);
        this.record(conv.id, { from: 'user', message_id: String(p.client_msg_id), content });
        this.later(() => this.botMessage(conv.id, `You said: ${String(content.text)}`));
        break;
      }
      case 'metadata':
        Object.assign(conv.metadata, asRecord(p.metadata));
        this.deliver(conv.id, 'metadata_update_success', { conversation_id: conv.id });
        break;
      case 'metadata_request':
        this.deliver(conv.id, 'conversation_metadata', { conversation_id: conv.id, content: conv.metadata });
        return { status: 'success', metadata: conv.metadata };
      case 'action':
        if (p.id === 'escalateToHuman') this.later(() => this.conversationUpdate(conv.id, 'livechatAgentConnected', { agentInfo: { id: 'agent-7', name: 'Sam Agent' } }));
        break;
      case 'conversation_transcript_request':
        this.deliver(conv.id, 'conversation_transcript', { conversation_id: conv.id, transcript: conv.transcript });
        break;
    }
    return { status: 'success' };
  }

  private record(conversationId: string, e: Omit<SimTranscriptEntry, 'timestamp'>): void {
    this.conversations.get(conversationId)?.transcript.push({ ...e, timestamp: new Date().toISOString() });
  }

  /** Sends to the conversation's socket when it is open; otherwise the event is lost. Returns the event. */
  private deliver(conversationId: string, type: string, payload: Record<string, unknown>, eventId = newEventId()): Record<string, unknown> {
    const socketId = this.conversations.get(conversationId)?.socketId;
    if (socketId) this.sockets.send(socketId, type, payload, eventId);
    return { event_type: type, event_payload: payload, event_id: eventId, accepts_response_payload: false };
  }

  private later(fn: () => void): void {
    const t = setTimeout(fn, this.opts.botReplyDelayMs);
    t.unref?.();
  }
}
