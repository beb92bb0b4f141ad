import { describe, expect, it } from 'vitest';
import type { TestResult } from '../../src/report/convert.js';
import {
  costText,
  datasetResolver,
  MAX_DATASETS,
  MAX_ERROR_CODES,
  OTHER_CODES,
  OTHER_DATASETS,
  SLOWEST_CASES,
  SummaryBuilder,
  summarize,
} from '../../src/report/summary.js';
import { META, result } from './helpers.js';

function build(results: readonly TestResult[]) {
  const b = new SummaryBuilder();
  for (const r of results) b.add(r);
  return b.build(META);
}

/** The exact nearest-rank percentile, the definition the histogram approximates. */
function exact(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

describe('SummaryBuilder', () => {
  it('counts statuses, datasets, tokens, cost, attempts, retries and error codes', () => {
    const s = build([
      result({ id: 'a', dataset: 'refunds', tokens: 10, cost: 0.01, seconds: 1 }),
      result({ id: 'b', dataset: 'refunds', status: 'failed', errorCode: 'TASK_FAILED' }),
      result({ id: 'c', status: 'error', errorCode: 'HTTP_ERROR', attempts: 3, tokens: 5 }),
      result({ id: 'd', status: 'error', errorCode: 'HTTP_ERROR', errorMessage: 'bad gateway' }),
      result({ id: 'e', status: 'timeout', errorCode: 'TIMEOUT', attempts: 2, cost: 0.02 }),
      result({ id: 'f', cancelled: true }),
      result({ id: 'g', dataset: 'smalltalk' }),
      result({ id: 'h', status: 'error', errorMessage: 'no code' }),
    ]);
    expect(s.total).toBe(8);
    // Disjoint: the cancelled case is apart from `error`, and the five add up to the total.
    expect(s.counts).toEqual({ success: 2, failed: 1, error: 3, timeout: 1 });
    expect(s.cancelled).toBe(1);
    expect(s.passRate).toBe(2 / 8);
    expect(s.tokens).toBe(15);
    expect(s.cost).toBeCloseTo(0.03, 10);
    expect(s.attempts).toBe(11);
    expect(s.retried).toBe(2);
    expect(
      s.datasets.map((d) => [d.name, d.total, d.success, d.failed, d.error, d.cancelled]),
    ).toEqual([
      ['default', 5, 0, 0, 3, 1],
      ['refunds', 2, 1, 1, 0, 0],
      ['smalltalk', 1, 1, 0, 0, 0],
    ]);
    expect(s.datasets.find((d) => d.name === 'refunds')?.passRate).toBe(0.5);
    expect(s.errors).toEqual([
      { code: 'HTTP_ERROR', count: 2, example: undefined },
      { code: '(none)', count: 1, example: 'no code' },
      { code: 'CANCELLED', count: 1, example: 'cancelled (user)' },
      { code: 'TASK_FAILED', count: 1, example: undefined },
      { code: 'TIMEOUT', count: 1, example: undefined },
    ]);
    expect(s.meta).toBe(META);
    expect(s.durationSeconds).toBe(90);
  });

  it('latency is over the cases that ran to a verdict: cancelled cases give no p50 of 0 ms', () => {
    const cancelledOnly = build([
      result({ id: 'a', cancelled: true, seconds: 0 }),
      result({ id: 'b', cancelled: true, seconds: 0 }),
    ]);
    expect(cancelledOnly.latency.count).toBe(0);
    expect(cancelledOnly.histogram.every((b) => b.count === 0)).toBe(true);
    expect(cancelledOnly.slowest).toEqual([]);

    const mixed = build([
      result({ id: 'a', seconds: 2 }),
      result({ id: 'b', status: 'failed', seconds: 4 }),
      // cut off mid-attempt: its time is not a latency
      result({ id: 'c', cancelled: true, seconds: 0.001 }),
      result({ id: 'd', cancelled: true, seconds: 9 }),
    ]);
    expect(mixed.latency.count).toBe(2);
    expect(mixed.latency.min).toBe(2);
    expect(mixed.latency.max).toBeCloseTo(4, 1);
    expect(mixed.slowest.map((c) => c.id)).toEqual(['b', 'a']);
    expect(mixed.histogram.reduce((n, b) => n + b.count, 0)).toBe(2);
  });

  it('unknown cost is not added as 0: a partial sum, labelled, and the count of unknown cases (issue #18 item 6)', () => {
    const unknown = (id: string) => ({ ...result({ id, tokens: 10 }), cost: undefined });
    const s = build([result({ id: 'a', cost: 0.5 }), unknown('b'), unknown('c')]);
    expect(s.cost).toBe(0.5);
    expect(s.costUnknown).toBe(2);
    const money = (c: number) => c.toFixed(2);
    expect(costText(s, money)).toBe('unknown for 2 cases (partial sum of the other 1: 0.50)');
    expect(costText(build([unknown('b')]), money)).toBe(
      'unknown (no price known for any of the 1 case)',
    );
    expect(costText(build([result({ cost: 0.25 })]), money)).toBe('0.25');
  });

  it('is all zeros for no results, and has no duration while the run goes on', () => {
    const s = new SummaryBuilder().build({ ...META, finishedAt: undefined });
    expect(s.total).toBe(0);
    expect(s.passRate).toBe(0);
    expect(s.latency).toEqual({
      count: 0,
      min: 0,
      mean: 0,
      p50: 0,
      p90: 0,
      p95: 0,
      p99: 0,
      max: 0,
    });
    expect(s.histogram.every((b) => b.count === 0)).toBe(true);
    expect(s.durationSeconds).toBeUndefined();
    expect(s.slowest).toEqual([]);
  });

  it('gives percentiles within 1 % of the exact ones on a known set', () => {
    // 1,000 latencies spread over four orders of magnitude, in a shuffled order.
    const values = Array.from({ length: 1000 }, (_, i) => 0.005 * 1.01 ** i);
    const shuffled = [...values].sort((a, b) => Math.sin(a * 1e4) - Math.sin(b * 1e4));
    const s = build(shuffled.map((seconds, i) => result({ id: `c${i}`, seconds })));
    const sorted = [...values].sort((a, b) => a - b);
    const l = s.latency;
    expect(l.count).toBe(1000);
    expect(l.min).toBe(sorted[0]);
    expect(l.max).toBeCloseTo(sorted[999]!, 9);
    expect(l.mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / 1000, 9);
    for (const [q, got] of [
      [0.5, l.p50],
      [0.9, l.p90],
      [0.95, l.p95],
      [0.99, l.p99],
    ] as const) {
      const want = exact(sorted, q);
      expect(Math.abs(got - want) / want).toBeLessThanOrEqual(0.0101);
    }
    // Small known set: 1..100 seconds.
    const s2 = build(Array.from({ length: 100 }, (_, i) => result({ seconds: i + 1 })));
    expect(s2.latency.p50).toBeGreaterThanOrEqual(50);
    expect(s2.latency.p50).toBeLessThanOrEqual(50.5);
    expect(s2.latency.p99).toBeGreaterThanOrEqual(99);
    expect(s2.latency.p99).toBeLessThanOrEqual(100);
  });

  it('puts each latency in its histogram bar', () => {
    const s = build(
      [0.0004, 0.001, 0.3, 0.3, 1, 2.4, 2.5, 5000].map((seconds) => result({ seconds })),
    );
    const bar = (v: number) =>
      s.histogram.find((b) => v >= b.from && (b.to === null || v < b.to))!.count;
    expect(bar(0.0004)).toBe(1); // [0, 1 ms)
    expect(bar(0.001)).toBe(1); // [1 ms, 2.5 ms)
    expect(bar(0.3)).toBe(2); // [0.25 s, 0.5 s)
    expect(bar(1)).toBe(2); // [1 s, 2.5 s): 1 and 2.4
    expect(bar(2.5)).toBe(1);
    expect(bar(5000)).toBe(1); // the open bar
    expect(s.histogram.at(-1)).toEqual({ from: 1000, to: null, count: 1 });
    expect(s.histogram.reduce((n, b) => n + b.count, 0)).toBe(8);
    // Contiguous bars, starting at 0.
    expect(s.histogram[0]!.from).toBe(0);
    for (let i = 1; i < s.histogram.length; i++) {
      expect(s.histogram[i]!.from).toBe(s.histogram[i - 1]!.to);
    }
  });

  it('keeps the ten slowest cases, slowest first', () => {
    const results = Array.from({ length: 100 }, (_, i) =>
      result({ id: `c${i}`, seconds: (i * 37) % 100, status: i % 2 === 0 ? 'success' : 'failed' }),
    );
    const s = build(results);
    expect(s.slowest).toHaveLength(SLOWEST_CASES);
    expect(s.slowest.map((c) => c.seconds)).toEqual([99, 98, 97, 96, 95, 94, 93, 92, 91, 90]);
    const c99 = results.find((r) => r.executionTime === 99)!;
    expect(s.slowest[0]).toEqual({
      id: c99.executionId,
      dataset: 'default',
      seconds: 99,
      status: c99.status,
    });
  });

  it('holds a bounded state for 200,000 results and caps datasets and error codes', () => {
    const b = new SummaryBuilder();
    for (let i = 0; i < 200_000; i++) {
      b.add(
        result({
          id: `c${i}`,
          // every case its own dataset and error code: the worst case for the maps
          dataset: `d${i}`,
          status: i % 4 === 0 ? 'error' : 'success',
          errorCode: i % 4 === 0 ? `E${i}` : undefined,
          seconds: (i % 1000) / 100,
          tokens: 2,
          attempts: 1,
        }),
      );
    }
    const s = b.build(META);
    expect(s.total).toBe(200_000);
    expect(s.counts.error).toBe(50_000);
    expect(s.counts.success).toBe(150_000);
    expect(s.tokens).toBe(400_000);
    expect(s.attempts).toBe(200_000);
    expect(s.datasets).toHaveLength(MAX_DATASETS + 1);
    const other = s.datasets.find((d) => d.name === OTHER_DATASETS)!;
    expect(other.total).toBe(200_000 - MAX_DATASETS);
    expect(s.datasets.reduce((n, d) => n + d.total, 0)).toBe(200_000);
    expect(s.errors).toHaveLength(MAX_ERROR_CODES + 1);
    expect(s.errors[0]).toMatchObject({ code: OTHER_CODES, count: 50_000 - MAX_ERROR_CODES });
    expect(s.slowest).toHaveLength(SLOWEST_CASES);
    expect(s.latency.max).toBeCloseTo(9.99, 6);
    // datasetResolver sends a capped name to the overflow group, a known one to itself
    const resolve = datasetResolver(s);
    expect(resolve(result({ dataset: 'd5' }))).toBe('d5');
    expect(resolve(result({ dataset: 'd150000' }))).toBe(OTHER_DATASETS);
  });

  it('summarize reads a sync or an async source once', async () => {
    let reads = 0;
    async function* gen() {
      reads++;
      yield result({ id: 'a' });
      yield result({ id: 'b', status: 'failed' });
    }
    const s = await summarize(gen, META);
    expect(reads).toBe(1);
    expect(s.counts).toEqual({ success: 1, failed: 1, error: 0, timeout: 0 });
    const s2 = await summarize(() => [result(), result(), result({ status: 'timeout' })], META);
    expect(s2.total).toBe(3);
    expect(s2.counts.timeout).toBe(1);
  });
});
