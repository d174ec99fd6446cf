import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { describeError } from '../common/errors';
import type { UpstreamCommand } from '../connectors/connector.interface';
import { CommandRequestError, type CommandRecord, type CommandStatus, type LedgerStore } from './command.types';

const RANK: Record<CommandStatus, number> = { accepted: 0, sending: 1, sent: 2, failed: 2 };

/** sha256 of the canonical JSON (keys sorted at every level) of a command and its channel: equal bodies, equal prints. */
export function commandFingerprint(channelId: string, command: UpstreamCommand): string {
  return createHash('sha256').update(canonicalJson({ channelId, command })).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Of two records of one command, the one that is further along (final beats sending beats accepted; then the newer). */
export function newerRecord(a: CommandRecord, b: CommandRecord): CommandRecord {
  if (RANK[a.status] !== RANK[b.status]) return RANK[a.status] > RANK[b.status] ? a : b;
  if (RANK[a.status] === 2) return a; // a final state never changes: the first one seen stays
  return b.updatedAt > a.updatedAt ? b : a;
}

/** An unfinished record and when it entered the open tier (whole ms since the ledger was made: a small integer). */
interface OpenRecord {
  record: CommandRecord;
  readonly since: number;
  /** True once this process claimed or changed it (it runs the command): never dropped for its age. */
  mine: boolean;
}

/**
 * The idempotency ledger (docs/commands.md): commandId → the command's latest record. Memory holds every unfinished
 * command (an eviction would answer 404 to its status and send a repeat twice) and the newest `maxEntries` finished
 * ones for `ttlMs`; with a store (Kafka) every record is also written durably, loaded at start and followed from
 * other replicas. A command is accepted only once its first record is durable.
 */
export class CommandLedger {
  /** Finished records (sent, failed): the newest `maxEntries`, each for `ttlMs`. */
  private readonly finished: LRUCache<string, CommandRecord>;
  /**
   * Unfinished records (accepted, sending), never evicted by `maxEntries`. Those this process runs stay until they
   * finish. Those only read from the store (another replica's, or one whose process died before a final state) go
   * `ttlMs` after they entered, which keeps this tier bounded. In order of entry (a state change keeps a record's
   * place), so the front is the oldest.
   */
  private readonly open = new Map<string, OpenRecord>();
  private readonly epoch = performance.now();
  private readonly ttlMs: number;
  /** The earliest an open record can turn stale (ms since `epoch`): before it no insert looks for stale ones. */
  private staleFrom = 0;
  /** First writes in progress: a repeat arriving meanwhile waits for them (and fails with them). */
  private readonly claiming = new Map<string, Promise<void>>();
  /** False until the store was read: until then nothing is accepted (a repeat could not be recognised). */
  private loaded: boolean;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    opts: { maxEntries: number; ttlMs: number },
    private readonly log: Logger,
    private readonly store?: LedgerStore,
  ) {
    this.finished = new LRUCache<string, CommandRecord>({ max: opts.maxEntries, ttl: opts.ttlMs, updateAgeOnGet: false });
    this.ttlMs = opts.ttlMs;
    this.loaded = !store;
  }

  /** `memory`, or the store's name. */
  get kind(): string {
    return this.store?.name ?? 'memory';
  }

  /**
   * Loads the store (bounded by the store; it goes on with other replicas' writes in the background), and calls
   * `onLoaded`. When the store cannot be read the bridge starts anyway (events flow) and the command doors answer
   * 503 `ledger_unavailable` until a background retry (every `retryMs`) has read it.
   */
  async start(onLoaded: () => void, retryMs = 5000): Promise<void> {
    const store = this.store;
    if (!store) {
      onLoaded();
      return;
    }
    const attempt = async (): Promise<void> => {
      try {
        await store.load((r) => this.merge(r));
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: describeError(err), retryInMs: retryMs }, `command ledger (${store.name}) cannot be read; commands are refused (503) until it is`);
        this.retryTimer = setTimeout(() => void attempt(), retryMs);
        this.retryTimer.unref?.();
        return;
      }
      if (this.stopped) return;
      this.loaded = true;
      onLoaded();
    };
    await attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.store?.stop();
  }

  /** The record of `commandId`, if known. */
  get(commandId: string): CommandRecord | undefined {
    return this.open.get(commandId)?.record ?? this.finished.get(commandId);
  }

  /** Unfinished records (accepted or sending), e.g. to resume after a restart. */
  unfinished(): CommandRecord[] {
    return Array.from(this.open.values(), (o) => o.record);
  }

  /**
   * Records a new command, or returns the known one (`created: false`, nothing written). Throws
   * CommandRequestError `ledger_unavailable` when the store did not take it; the command is then not accepted.
   */
  async claim(record: CommandRecord): Promise<{ record: CommandRecord; created: boolean }> {
    this.requireLoaded();
    const known = this.get(record.commandId);
    if (known) return { record: known, created: false };
    this.put(record, true);
    if (!this.store) return { record, created: true };
    const { name } = this.store;
    const write = this.store.write(record).catch((err: unknown) => {
      if (this.get(record.commandId) === record) this.forget(record.commandId);
      throw new CommandRequestError('ledger_unavailable', `the command ledger (${name}) did not take the command, so it was not accepted: ${describeError(err)}; send it again later with the same commandId`);
    });
    this.claiming.set(record.commandId, write);
    try {
      await write;
      return { record, created: true };
    } finally {
      this.claiming.delete(record.commandId);
    }
  }

  /** Resolves once the first record of `commandId` is durable; rejects like its claim when the store refused it. */
  async whenDurable(commandId: string): Promise<void> {
    await this.claiming.get(commandId);
  }

  /** Stores a state change; true when durable (always, without a store). A failed write is logged, never thrown (the caller counts it in `chatbridge_command_ledger_unwritten_total`). */
  async save(record: CommandRecord): Promise<boolean> {
    this.put(record, true);
    if (!this.store) return true;
    try {
      await this.store.write(record);
      return true;
    } catch (err) {
      this.log.warn({ commandId: record.commandId, status: record.status, err: describeError(err) }, `command ledger: state ${record.status} not stored durably`);
      return false;
    }
  }

  /**
   * Applies `changes` to `record` only once the store has the changed record, so memory never shows a state that is
   * not durable (always at once without a store). False, the record unchanged, when the store did not take it
   * (refused, timed out, threw); the failure is logged, never thrown (the caller counts it).
   */
  async commit(record: CommandRecord, changes: Partial<CommandRecord>): Promise<boolean> {
    const next = withChanges({ ...record }, changes);
    if (this.store) {
      try {
        await this.store.write(next);
      } catch (err) {
          this.log.warn({ commandId: record.commandId, status: next.status, err: describeError(err) }, `command ledger: state ${next.status} not stored durably, so not applied`);
        return false;
      }
    }
    this.put(withChanges(record, changes), true);
    return true;
  }

  /** Throws `ledger_unavailable` while the store has not been read. */
  requireLoaded(): void {
    if (!this.loaded) {
      throw new CommandRequestError('ledger_unavailable', `the command ledger (${this.store?.name ?? 'memory'}) has not been read yet (Kafka unreachable?), so a repeated commandId could not be recognised; nothing was accepted, send it again later`);
    }
  }

  /** Folds a record read from the store into memory. */
  private merge(record: CommandRecord): void {
    const known = this.get(record.commandId);
    this.put(known ? newerRecord(known, record) : record, false);
  }

  /** Keeps `record` as its command's latest, in the tier of its status (and no longer in the other); `mine` when this process runs it. */
  private put(record: CommandRecord, mine: boolean): void {
    const id = record.commandId;
    if (record.status === 'sent' || record.status === 'failed') {
      this.open.delete(id);
      this.finished.set(id, record);
      return;
    }
    this.finished.delete(id);
    const opened = this.open.get(id);
    if (opened) {
      opened.record = record;
      opened.mine ||= mine;
      return;
    }
    const now = Math.floor(performance.now() - this.epoch);
    this.dropStale(now);
    this.open.set(id, { record, since: now, mine });
  }

  /**
   * Drops the open records read from the store that entered `ttlMs` or more before `now`, walking from the front
   * (past this process's own, which stay). It walks only once `staleFrom` has passed, about once per `ttlMs` rather
   * than per insert, because a fresh iterator also steps over every hole that finished records left at the front
   * (`OldestKey` avoids that, but it removes a key before its age could be read).
   */
  private dropStale(now: number): void {
    if (now < this.staleFrom) return;
    for (const [id, { since, mine }] of this.open) {
      if (mine) continue;
      if (now - since < this.ttlMs) {
        this.staleFrom = since + this.ttlMs;
        return;
      }
      this.open.delete(id);
    }
    this.staleFrom = now + this.ttlMs;
  }

  /** Forgets `commandId` in whichever tier holds it. */
  private forget(commandId: string): void {
    this.open.delete(commandId);
    this.finished.delete(commandId);
  }
}

/** `record` with `changes` applied in place; a change to undefined removes the field. */
function withChanges(record: CommandRecord, changes: Partial<CommandRecord>): CommandRecord {
  for (const [key, value] of Object.entries(changes) as Array<[keyof CommandRecord, unknown]>) {
    if (value === undefined) delete record[key];
    else (record as unknown as Record<string, unknown>)[key] = value;
  }
  return record;
}
