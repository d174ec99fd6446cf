/** Shared by the bench phases: one result row, histogram quantiles computed as Prometheus does, event-loop lateness. */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Histogram } from 'prom-client';

/** The event-loop monitor's timer period (ms). */
const LOOP_TICK_MS = 5;

/**
 * Starts measuring how late this process's event loop runs: `read` gives p99 and max (ms) so far, `stop` ends it. The
 * monitor records the time between two of its ticks, so the tick period is taken off: 0 is a loop never late.
 */
export function loopDelay(): { read: () => { p99ms: number; maxMs: number }; stop: () => void } {
  const delay = monitorEventLoopDelay({ resolution: LOOP_TICK_MS });
  delay.enable();
  const late = (ns: number) => Math.max(0, ns / 1e6 - LOOP_TICK_MS);
  return { read: () => ({ p99ms: late(delay.percentile(99)), maxMs: late(delay.max) }), stop: () => delay.disable() };
}

/** One measured row of the benchmark. */
export interface Result { label: string; eventsPerSec: number; p50ms: number; p99ms: number; cpuUsPerEvent: number }

/** histogram_quantile as Prometheus computes it: linear interpolation inside the bucket. */
export function quantile(q: number, buckets: Array<{ le: number; count: number }>): number {
  const total = buckets[buckets.length - 1].count;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1, b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** p50 and p99 (ms) of a prom-client histogram, optionally of the series with `labels`. */
export async function histogramQuantiles(h: Histogram<string>, labels: Record<string, string> = {}): Promise<{ p50: number; p99: number }> {
  const { values } = await h.get();
  const buckets = values
    .filter((v) => v.metricName?.endsWith('_bucket') && Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .map((v) => ({ le: v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), count: v.value }))
    .sort((a, b) => a.le - b.le);
  return { p50: quantile(0.5, buckets) * 1000, p99: quantile(0.99, buckets) * 1000 };
}

/** Each figure's median over the rounds (the label of the first). */
export function median(results: Result[]): Result {
  const mid = (pick: (r: Result) => number) => {
    const sorted = results.map(pick).sort((a, b) => a - b);
    const m = sorted.length >> 1;
    return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  };
  return { label: results[0].label, eventsPerSec: mid((r) => r.eventsPerSec), p50ms: mid((r) => r.p50ms), p99ms: mid((r) => r.p99ms), cpuUsPerEvent: mid((r) => r.cpuUsPerEvent) };
}
