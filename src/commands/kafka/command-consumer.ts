import { PartitionAssigners, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffDelay, CONSUMER_RESTART_BACKOFF } from '../../common/backoff';
import { describeError } from '../../common/errors';
import type { KafkaConfig, KafkaConsumerConfig } from '../../config/config.schema';
import type { Metrics } from '../../health/metrics';
import type { DeadLetters } from '../../pipeline/dead-letters';
import type { CommandDoorApi } from '../command.types';
import { classifyRefusal, parseCommandRecord } from './command-record';
import { Pause, withinMs } from '../../common/wait';
import { ensureTopicReady } from '../../common/topic-ready';
import type { ClusterConfig } from '../../config/config.schema';
import { FORWARDED_HEADER, type CommandForwarder } from '../../cluster/command-forwarder';
import type { ClusterOwnership } from '../../cluster/ownership';
import { stickyAssigner } from '../../cluster/sticky-assigner';

/** What the Kafka command door needs besides its collaborators. */
export interface KafkaCommandConsumerOptions {
  /** `kafka.topics.commands`. */
  topic: string;
  /** `kafka.consumer.commandGroup`, else `<clientId>.commands`: replicas of one deployment share it. */
  groupId: string;
  consumer: KafkaConsumerConfig;
  /**
   * `cluster.enabled`: the group's assignment is the channels' ownership (the member holding partition p holds the
   * channels whose ids hash to p), and records of a channel found on another partition are re-routed to its own.
   */
  cluster?: { settings: ClusterConfig; ownership: ClusterOwnership; forwarder: CommandForwarder };
}

/** Dead-letter origin of refused command records. */
const KAFKA_COMMANDS_ORIGIN = 'kafka-commands';

/**
 * The Kafka door of the command gateway (SPEC §5): a consumer group on `topics.commands` hands each record to the
 * CommandService, in order per partition. A record's offset is committed only once the command is in the ledger
 * (`submit` resolved) or the record was dead-lettered (bad JSON, 400/404/409/422), so a crash re-reads at most what
 * was not finished, and the ledger answers those repeats without sending again. A transient refusal (503) leaves
 * the record in Kafka: its partition is paused and the record offered again after a backoff.
 */
export class KafkaCommandConsumer {
  private readonly consumer: Consumer;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** Consecutive transient refusals per partition (the backoff grows with them). */
  private readonly refusals = new Map<number, number>();
  private stopping = false;
  private readonly pause = new Pause();
  /** Assignments are applied one after the other, in the order of the rebalances. */
  private joins: Promise<void> = Promise.resolve();

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: KafkaCommandConsumerOptions,
    private readonly commands: CommandDoorApi,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    const cluster = opts.cluster?.settings;
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      maxWaitTimeInMs: cluster ? Math.min(opts.consumer.maxWaitTimeMs, cluster.heartbeatIntervalMs) : opts.consumer.maxWaitTimeMs,
      sessionTimeout: cluster?.sessionTimeoutMs ?? opts.consumer.sessionTimeoutMs,
      heartbeatInterval: cluster?.heartbeatIntervalMs ?? Math.min(3000, Math.floor(opts.consumer.sessionTimeoutMs / 3)),
      ...(cluster ? { rebalanceTimeout: cluster.rebalanceTimeoutMs } : {}),
      // Cluster: partitions stay with their member across rebalances (fewer handovers); round robin when a member of
      // an older version cannot do that.
      ...(opts.cluster ? { partitionAssigners: [stickyAssigner(() => opts.cluster?.ownership.assignedPartitions() ?? []), PartitionAssigners.roundRobin] } : {}),
      // A crash while `stop` disconnects (during the group join) must not bring the consumer back.
      retry: { retries: 5, restartOnFailure: async () => !this.stopping },
    });
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      if (this.stopping) return;
      this.log.error({ err: describeError(payload.error), restart: payload.restart }, 'command consumer crashed');
      // kafkajs restarts by itself after retriable errors only; after any other it has disconnected for good.
      if (!payload.restart) void this.runUntilStarted(1);
    });
    const ownership = opts.cluster?.ownership;
    if (ownership) {
      this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
        const partitions = payload.memberAssignment[opts.topic] ?? [];
        this.joins = this.joins.then(() => this.assign(ownership, partitions, payload.groupProtocol));
      });
      this.consumer.on(this.consumer.events.HEARTBEAT, () => ownership.alive());
      this.consumer.on(this.consumer.events.REBALANCING, () => ownership.rebalancing());
    }
  }

  /** A rebalance ended: the partitions given to this member (of the topic's current partition count) are its channels. */
  private async assign(ownership: ClusterOwnership, partitions: number[], protocol: string): Promise<void> {
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        const count = await ensureTopicReady(this.kafka, this.opts.topic);
        this.log.info({ partitions, of: count, group: this.opts.groupId, protocol }, 'group assignment: holding the channels of these partitions of the commands topic');
        ownership.assign(partitions, count);
        return;
      } catch (err) {
        this.log.warn({ err: describeError(err), attempt }, 'cannot read the commands topic\'s partition count after a rebalance; retrying');
        await this.pause.wait(backoffDelay(CONSUMER_RESTART_BACKOFF, attempt));
      }
    }
  }

  /** Joins the group in the background (Kafka may be down: it keeps trying); never blocks the bridge's start. */
  start(): void {
    void this.runUntilStarted(0);
  }

  /** Stops taking records: the record in hand finishes and is committed, then the group is left (bounded). */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.pause.cancel();
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    await withinMs(this.consumer.disconnect().catch((err: unknown) => this.log.warn({ err: describeError(err) }, 'command consumer disconnect failed')), deadlineMs);
  }

  private async runUntilStarted(firstAttempt: number): Promise<void> {
    for (let attempt = firstAttempt; !this.stopping; attempt++) {
      if (attempt > 0) await this.pause.wait(backoffDelay(CONSUMER_RESTART_BACKOFF, attempt - 1));
      if (this.stopping) return;
      try {
        await ensureTopicReady(this.kafka, this.opts.topic);
        await this.consumer.connect();
        await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
        await this.consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 4, eachBatch: (b) => this.onBatch(b) });
        if (this.stopping) await this.consumer.disconnect();
        return;
      } catch (err) {
        this.log.warn({ err: describeError(err), attempt, topic: this.opts.topic }, 'command consumer cannot start; retrying with backoff');
        await this.consumer.disconnect().catch(() => undefined);
      }
    }
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }: EachBatchPayload): Promise<void> {
    const { partition } = batch;
    let finished: string | undefined;
    try {
      for (const message of batch.messages) {
        if (this.stopping || !isRunning() || isStale()) return;
        if (!(await this.handle(partition, message))) {
          this.offerAgainLater(partition, message.offset);
          return;
        }
        this.refusals.delete(partition);
        resolveOffset(message.offset);
        finished = message.offset;
        await heartbeat();
      }
    } finally {
      // Through the batch's own commit: the consumer's commitOffsets is a no-op once disconnect() began.
      if (finished !== undefined) {
        const offset = String(BigInt(finished) + 1n);
        await commitOffsetsIfNecessary({ topics: [{ topic: this.opts.topic, partitions: [{ partition, offset }] }] }).catch((err: unknown) => {
          // A rebalance took the partition: its next owner re-reads these records and the ledger answers them.
          this.log.warn({ err: describeError(err), partition, offset }, 'command offsets not committed');
        });
      }
    }
  }

  /** True when the record is finished (in the ledger or dead-lettered); false when it must be offered again. */
  private async handle(partition: number, message: KafkaMessage): Promise<boolean> {
    const parsed = parseCommandRecord(message.key, message.value);
    if (!parsed.ok) {
      await this.deadLetter(partition, message, undefined, `invalid_command: ${parsed.error}`, 400);
      return true;
    }
    const cluster = this.opts.cluster;
    const ownerKey = cluster && parsed.channelId !== undefined ? this.commands.ownerKey(parsed.channelId, conversationOf(parsed.body)) : undefined;
    const home = cluster && ownerKey !== undefined ? cluster.ownership.partitionFor(ownerKey) : undefined;
    if (cluster && ownerKey !== undefined && home !== undefined && home !== partition) {
      // Produced with another partitioner (librdkafka's default is not Kafka's), or keyed by the channel while the
      // command belongs to a spread conversation: the holder reads `home`.
      try {
        await cluster.forwarder.reroute(ownerKey, message.value as Buffer, message.headers ?? {});
        this.metrics.kafkaCommands.inc({ outcome: 'rerouted' });
        this.log.info({ partition, offset: message.offset, channel: parsed.channelId, key: ownerKey, to: home }, 'command record on another partition than its holder\'s: re-routed to it');
        return true;
      } catch (err) {
        this.log.warn({ partition, offset: message.offset, channel: parsed.channelId, err: describeError(err) }, 'command record could not be re-routed to its channel\'s partition; offered again later');
        return false;
      }
    }
    try {
      const forwarded = message.headers?.[FORWARDED_HEADER] !== undefined;
      const result = await this.commands.submit(parsed.body, { door: 'kafka', channelId: parsed.channelId, forwarded });
      this.metrics.kafkaCommands.inc({ outcome: result.duplicate ? 'duplicate' : 'accepted' });
      return true;
    } catch (err) {
      const refusal = classifyRefusal(err);
      if (refusal.action === 'dead_letter') {
        await this.deadLetter(partition, message, parsed.channelId, refusal.error, refusal.status);
        return true;
      }
      this.metrics.kafkaCommands.inc({ outcome: 'retried' });
      const level = refusal.code === 'unexpected_error' ? 'error' : 'warn';
      this.log[level]({ partition, offset: message.offset, code: refusal.code, err: refusal.error }, 'command record refused for now; kept in Kafka and offered again');
      return false;
    }
  }

  private async deadLetter(partition: number, message: KafkaMessage, channelId: string | undefined, error: string, status?: number): Promise<void> {
    const key = message.key?.length ? message.key.toString('utf8') : null;
    const payload = { topic: this.opts.topic, partition, offset: message.offset, key, value: message.value?.toString('utf8') ?? null };
    this.log.warn({ partition, offset: message.offset, channel: channelId ?? key ?? undefined, err: error }, 'command record refused; dead-lettered');
    this.metrics.kafkaCommands.inc({ outcome: 'invalid' });
    await this.deadLetters.write({ reason: 'invalid_command', origin: KAFKA_COMMANDS_ORIGIN, channelId: channelId ?? key ?? undefined, frame: { event: 'kafka.command', payload }, error, status });
  }

  /** Pauses the partition and rewinds it to the refused record, which is fetched again after the backoff. */
  private offerAgainLater(partition: number, offset: string): void {
    const refusals = (this.refusals.get(partition) ?? 0) + 1;
    this.refusals.set(partition, refusals);
    const partitions = [{ topic: this.opts.topic, partitions: [partition] }];
    this.consumer.pause(partitions);
    this.consumer.seek({ topic: this.opts.topic, partition, offset });
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (!this.stopping) this.consumer.resume(partitions);
    }, Math.max(100, backoffDelay(CONSUMER_RESTART_BACKOFF, refusals - 1)));
    this.retryTimers.add(timer);
  }
}

/** The command door's consumer group: `kafka.consumer.commandGroup`, else `<clientId>.commands`. */
export function commandGroupId(cfg: KafkaConfig): string {
  return cfg.consumer.commandGroup ?? `${cfg.clientId}.commands`;
}

/** The body's `conversationId`, when it has one (the service validates the rest). */
function conversationOf(body: unknown): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>).conversationId : undefined;
}
