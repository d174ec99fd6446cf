import type { ChannelStore } from '../connector.interface';
import { isRecord, str } from '../mapper';
import type { VisitorIdentity } from './smartsupp.commands';

/** What is kept per visitor across restarts (small: a restart resumes the SAME visitors). */
export interface PersistedVisitor {
  chatId?: string;
  /** Newest message time already published (ISO), so a restart does not republish the chat history. */
  since?: string;
  /** Ids of the published messages created exactly at `since`. */
  seen?: string[];
  identity?: VisitorIdentity;
  /** Last frame or command (ISO), so idle time survives a restart or a handover. */
  activeAt?: string;
}

/** The state key holding `{ [visitorId]: PersistedVisitor }`. */
export const VISITORS_KEY = 'visitors';

/** Reads the persisted visitors, ignoring entries it cannot read. */
export function loadVisitors(store: ChannelStore): Map<string, PersistedVisitor> {
  const raw = store.get<unknown>(VISITORS_KEY);
  const out = new Map<string, PersistedVisitor>();
  if (!isRecord(raw)) return out;
  for (const [id, v] of Object.entries(raw)) {
    const entry = id ? parseVisitor(v) : undefined;
    if (entry) out.set(id, entry);
  }
  return out;
}

/** One persisted visitor (a state-file entry, or a state-topic record in a cluster); undefined when it is not one. */
export function parseVisitor(v: unknown): PersistedVisitor | undefined {
  if (!isRecord(v)) return undefined;
  const entry: PersistedVisitor = {};
  if (str(v.chatId)) entry.chatId = str(v.chatId);
  if (str(v.since)) entry.since = str(v.since);
  if (Array.isArray(v.seen)) entry.seen = v.seen.filter((x): x is string => typeof x === 'string');
  if (isRecord(v.identity)) entry.identity = v.identity;
  if (str(v.activeAt)) entry.activeAt = str(v.activeAt);
  return entry;
}

/**
 * Drops account-wide events that every visitor socket receives (an `agent.updated` reaches all N sockets):
 * the first copy within `windowMs` passes, the others are suppressed. Pruned on insert; no timer.
 */
export class Coalescer {
  private readonly seen = new Map<string, number>();

  constructor(private readonly windowMs: number) {}

  /** True when this (event, payload) was not seen within the window; records it. */
  admit(event: string, data: unknown, now = Date.now()): boolean {
    let key: string;
    try {
      key = `${event}\0${JSON.stringify(data)}`;
    } catch {
      return true;
    }
    const last = this.seen.get(key);
    if (last !== undefined && now - last < this.windowMs) return false;
    if (this.seen.size >= 256) {
      for (const [k, t] of this.seen) if (now - t >= this.windowMs) this.seen.delete(k);
    }
    this.seen.set(key, now);
    return true;
  }
}

/** Milliseconds of an upstream ISO time, or undefined. */
export function timeOf(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** A visitor's message high-water mark: the newest message time published, and the ids published at that time. */
export interface ReadMark {
  since?: number;
  seen?: string[];
}

/** Moves `mark` forward past the message `msg` (ignored without an id and a time); true when it moved. */
export function advanceMark(mark: ReadMark, msg: unknown): boolean {
  const t = isRecord(msg) ? timeOf(msg.createdAt) : undefined;
  const id = isRecord(msg) ? str(msg.id) : undefined;
  if (t === undefined || !id || (mark.since !== undefined && t < mark.since)) return false;
  if (t === mark.since) {
    if (mark.seen?.includes(id)) return false;
    mark.seen = [...(mark.seen ?? []), id];
  } else {
    mark.since = t;
    mark.seen = [id];
  }
  return true;
}

/** Merges another holder's read mark of the same visitor into `mark`: it never moves backwards. */
export function mergeMark(mark: ReadMark, other: PersistedVisitor): void {
  const t = timeOf(other.since);
  if (t === undefined) return;
  if (mark.since === undefined || t > mark.since) {
    mark.since = t;
    mark.seen = other.seen;
  } else if (t === mark.since && other.seen?.length) {
    mark.seen = [...new Set([...(mark.seen ?? []), ...other.seen])];
  }
}
