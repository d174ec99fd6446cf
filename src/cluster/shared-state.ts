import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay } from '../common/backoff';
import { describeError } from '../common/errors';
import { TopicFollower } from '../common/topic-follow';
import { Pause } from '../common/wait';
import type { ModeRecord } from '../channels/mode-store';
import { decodeModeRecord } from '../channels/mode-store';
import type { KafkaConsumerConfig } from '../config/config.schema';
import type { ConversationRegistry } from '../connectors/connector.interface';

/** State-topic key of one conversation's record: `<channelId>/conversation/<conversationId>` (channel ids hold no `/`). */
export function conversationStateKey(channelId: string, conversationId: string): string {
  return `${channelId}/conversation/${conversationId}`;
}

/** What a state-topic key names: a channel (its mode record) or one conversation of a channel; undefined when neither. */
export function parseStateKey(key: string): { channelId: string; conversationId?: string } | undefined {
  const slash = key.indexOf('/');
  if (slash < 0) return key ? { channelId: key } : undefined;
  const channelId = key.slice(0, slash);
  const rest = key.slice(slash + 1);
  if (!channelId || !rest.startsWith('conversation/') || rest.length === 'conversation/'.length) return undefined;
  return { channelId, conversationId: rest.slice('conversation/'.length) };
}

/** What `SharedState` needs besides the client. */
export interface SharedStateOptions {
  /** `kafka.topics.state` (compacted). */
  topic: string;
  /** The command consumer group; the follower's own group is `<group>.state.<host>.<pid>.<random>`. */
  group: string;
  consumer: KafkaConsumerConfig;
}

type ModeListener = (channelId: string, record: ModeRecord | null) => void;
type ConversationListener = (conversationId: string, value: unknown) => void;

/** Writes a failed write waits before the next try; the latest value per key is kept meanwhile. */
const WRITE_BACKOFF = { initialDelayMs: 200, maxDelayMs: 10_000, multiplier: 2 };

/**
 * The state topic as every replica of a cluster sees it, followed for the process's life (SPEC §9): each channel's
 * mode record (a switch made at one replica reaches the holder, and a new holder starts in the current mode), and the
 * records of conversations whose sockets are spread across replicas (Smartsupp visitors: any replica may come to hold
 * one, so their ids and read marks live here rather than in one pod's `stateDir`).
 *
 * Conversation writes are fire-and-forget with retry: the latest value per key is written with `acks: -1`, a failed
 * write is tried again with backoff until it lands or the process stops; `stop` tries the last ones within its limit.
 */
export class SharedState {
  private readonly follower: TopicFollower;
  private readonly producer: Producer;
  private connecting?: Promise<void>;
  private readonly modeListeners = new Set<ModeListener>();
  private readonly conversations = new Map<string, Map<string, unknown>>();
  private readonly conversationListeners = new Map<string, Set<ConversationListener>>();
  /** Conversation records to write: key → value (the latest one; null = tombstone). */
  private readonly pending = new Map<string, string | null>();
  private flushing?: Promise<void>;
  private failures = 0;
  private readonly pause = new Pause();
  private stopped = false;
  /** Partition → offset of the last record that existed when following began; empty once caught up. */
  private readonly ends = new Map<number, number>();
  private caughtUpResolve!: () => void;
  private readonly caughtUp = new Promise<void>((resolve) => (this.caughtUpResolve = resolve));
  private isCaughtUp = false;
  /** Until caught up: the latest mode record per channel (the start already applied the history; only its end counts). */
  private readonly historyModes = new Map<string, ModeRecord | null>();

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: SharedStateOptions,
    private readonly log: Logger,
  ) {
    this.producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 } });
    this.follower = new TopicFollower(kafka, { topic: opts.topic, groupPrefix: `${opts.group}.state`, consumer: opts.consumer, name: 'state topic follower' }, (message, partition) => {
      this.apply(message.key?.toString('utf8') ?? null, message.value === null ? null : message.value.toString('utf8'));
      this.progress(partition, Number(message.offset));
    }, log);
  }

  /** Starts following the topic in the background (the end offsets of now mark "caught up"). */
  start(): void {
    void this.markEnds().finally(() => {
      if (!this.stopped) this.follower.start();
    });
  }

  /** Resolves true once the records that existed at start were read, false after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref?.();
    });
    try {
      return await Promise.race([this.caughtUp.then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Calls `listener` with each channel's latest mode record of the history once it is read (the modes the channels
   * started in, or newer ones), then with every new record (this replica's own writes included).
   */
  onMode(listener: ModeListener): void {
    this.modeListeners.add(listener);
  }

  /** The shared registry of one channel's spread conversations. */
  registry(channelId: string): ConversationRegistry {
    return {
      ready: (timeoutMs) => this.ready(timeoutMs),
      all: () => new Map(this.conversations.get(channelId) ?? []),
      save: (conversationId, value) => this.write(conversationStateKey(channelId, conversationId), value === null ? null : JSON.stringify(value)),
      watch: (listener) => {
        let set = this.conversationListeners.get(channelId);
        if (!set) this.conversationListeners.set(channelId, (set = new Set()));
        set.add(listener);
        return () => set.delete(listener);
      },
    };
  }

  /** Stops following; the conversation records not yet written get until `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size && Date.now() < deadline) {
      this.pause.cancel();
      await Promise.race([this.flush(), new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())))]);
      if (this.pending.size) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.stopped = true;
    this.pause.cancel();
    if (this.pending.size) this.log.warn({ records: this.pending.size }, 'conversation records not written to the state topic before shutdown; the next holder may repeat a little history (same event ids)');
    await Promise.allSettled([this.follower.stop(), this.producer.disconnect()]);
  }

  private apply(key: string | null, value: string | null): void {
    const target = key === null ? undefined : parseStateKey(key);
    if (!target) return;
    const { channelId, conversationId } = target;
    if (conversationId === undefined) {
      let record: ModeRecord | null = null;
      if (value !== null) {
        try {
          record = decodeModeRecord(value);
        } catch (err) {
          this.log.warn({ channel: channelId, reason: describeError(err) }, 'state topic mode record skipped');
          return;
        }
      }
      if (this.isCaughtUp) for (const listener of this.modeListeners) listener(channelId, record);
      else this.historyModes.set(channelId, record);
      return;
    }
    let parsed: unknown = null;
    if (value !== null) {
      try {
        parsed = JSON.parse(value);
      } catch {
        this.log.warn({ channel: channelId, conversation: conversationId }, 'state topic conversation record is not JSON; skipped');
        return;
      }
    }
    let known = this.conversations.get(channelId);
    if (!known) this.conversations.set(channelId, (known = new Map()));
    if (parsed === null) known.delete(conversationId);
    else known.set(conversationId, parsed);
    for (const listener of this.conversationListeners.get(channelId) ?? []) listener(conversationId, parsed);
  }

  private async markEnds(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      if ((await admin.listTopics()).includes(this.opts.topic)) {
        for (const p of await admin.fetchTopicOffsets(this.opts.topic)) if (Number(p.high) > Number(p.low)) this.ends.set(p.partition, Number(p.high) - 1);
      }
    } catch (err) {
      // Not knowing where "now" is only means the first records count as caught up; they still all arrive.
      this.log.warn({ topic: this.opts.topic, err: describeError(err) }, 'state topic end offsets unknown; not waiting for its history');
      this.ends.clear();
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (!this.ends.size) this.markCaughtUp();
  }

  private markCaughtUp(): void {
    if (this.isCaughtUp) return;
    this.isCaughtUp = true;
    this.caughtUpResolve();
    for (const [channelId, record] of this.historyModes) for (const listener of this.modeListeners) listener(channelId, record);
    this.historyModes.clear();
  }

  private progress(partition: number, offset: number): void {
    const end = this.ends.get(partition);
    if (end === undefined || offset < end) return;
    this.ends.delete(partition);
    if (!this.ends.size) this.markCaughtUp();
  }

  private write(key: string, value: string | null): void {
    if (this.stopped) return;
    this.pending.set(key, value);
    void this.flush();
  }

  private flush(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        while (this.pending.size && !this.stopped) {
          if (this.failures) await this.pause.wait(backoffDelay(WRITE_BACKOFF, this.failures - 1));
          const batch = [...this.pending];
          try {
            this.connecting ??= this.producer.connect();
            await this.connecting;
            await this.producer.send({ topic: this.opts.topic, acks: -1, messages: batch.map(([key, value]) => ({ key, value })) });
            // Written, unless a newer value came meanwhile (it goes in the next round).
            for (const [key, value] of batch) if (this.pending.get(key) === value) this.pending.delete(key);
            this.failures = 0;
          } catch (err) {
            this.failures++;
            this.connecting = undefined;
            await this.producer.disconnect().catch(() => undefined);
            this.log.warn({ topic: this.opts.topic, records: batch.length, attempt: this.failures, err: describeError(err) }, 'conversation records not written to the state topic; retrying');
          }
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }
}
