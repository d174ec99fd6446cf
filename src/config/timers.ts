/** The longest delay Node's timers take (ms): a longer one is clamped to 1 ms, i.e. fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Fields holding a list of delays in ms whose name does not end in `Ms`. */
const DELAY_LISTS = new Set(['retrySchedule']);

/**
 * Every timer setting over MAX_TIMER_MS, with its path as written in the file: any field whose name ends in `Ms`
 * (top level, nested blocks, provider options, lists of endpoints) and the delay lists. Read from the file as
 * written, so options a provider adds later are covered without being listed here.
 */
export function timerProblems(raw: unknown, path = ''): string[] {
  const out: string[] = [];
  const visit = (value: unknown, at: string, isTimer: boolean) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, `${at}[${i}]`, isTimer));
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) visit(v, at ? `${at}.${k}` : k, k.endsWith('Ms') || DELAY_LISTS.has(k));
    } else if (isTimer && (typeof value === 'number' || typeof value === 'string')) {
      const n = Number(value);
      if (Number.isFinite(n) && n > MAX_TIMER_MS) out.push(`${at}: must be at most ${MAX_TIMER_MS} ms (about 24.8 days): Node fires longer timers at once`);
    }
  };
  visit(raw, path, false);
  return out;
}
