/** Shared by the bench phases: one result row and histogram quantiles computed as Prometheus does. */
import type { Histogram } from 'prom-client';

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
