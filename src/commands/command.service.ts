import type { Logger } from 'pino';
import type { CommandRouter } from './command-router';
import { describeError } from '../common/errors';
import { withinMs } from '../common/wait';
import type { AppConfig } from '../config/config.loader';
import { createEvent } from '../envelope/envelope';
import type { CommandResultData, ProviderName } from '../envelope/event-types';
import type { Metrics } from '../health/metrics';
import type { EventPipeline } from '../pipeline/pipeline';
import { commandFingerprint, type CommandLedger } from './command-ledger';
import { CommandDelivery, type DeliveryEnd } from './command-delivery';
import { checkProviderCommand, parseCommand } from './command.dto';
import {
  CommandRequestError, type CommandDoor, type CommandDoorApi, type CommandRecord, type CommandView, type SubmitContext, type SubmitResult,
} from './command.types';
import type { CommandForwarder } from '../cluster/command-forwarder';
import { conversationKey, SoleOwnership, type ChannelOwnership } from '../cluster/ownership';
import { EchoWatcher } from './echo-watch';
import { commandConversation } from '../connectors/provider-commands';

/** How often a cluster replica looks for unfinished commands of its channels that nothing runs (a crashed holder's). */
const SWEEP_EVERY_MS = 5000;
/** A `sending` command of a taken-over channel is failed `interrupted` this long after its deadline (its old holder is gone). */
const SWEEP_GRACE_MS = 5000;

/**
 * The command gateway (docs/commands.md), one for all three doors: validation, the idempotency ledger, per-conversation
 * order, delivery with safe retry (CommandDelivery), and the `chatbridge.command.result` event of every end state.
 * In a cluster only the replica holding a channel delivers its commands; the others accept, record and forward them.
 */
export class CommandService implements CommandDoorApi {
  private readonly lanes = new Map<string, Promise<void>>();
  private readonly pendingByChannel = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  /** Commands queued or running in this process. */
  private readonly active = new Set<string>();
  private readonly echoes = new EchoWatcher();
  private readonly delivery: CommandDelivery;
  private stopping = false;
  private ledgerLoaded = false;
  private channelsUp = false;
  private resumed = false;
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly channels: CommandRouter,
    private readonly pipeline: EventPipeline,
    private readonly ledger: CommandLedger,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly ownership: ChannelOwnership = new SoleOwnership(),
    /** In a cluster: hands commands for channels another replica holds to it. */
    private readonly forwarder?: CommandForwarder,
  ) {
    pipeline.observe((item) => this.echoes.observe(item));
    this.delivery = new CommandDelivery(config.commands, channels, ledger, this.echoes, metrics, log, () => this.stopping, (rec) => this.ownership.owns(this.ownerKey(rec.channelId, rec.conversationId)));
  }

  /**
   * Loads the ledger, then resumes what a previous run left: `accepted` commands are delivered (they were surely
   * not sent); `sending` ones may have reached the upstream and are failed as `interrupted`, never re-sent.
   */
  async start(): Promise<void> {
    await this.ledger.start(() => {
      this.ledgerLoaded = true;
      this.resume();
    });
  }

  /** The channels have started: commands left by a previous run can be resumed (once the ledger is read, too). */
  channelsStarted(): void {
    this.channelsUp = true;
    this.resume();
  }

  private resume(): void {
    if (this.stopping || !this.ledgerLoaded || !this.channelsUp || this.resumed) return;
    this.resumed = true;
    if (this.ownership.clustered) {
      // A cluster replica holds no channel yet: each one's commands are taken over when the group assigns it, and
      // periodically (an accepted command whose forward failed, a crashed holder's).
      this.sweeper = setInterval(() => this.takeOver({ sendingGraceMs: this.config.commands.deadlineMs + SWEEP_GRACE_MS }), SWEEP_EVERY_MS);
      this.sweeper.unref?.();
      return;
    }
    // One process: nothing else can still be sending what a previous run left `sending`.
    this.takeOver({ sendingGraceMs: 0 });
  }

  /**
   * Cluster: this replica took these channels over; their unfinished commands are its now. So may be some conversations
   * of the channels that spread them (any rebalance moves those): their commands are looked at too.
   */
  channelsGained(channelIds: readonly string[]): void {
    const only = new Set([...channelIds, ...this.spreadChannels()]);
    if (this.resumed) this.takeOver({ only, sendingGraceMs: this.config.commands.deadlineMs + SWEEP_GRACE_MS });
  }

  /** Channels whose provider spreads their conversations across replicas. */
  private spreadChannels(): string[] {
    return this.ownership.clustered ? this.config.channels.filter((c) => this.channels.commandTarget(c.id)?.spreadsConversations).map((c) => c.id) : [];
  }

  /**
   * Cluster: another replica holds these channels now; their held and waiting commands stay `accepted` for it. The
   * channels that spread their conversations may have lost some of them at any rebalance: their waits are woken too.
   */
  channelsLost(channelIds: readonly string[]): void {
    for (const id of new Set([...channelIds, ...this.spreadChannels()])) this.delivery.release(id);
  }

  /**
   * Which replica runs a command, as an ownership key: a command of a conversation of a channel that spreads its
   * conversations across replicas (Smartsupp visitors) goes to that conversation's holder; every other command
   * (including one that starts a conversation) to the channel's holder. Also the key of its forwarded record.
   */
  ownerKey(channelId: string, conversationId: unknown): string {
    if (this.ownership.clustered && typeof conversationId === 'string' && conversationId && this.channels.commandTarget(channelId)?.spreadsConversations) {
      return conversationKey(channelId, conversationId);
    }
    return channelId;
  }

  /**
   * Takes over the unfinished commands of held channels that nothing here runs (after a restart, a handover, or a
   * failed forward): `accepted` ones are delivered (surely not sent); a `sending` one may have reached the upstream,
   * so once `sendingGraceMs` past its acceptance (its old holder may still be finishing it until its deadline) it is
   * failed `interrupted`, never sent again.
   */
  private takeOver({ only, sendingGraceMs }: { only?: ReadonlySet<string>; sendingGraceMs: number }): void {
    if (this.stopping) return;
    const now = Date.now();
    for (const rec of this.ledger.unfinished()) {
      if (this.active.has(rec.commandId) || !rec.command || (only && !only.has(rec.channelId)) || !this.ownership.owns(this.ownerKey(rec.channelId, rec.conversationId))) continue;
      const target = this.channels.commandTarget(rec.channelId);
      if (!target) continue;
      if (rec.status === 'accepted') {
        this.log.info({ commandId: rec.commandId, channel: rec.channelId }, 'delivering an accepted command left by a previous run or holder');
        this.enqueue(rec, target.name);
      } else if (now >= Date.parse(rec.acceptedAt) + sendingGraceMs) {
        this.active.add(rec.commandId);
        void this.finish(rec, 'failed', target.name, { code: 'interrupted', message: 'the bridge holding the channel stopped while this command was being sent; the upstream may have acted, so it was not sent again', mayHaveActed: true })
          .finally(() => this.active.delete(rec.commandId));
      }
    }
  }

  /** Stops taking commands and lets running deliveries end within `deadlineMs`; held ones stay `accepted` for the next start. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweeper);
    this.delivery.interrupt();
    const until = Date.now() + deadlineMs;
    await withinMs(Promise.allSettled([...this.running]), deadlineMs);
    // The ledger's follower may be in a group join after a broker bounce; it commits nothing, so it is not waited for.
    await withinMs(this.ledger.stop(), Math.max(1000, until - Date.now()));
  }

  async submit(input: unknown, ctx: SubmitContext): Promise<SubmitResult> {
    try {
      return await this.accept(input, ctx);
    } catch (err) {
      if (err instanceof CommandRequestError) {
        this.metrics.commandsRefused.inc({ door: ctx.door, code: err.code });
        if (err.limit) this.metrics.refused.inc({ origin: 'command', reason: err.limit === 'bytes' ? 'too_large' : 'too_deep' });
      }
      throw err;
    }
  }

  get(commandId: string): CommandView | undefined {
    const rec = this.ledger.get(commandId);
    return rec ? view(rec) : undefined;
  }

  private async accept(input: unknown, ctx: SubmitContext): Promise<SubmitResult> {
    if (this.stopping) throw new CommandRequestError('shutting_down', 'the bridge is shutting down; send the command again (same commandId) to another replica or after the restart');
    const parsed = parseCommand(input, { maxBytes: this.config.api.maxBodyBytes, maxDepth: this.config.commands.maxDepth });
    if (ctx.channelId !== undefined && parsed.channelId !== undefined && ctx.channelId !== parsed.channelId) {
      throw new CommandRequestError('invalid_command', 'invalid command', [`channelId: "${parsed.channelId}" differs from the channel of the request ("${ctx.channelId}")`]);
    }
    const channelId = ctx.channelId ?? parsed.channelId;
    if (channelId === undefined) throw new CommandRequestError('invalid_command', 'invalid command', ['channelId: required']);
    const { command } = parsed;
    const target = this.channels.commandTarget(channelId);
    const fingerprint = commandFingerprint(channelId, command);
    this.ledger.requireLoaded();
    // A command the ledger knows gets the ledger's answer (duplicate, or 409 for another body under its id), even if
    // its channel or its provider's rules changed since it was accepted: a client retrying it learns its fate.
    const known = this.ledger.get(command.commandId);
    if (known) return this.repeat(known, fingerprint, ctx);

    if (!target) throw new CommandRequestError('unknown_channel', `no channel with id "${channelId}"`);
    // The provider's half of validation (the type, then that type's fields).
    checkProviderCommand(target, channelId, command);
    if ((this.pendingByChannel.get(channelId) ?? 0) >= this.config.commands.maxPendingPerChannel) {
      throw new CommandRequestError('channel_busy', `channel ${channelId} has ${this.config.commands.maxPendingPerChannel} unfinished commands (commands.maxPendingPerChannel); try again later with the same commandId`);
    }
    const now = new Date().toISOString();
    const record: CommandRecord = {
      commandId: command.commandId, channelId, type: command.type, status: 'accepted', attempts: 0, fingerprint, door: ctx.door,
      acceptedAt: now, updatedAt: now, command,
    };
    if (typeof command.conversationId === 'string') record.conversationId = command.conversationId;
    const claimed = await this.ledger.claim(record);
    if (!claimed.created) return this.repeat(claimed.record, fingerprint, ctx);
    if (!ctx.forwarded) this.metrics.commandsAccepted.inc({ door: ctx.door, provider: target.name, type: command.type });
    const held = this.ownership.owns(this.ownerKey(channelId, record.conversationId));
    this.log.info({ commandId: command.commandId, channel: channelId, type: command.type, door: ctx.door, forwarded: held ? undefined : true }, held ? 'command accepted' : 'command accepted; forwarding it to the replica holding the channel (or conversation)');
    if (held) this.enqueue(record, target.name);
    else await this.forward(record, ctx.door, true);
    return { commandId: record.commandId, channelId, status: record.status, duplicate: false };
  }

  private async repeat(known: CommandRecord, fingerprint: string, ctx: SubmitContext): Promise<SubmitResult> {
    // A repeat racing the first claim answers only once that claim is durable (and fails with it).
    await this.ledger.whenDurable(known.commandId);
    if (known.fingerprint !== fingerprint) {
      throw new CommandRequestError('id_conflict', `commandId "${known.commandId}" was already used for a different command (channel ${known.channelId}, type ${known.type}); use a new commandId for a new command`);
    }
    if (!ctx.forwarded) this.metrics.commandsDuplicate.inc({ door: ctx.door });
    await this.adopt(known, ctx.door);
    return { commandId: known.commandId, channelId: known.channelId, status: known.status, duplicate: true };
  }

  /**
   * Hands an accepted command to the replica holding its channel (through `topics.commands`). When Kafka does not
   * take it, the command stays `accepted` and, if `refuse`, the door answers 503 `forward_failed`: a repeat with the
   * same commandId forwards it again.
   */
  private async forward(rec: CommandRecord, door: CommandDoor, refuse: boolean): Promise<void> {
    try {
      if (!this.forwarder || !rec.command) throw new Error('this replica cannot forward commands');
      await this.forwarder.forward(this.ownerKey(rec.channelId, rec.conversationId), rec.channelId, rec.command, door);
    } catch (err) {
      this.log.warn({ commandId: rec.commandId, channel: rec.channelId, err: describeError(err) }, 'command not forwarded to the replica holding the channel');
      if (refuse) {
        throw new CommandRequestError('forward_failed', `command ${rec.commandId} is accepted, but could not be handed to the replica holding channel ${rec.channelId} (${describeError(err)}); send it again with the same commandId`);
      }
    }
  }

  /**
   * A repeat of an `accepted` command that nothing here runs: its ledger record landed although its claim was
   * refused (a write that timed out after it left, read back by the follower), or it was forwarded here, or its
   * forward failed. It was surely not sent: deliver it, or forward it again to the replica holding its channel.
   */
  private async adopt(known: CommandRecord, door: CommandDoor): Promise<void> {
    if (known.status !== 'accepted' || !known.command || this.active.has(known.commandId) || this.stopping || !this.resumed) return;
    if (!this.ownership.owns(this.ownerKey(known.channelId, known.conversationId))) {
      // The Kafka door reads only the partitions of held channels; a record it reads for another is re-routed by it.
      if (door !== 'kafka') await this.forward(known, door, false);
      return;
    }
    const target = this.channels.commandTarget(known.channelId);
    if (!target) return;
    this.log.info({ commandId: known.commandId, channel: known.channelId }, 'delivering an accepted command found in the ledger');
    this.enqueue(known, target.name);
  }

  /** Runs the command after the previous one of its conversation, so commands of one conversation keep their order. */
  private enqueue(rec: CommandRecord, provider: ProviderName): void {
    const conversation = rec.command ? commandConversation(this.channels.commandTarget(rec.channelId), rec.command) : undefined;
    const lane = `${rec.channelId}\0${conversation ?? rec.conversationId ?? ''}`;
    this.adjustPending(rec.channelId, +1);
    this.active.add(rec.commandId);
    const run = (this.lanes.get(lane) ?? Promise.resolve())
      .then(() => this.run(rec, provider))
      .catch((err) => this.log.error({ commandId: rec.commandId, err: describeError(err) }, 'command delivery crashed'))
      .finally(() => {
        this.adjustPending(rec.channelId, -1);
        this.running.delete(run);
        this.active.delete(rec.commandId);
        if (this.lanes.get(lane) === run) this.lanes.delete(lane);
      });
    this.lanes.set(lane, run);
    this.running.add(run);
  }

  /**
   * Delivers the command and records its end. An end the ledger does not take is not reported: the command keeps its
   * last recorded state and the end is recorded again after a backoff (holding its conversation's place), until the
   * ledger takes it or shutdown or a handover leaves it in that state (an `accepted` one is then delivered again,
   * which after its deadline only fails it; a `sending` one fails `interrupted`).
   */
  private async run(rec: CommandRecord, provider: ProviderName): Promise<void> {
    const end = await this.delivery.deliver(rec, provider);
    if (!end) return;
    for (let n = 0; !(await this.finish(rec, end.status, provider, end.error, end.outcome)); n++) {
      if (!(await this.delivery.pause(rec, n))) return;
    }
  }

  /** Records the end state and, once the ledger has it, publishes it as `chatbridge.command.result`; false when the ledger did not take it. */
  private async finish(
    rec: CommandRecord, status: 'sent' | 'failed', provider: ProviderName, error?: CommandRecord['error'], outcome?: DeliveryEnd['outcome'],
  ): Promise<boolean> {
    const changes: Partial<CommandRecord> = { status, updatedAt: new Date().toISOString(), command: undefined };
    if (error) changes.error = error;
    if (outcome?.upstreamMessageId) changes.upstreamMessageId = outcome.upstreamMessageId;
    if (outcome?.conversationId && !rec.conversationId) changes.conversationId = outcome.conversationId;
    const reply = boundedResult(outcome?.result);
    if (reply !== undefined) changes.result = reply;
    if (!(await this.ledger.commit(rec, changes))) {
      this.metrics.commandLedgerUnwritten.inc({ status });
      this.log.warn({ commandId: rec.commandId, channel: rec.channelId, status, error: error?.message }, `command ${status}, but the ledger did not record it: it stays ${rec.status} and the end is recorded again`);
      return false;
    }
    this.metrics.commandsFinished.inc({ channel: rec.channelId, type: rec.type, outcome: status, code: error?.code ?? 'none' });
    this.metrics.commandsEnded.inc({ provider, type: rec.type, status });
    if (status === 'sent') this.metrics.commandTimeToSent.observe({ provider, type: rec.type }, (Date.parse(rec.updatedAt) - Date.parse(rec.acceptedAt)) / 1000);
    const level = status === 'sent' ? 'info' : 'warn';
    this.log[level]({ commandId: rec.commandId, channel: rec.channelId, type: rec.type, status, attempts: rec.attempts, error: error?.message }, `command ${status}`);
    const result: CommandResultData['command'] = { commandId: rec.commandId, type: rec.type, status, attempts: rec.attempts };
    if (rec.upstreamMessageId) result.upstreamMessageId = rec.upstreamMessageId;
    if (error) {
      result.error = error.message;
      result.errorCode = error.code;
    }
    const { event, stableId } = createEvent({
      type: 'chatbridge.command.result',
      channelId: rec.channelId,
      provider,
      upstreamKey: `command:${rec.commandId}:${status}`,
      conversationId: rec.conversationId,
      data: { channel: { id: rec.channelId, provider }, ...(rec.conversationId ? { conversation: { id: rec.conversationId } } : {}), command: result },
    });
    this.pipeline.publish({ event, stableId, receivedAt: performance.now() });
    return true;
  }

  private adjustPending(channelId: string, delta: number): void {
    const n = (this.pendingByChannel.get(channelId) ?? 0) + delta;
    if (n > 0) this.pendingByChannel.set(channelId, n);
    else this.pendingByChannel.delete(channelId);
    this.metrics.commandsPending.set({ channel: channelId }, Math.max(0, n));
  }
}

/** The API view of a record (no fingerprint, no body). */
export function view(rec: CommandRecord): CommandView {
  const v: CommandView = {
    commandId: rec.commandId, channelId: rec.channelId, type: rec.type, status: rec.status, attempts: rec.attempts, acceptedAt: rec.acceptedAt, updatedAt: rec.updatedAt,
  };
  if (rec.upstreamMessageId) v.upstreamMessageId = rec.upstreamMessageId;
  if (rec.conversationId) v.conversationId = rec.conversationId;
  if (rec.error) v.error = rec.error;
  if (rec.result !== undefined) v.result = rec.result;
  return v;
}

const MAX_RESULT_BYTES = 64 * 1024;

/** An upstream reply small enough to keep in the ledger, else a note saying it was left out. */
function boundedResult(result: unknown): unknown {
  if (result === undefined || result === null) return undefined;
  const json = JSON.stringify(result) as string | undefined;
  if (json === undefined) return undefined;
  return json.length <= MAX_RESULT_BYTES ? result : { omitted: `upstream reply of ${json.length} bytes is over the ${MAX_RESULT_BYTES}-byte limit of the ledger` };
}
