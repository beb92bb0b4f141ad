/**
 * Latency percentiles in bounded memory: a log-scale histogram with 1% relative precision, so a
 * run of a million attempts keeps a few hundred counters instead of a million numbers.
 */

import type { LatencySummary } from './model.js';

const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);

export class LatencyHistogram {
  private readonly buckets = new Map<number, number>();
  private count = 0;
  private sum = 0;
  private max = 0;

  record(ms: number): void {
    const v = Math.max(ms, 0);
    // Bucket i holds values in [GROWTH^(i-1), GROWTH^i); values below 1 ms share bucket 0.
    const i = v < 1 ? 0 : Math.ceil(Math.log(v) / LOG_GROWTH + 1e-12);
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1);
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  summary(): LatencySummary {
    if (this.count === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    const at = (q: number): number => {
      const rank = Math.max(1, Math.ceil(q * this.count));
      let seen = 0;
      for (const k of keys) {
        seen += this.buckets.get(k)!;
        if (seen >= rank) return Math.min(this.max, k === 0 ? 1 : GROWTH ** k);
      }
      return this.max;
    };
    return {
      count: this.count,
      mean: this.sum / this.count,
      p50: at(0.5),
      p90: at(0.9),
      p95: at(0.95),
      p99: at(0.99),
      max: this.max,
    };
  }
}
