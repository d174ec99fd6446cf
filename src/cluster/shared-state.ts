import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay } from '../common/backoff';
import { BridgeError, describeError } from '../common/errors';
import { KafkaWriter } from '../kafka/writer';
import { TopicFollower, type TopicFollowOptions } from '../kafka/follower';
import { Pause, withinMs } from '../common/wait';
import { conversationStateKey, decodeModeRecord, encodeModeRecord, parseStateKey, type ModeRecord, type ModeStore, type PersistedModes } from '../channels/mode-store';
import type { KafkaConsumerConfig } from '../config/config.schema';
import type { ConversationRegistry } from '../connectors/connector.interface';

/** What `SharedState` needs besides the client. */
export interface SharedStateOptions {
  /** `kafka.topics.state` (compacted). */
  topic: string;
  /** The command consumer group; the follower's own group is `<group>.state.<host>.<pid>.<random>`. */
  group: string;
  consumer: KafkaConsumerConfig;
  /** Where a record the follower keeps failing on goes (the consumer runner's poison policy). */
  poison?: Pick<TopicFollowOptions, 'deadLetters' | 'metrics'>;
}

type ModeListener = (channelId: string, record: ModeRecord | null) => void;
type ConversationListener = (conversationId: string, value: unknown) => void;

/** Writes a failed write waits before the next try; the latest value per key is kept meanwhile. */
const WRITE_BACKOFF = { initialDelayMs: 200, maxDelayMs: 10_000, multiplier: 2 };

/**
 * The state topic as every replica of a cluster sees it, followed for the process's life (docs/operations.md): each channel's
 * mode record (a switch made at one replica reaches the holder, and a new holder starts in the current mode), and the
 * records of conversations whose sockets are spread across replicas (Smartsupp visitors: any replica may come to hold
 * one, so their ids and read marks live here rather than in one pod's `stateDir`).
 *
 * It is read once: the channels' start-up modes come from it too (`modeStore`), and mode switches are written through it.
 * Conversation writes are fire-and-forget with retry: the latest value per key is written with `acks: -1`, a failed
 * write is tried again with backoff until it lands or the process stops; `stop` tries the last ones within its limit.
 */
export class SharedState {
  private readonly follower: TopicFollower;
  private readonly writer: KafkaWriter;
  private readonly modeListeners = new Set<ModeListener>();
  private readonly conversations = new Map<string, Map<string, unknown>>();
  private readonly conversationListeners = new Map<string, Set<ConversationListener>>();
  /** Conversation records to write: key → value (the latest one; null = tombstone). */
  private readonly pending = new Map<string, string | null>();
  private flushing?: Promise<void>;
  private failures = 0;
  private readonly pause = new Pause();
  private stopped = false;
  /** Each channel's latest mode record (null: a tombstone), as compaction would keep it. */
  private readonly modes: PersistedModes = new Map();

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: SharedStateOptions,
    private readonly log: Logger,
  ) {
    this.writer = new KafkaWriter(kafka, { allowAutoTopicCreation: true, retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 } });
    this.follower = new TopicFollower(
      kafka,
      { topic: opts.topic, groupPrefix: `${opts.group}.state`, consumer: opts.consumer, name: 'state topic follower', ...opts.poison },
      (message) => this.apply(message.key?.toString('utf8') ?? null, message.value === null ? null : message.value.toString('utf8')),
      log,
      () => this.historyRead(),
    );
  }

  /** Starts following the topic in the background. */
  start(): void {
    this.follower.start();
  }

  /** Resolves true once the records that existed at start were read, false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean> {
    return this.follower.caughtUp(timeoutMs);
  }

  /**
   * Every channel's persisted mode, once the history is read (the start-up read of modes in a cluster: the topic is
   * read once, by the follower). Rejects (`topic_unreadable`) when it was not read within `timeoutMs`.
   */
  async loadModes(timeoutMs: number): Promise<PersistedModes> {
    if (!(await this.ready(timeoutMs))) throw new BridgeError('topic_unreadable', `could not read topic "${this.opts.topic}" within ${timeoutMs} ms (is Kafka reachable?)`, { retriable: true });
    return new Map(this.modes);
  }

  /**
   * The channels' mode store in a cluster: modes read from this follower's history (`loadModes`, within `timeoutMs`)
   * and switches written through its producer. Named like the single-replica store (`topic <name>`).
   */
  modeStore(timeoutMs: number): ModeStore {
    return {
      source: `topic ${this.opts.topic}`,
      load: () => this.loadModes(timeoutMs),
      save: (channelId, mode) => this.writer.send({ topic: this.opts.topic, acks: -1, messages: [{ key: channelId, value: encodeModeRecord(mode) }] }),
      // Stopped by the bridge after the channels (their last visitor records go out through it).
      stop: async () => undefined,
    };
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
    if (this.pending.size) {
      // A backoff in progress ends now: the last records get one more try within the limit.
      this.pause.cancel();
      await withinMs(this.flush(), timeoutMs);
    }
    this.stopped = true;
    this.pause.cancel();
    if (this.pending.size) this.log.warn({ records: this.pending.size }, 'conversation records not written to the state topic before shutdown; the next holder may repeat a little history (same event ids)');
    await Promise.allSettled([this.follower.stop(), this.writer.stop()]);
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
      this.modes.set(channelId, record);
      if (this.follower.isCaughtUp) for (const listener of this.modeListeners) listener(channelId, record);
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

  /** The history is read: the listeners get each channel's latest mode of it (the start already used the same). */
  private historyRead(): void {
    for (const [channelId, record] of this.modes) for (const listener of this.modeListeners) listener(channelId, record);
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
            await this.writer.send({ topic: this.opts.topic, acks: -1, messages: batch.map(([key, value]) => ({ key, value })) });
            // Written, unless a newer value came meanwhile (it goes in the next round).
            for (const [key, value] of batch) if (this.pending.get(key) === value) this.pending.delete(key);
            this.failures = 0;
          } catch (err) {
            this.failures++;
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
