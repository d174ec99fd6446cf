import type { Logger } from 'pino';
import type { CommandRouter } from './command-router';
import { backoffDelay } from '../common/backoff';
import { CommandError, describeError } from '../common/errors';
import type { CommandsConfig } from '../config/config.schema';
import type { AnyCanonicalEvent } from '../envelope/envelope';
import type { ProviderName } from '../envelope/event-types';
import type { Metrics } from '../health/metrics';
import type { CommandLedger } from './command-ledger';
import type { CommandFailure, CommandRecord } from './command.types';
import type { EchoWatcher } from './echo-watch';

/** How a delivery ended. */
export interface DeliveryEnd {
  status: 'sent' | 'failed';
  error?: CommandFailure;
  outcome?: { upstreamMessageId?: string; conversationId?: string; result?: unknown };
}

/**
 * Delivers one command upstream with safe retry (docs/commands.md):
 * - surely not sent and retriable (connect refused, 5xx/429, socket not open) → `accepted` again, retried after a
 *   jittered backoff;
 * - `not_connected` → held until the channel is connected again (not an upstream attempt);
 * - may have acted (timeout after the send) → never sent again: the provider's echo, seen during the attempt or
 *   within `echoTimeoutMs`, makes it `sent`; without one it ends `failed` (`ambiguous_no_echo`, mayHaveActed);
 * - everything within `deadlineMs` of acceptance.
 * The record is stored as `sending` before each attempt, and the attempt starts only once the ledger has it, so a
 * restart never re-sends what may have left. While the ledger does not take it (Kafka down or refusing), the command
 * stays `accepted`, nothing is sent, and it is tried again after a backoff, keeping its place in its conversation.
 */
export class CommandDelivery {
  private stopped!: Promise<void>;
  private stop!: () => void;

  constructor(
    private readonly settings: CommandsConfig,
    private readonly channels: CommandRouter,
    private readonly ledger: CommandLedger,
    private readonly echoes: EchoWatcher,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly stopping: () => boolean,
    /** False once another replica holds the command's channel (or its spread conversation): it is left `accepted` for it. */
    private readonly owns: (rec: CommandRecord) => boolean = () => true,
  ) {
    this.stopped = new Promise<void>((resolve) => (this.stop = resolve));
  }

  private readonly released = new Map<string, Set<() => void>>();

  /** Ends every hold and backoff wait at once (shutdown); the commands stay `accepted`. */
  interrupt(): void {
    this.stop();
  }

  /**
   * Another replica holds the channel (or some of its spread conversations) now: its holds and backoff waits end, and
   * the commands no longer held here stay `accepted` for their new holder; the others go on.
   */
  release(channelId: string): void {
    for (const wake of this.released.get(channelId) ?? []) wake();
    this.released.delete(channelId);
  }

  /** Runs the command to an end state; undefined when shutdown interrupted it before an attempt (it stays `accepted`). */
  async deliver(rec: CommandRecord, provider: ProviderName): Promise<DeliveryEnd | undefined> {
    const command = rec.command;
    const target = this.channels.commandTarget(rec.channelId);
    if (!command || !target) return failed('internal', 'the command body or its channel is gone', false);
    const deadline = Date.parse(rec.acceptedAt) + this.settings.deadlineMs;
    const { retry } = this.settings;
    let backoffs = 0;
    let unrecorded = 0;
    let last: CommandError | undefined;
    for (;;) {
      if (this.stopping() || !this.owns(rec)) {
        if (!this.stopping()) this.log.info({ commandId: rec.commandId, channel: rec.channelId, conversation: rec.conversationId }, 'channel (or conversation) handed to another replica: command left accepted for it');
        await this.setStatus(rec, 'accepted');
        return undefined;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        return failed('deadline_exceeded', `not sent within commands.deadlineMs (${this.settings.deadlineMs} ms)${last ? `; last error: ${last.message}` : ''}`, false);
      }
      if (!(await this.ledger.commit(rec, { status: 'sending', attempts: rec.attempts + 1, updatedAt: new Date().toISOString() }))) {
        this.metrics.commandLedgerUnwritten.inc({ status: 'sending' });
        last = new CommandError('ledger_unavailable', `the command ledger (${this.ledger.kind}) did not record the sending state, so it was not sent`, { retriable: true, sent: false });
        const delay = Math.min(backoffDelay(retry, unrecorded++), Math.max(0, deadline - Date.now()));
        this.log.warn({ commandId: rec.commandId, channel: rec.channelId, retryInMs: delay }, 'command not sent: its sending state is not recorded; it stays accepted and is tried again');
        await this.interruptible(sleep(delay), rec.channelId);
        continue;
      }
      if (Date.now() >= deadline) {
        // The write outlasted the deadline: no attempt is started after it.
        rec.attempts--;
        continue;
      }
      this.metrics.commandAttempts.inc({ provider, type: rec.type });
      const watch = target.isEcho ? this.echoes.watch(rec.channelId, command, target.isEcho) : undefined;
      try {
        const outcome = await this.channels.execute(rec.channelId, command);
        watch?.cancel();
        return { status: 'sent', outcome: { upstreamMessageId: outcome.upstreamMessageId, conversationId: outcome.conversationId, result: outcome.result } };
      } catch (err) {
        const e = err instanceof CommandError ? err : new CommandError('internal', describeError(err), { retriable: false, sent: true, cause: err });
        if (e.sent) {
          if (!watch) return failed('ambiguous_no_echo', `${e.message}; provider ${provider} has no echo that could confirm a ${rec.type}, so it was not sent again`, true);
          this.log.warn({ commandId: rec.commandId, channel: rec.channelId, err: e.message }, 'command outcome unknown; waiting for the upstream echo');
          const echo = watch.seen() ?? (await watch.wait(Math.max(0, Math.min(this.settings.echoTimeoutMs, deadline - Date.now()))));
          watch.cancel();
          if (echo) return { status: 'sent', outcome: { upstreamMessageId: messageIdOf(echo) } };
          return failed('ambiguous_no_echo', `${e.message}; no echo within commands.echoTimeoutMs (${this.settings.echoTimeoutMs} ms), so it was not sent again`, true);
        }
        watch?.cancel();
        if (!e.retriable) return failed(e.code, e.message, false);
        last = e;
        if (e.code === 'not_connected' && !this.channels.connected(rec.channelId)) {
          // Held, not failed: the channel is reconnecting. This was no upstream attempt.
          rec.attempts--;
          await this.setStatus(rec, 'accepted');
          await this.interruptible(this.channels.whenConnected(rec.channelId, deadline - Date.now()), rec.channelId);
          continue;
        }
        if (rec.attempts >= retry.maxAttempts) return failed(e.code, `gave up after ${rec.attempts} attempts (commands.retry.maxAttempts): ${e.message}`, false);
        // Surely not sent: `accepted` again, so a restart during the backoff delivers it instead of failing it `interrupted`.
        await this.setStatus(rec, 'accepted');
        const delay = Math.min(backoffDelay(retry, backoffs++), Math.max(0, deadline - Date.now()));
        this.log.info({ commandId: rec.commandId, channel: rec.channelId, err: e.message, retryInMs: delay }, 'command not sent; retrying');
        await this.interruptible(sleep(delay), rec.channelId);
      }
    }
  }

  /**
   * Waits the `n`th backoff of `commands.retry` before an end the ledger did not take is recorded again; false when
   * shutdown or a handover ended the wait (the command is then left in its last recorded state).
   */
  async pause(rec: CommandRecord, n: number): Promise<boolean> {
    await this.interruptible(sleep(backoffDelay(this.settings.retry, n)), rec.channelId);
    return !this.stopping() && this.owns(rec);
  }

  private async setStatus(rec: CommandRecord, status: 'accepted'): Promise<void> {
    rec.status = status;
    rec.updatedAt = new Date().toISOString();
    if (!(await this.ledger.save(rec))) this.metrics.commandLedgerUnwritten.inc({ status });
  }

  /** Waits for `p`, or until shutdown or the channel's release. */
  private async interruptible(p: Promise<unknown>, channelId: string): Promise<void> {
    let wake!: () => void;
    const released = new Promise<void>((resolve) => (wake = resolve));
    const waiting = this.released.get(channelId) ?? new Set<() => void>();
    this.released.set(channelId, waiting.add(wake));
    try {
      await Promise.race([p, this.stopped, released]);
    } finally {
      waiting.delete(wake);
      if (!waiting.size && this.released.get(channelId) === waiting) this.released.delete(channelId);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, ms).unref?.());
}

function failed(code: string, message: string, mayHaveActed: boolean): DeliveryEnd {
  return { status: 'failed', error: { code, message, mayHaveActed } };
}

function messageIdOf(event: AnyCanonicalEvent): string | undefined {
  return 'message' in event.data ? event.data.message.id : undefined;
}
