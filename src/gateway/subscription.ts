import { GLOB_CHARS, globLimitProblems, type GlobLimits } from '../common/glob';

/** What a subscriber asked for, as acknowledged: omitted lists match everything. */
export interface Subscription {
  /** Channel ids; the bridge's own events (no channel) are excluded when present. */
  channels?: string[];
  /** CloudEvent type globs, `*` matching any run of characters (as in webhook filters). */
  types?: string[];
}

/** Why a `subscribe` was refused (the `reason` label of `chatbridge_refused_total{origin="stream"}`). */
export type SubscriptionRefusal = 'invalid' | 'pattern_limit' | 'subscribers_per_token' | 'subscribers_total';

/** A refused `subscribe`: acked as the API error JSON with `statusCode`, `message` and, for 400, every problem in `details`. */
export class SubscriptionError extends Error {
  /** 429 and 503 pass once other subscribers leave; a 400 needs another payload. */
  readonly retriable: boolean;

  constructor(
    readonly statusCode: 400 | 429 | 503,
    readonly reason: SubscriptionRefusal,
    message: string,
    readonly details?: string[],
  ) {
    super(message);
    this.name = 'SubscriptionError';
    this.retriable = statusCode !== 400;
  }
}

const CHANNEL_ID = /^[a-z0-9-]{1,64}$/;
/** Entries of `channels` (they must be configured channel ids, so a longer list only repeats). */
const MAX_CHANNELS = 1000;
const INVALID = 'invalid subscription: expected {channels?: string[], types?: string[]}';
/** Problems listed in one refusal; the rest are counted. */
const MAX_DETAILS = 20;

/**
 * Validates a `subscribe` payload against the glob limits (unknown keys and unknown channels included) and throws
 * SubscriptionError (400). It reads the payload two levels deep and no further, so no input, however large or deeply
 * nested, makes it throw anything else.
 */
export function parseSubscription(payload: unknown, isChannel: (id: string) => boolean, limits: GlobLimits): Subscription {
  if (payload === undefined || payload === null) return {};
  if (typeof payload !== 'object' || Array.isArray(payload)) throw new SubscriptionError(400, 'invalid', INVALID, ['(payload): must be an object']);
  const fields = payload as Record<string, unknown>;
  const details = new Problems();
  for (const key of Object.keys(fields)) if (key !== 'channels' && key !== 'types') details.push(`${quoteKey(key)}: unknown key`);
  const channels = strings(fields.channels, 'channels', details, (v, at) => {
    if (!CHANNEL_ID.test(v)) return `${at}: must be a channel id ([a-z0-9-]{1,64})`;
    return isChannel(v) ? undefined : `${at}: unknown channel "${v}"`;
  });
  if (Array.isArray(fields.channels) && fields.channels.length > MAX_CHANNELS) details.push(`channels: at most ${MAX_CHANNELS} entries; got ${fields.channels.length}`);
  const types = strings(fields.types, 'types', details, (v, at) =>
    v.length <= limits.maxPatternLength && !GLOB_CHARS.test(v) ? `${at}: must be an event type or glob (letters, digits, . _ - *)` : undefined);
  const overLimits = Array.isArray(fields.types) ? globLimitProblems(fields.types, limits, 'types') : [];
  if (details.count || overLimits.length) {
    const reason = details.count ? 'invalid' : 'pattern_limit';
    for (const p of overLimits) details.push(p);
    throw new SubscriptionError(400, reason, INVALID, details.list());
  }
  const out: Subscription = {};
  if (channels) out.channels = [...new Set(channels)];
  if (types) out.types = [...new Set(types)];
  return out;
}

/** An optional list of strings, each checked by `check` (a problem or undefined); problems go to `details`. */
function strings(value: unknown, at: string, details: Problems, check: (v: string, at: string) => string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    details.push(`${at}: must be an array of strings`);
    return undefined;
  }
  // A plain loop over the indexes: sparse arrays have holes, and nothing here looks inside an element.
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    const problem = typeof v === 'string' ? check(v, `${at}[${i}]`) : `${at}[${i}]: must be a string`;
    if (problem) details.push(problem);
  }
  return value as string[];
}

/** The first MAX_DETAILS problems, and how many there were: a refusal stays small whatever the payload. */
class Problems {
  count = 0;
  private readonly first: string[] = [];

  push(problem: string): void {
    if (this.count++ < MAX_DETAILS) this.first.push(problem);
  }

  list(): string[] {
    return this.count > MAX_DETAILS ? [...this.first, `… and ${this.count - MAX_DETAILS} more`] : this.first;
  }
}

/** A key as a problem's path: long keys shortened, so a refusal never echoes a large payload back. */
function quoteKey(key: string): string {
  return key.length > 64 ? `${key.slice(0, 64)}…` : key;
}
