/**
 * A plan's runs over time: pass rate, cost and p50 per run (`stride runs --plan NAME`), a text
 * sparkline of the pass rate, and the pass-rate trend the HTML report of a run shows.
 */

import { LatencyHistogram } from '../core/histogram.js';
import { ResultConverter } from '../report/convert.js';
import type { RunHistory } from '../runner/history.js';
import type { RunSummary } from '../store/port.js';

/** One run's figures, as its own report computes them. */
export interface RunFigures {
  readonly id: string;
  readonly plan: string;
  readonly status: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Results: one per case (its latest), cancelled included, as in the run's report. */
  readonly total: number;
  readonly passed: number;
  /** Null when the run has no result. */
  readonly passRate: number | null;
  readonly tokens: number;
  /** The known costs' sum: partial when `costUnknown` > 0, never the run's cost then. */
  readonly cost: number;
  /** Cases (of those counted) whose cost is unknown (issue #18). */
  readonly costUnknown: number;
  /** Seconds per case, first attempt to verdict; null when the run has no result. */
  readonly p50: number | null;
}

/** A point of the report's trend: a run and its pass rate. */
export interface TrendPoint {
  readonly runId: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly passRate: number | null;
}

/**
 * One run's figures from its stored results, in one streamed pass (each case's latest result,
 * as the run's report counts it). Memory: the ids of cancelled cases only.
 */
export async function runFigures(history: RunHistory, run: RunSummary): Promise<RunFigures> {
  const latency = new LatencyHistogram();
  let total = 0;
  let passed = 0;
  let tokens = 0;
  let cost = 0;
  let costUnknown = 0;
  // A cancelled row may be followed by the case's verdict (a resume): held until the end.
  const cancelled = new Map<string, { ms: number; tokens: number; cost: number | undefined }>();
  const add = (ms: number, t: number, c: number | undefined, pass: boolean, ran: boolean) => {
    total++;
    if (pass) passed++;
    tokens += Number.isFinite(t) ? t : 0;
    // Unknown is not free: counted apart, as the run's report does.
    if (c === undefined) costUnknown++;
    else cost += Number.isFinite(c) ? c : 0;
    // Microseconds, exactly as the report's summary records a case's executionTime, and over
    // the same cases: those that ran to a verdict.
    if (ran) latency.record(Math.max(0, Number.isFinite(ms) ? ms / 1000 : 0) * 1e6);
  };
  for await (const r of history.store.results(run.id)) {
    const c = r.usage.costUnknown === true ? undefined : r.usage.cost;
    if (r.status === 'cancelled') {
      cancelled.set(r.id, { ms: r.executionTimeMs, tokens: r.usage.tokens, cost: c });
      continue;
    }
    cancelled.delete(r.id);
    add(
      r.executionTimeMs,
      r.usage.tokens,
      c,
      ResultConverter.mapStatus(r.status) === 'success',
      true,
    );
  }
  for (const c of cancelled.values()) add(c.ms, c.tokens, c.cost, false, false);
  const lat = latency.summary();
  return {
    id: run.id,
    plan: run.plan,
    status: run.status,
    startedAt: run.startedAt,
    total,
    passed,
    passRate: total === 0 ? null : passed / total,
    tokens,
    cost,
    costUnknown,
    p50: lat.count === 0 ? null : lat.p50 / 1e6,
  };
}

/** The plan's test runs, newest first, at most `limit`. */
export async function runsOfPlan(
  history: RunHistory,
  plan: string,
  limit: number,
): Promise<RunSummary[]> {
  const all = await history.listRuns();
  return all.filter((r) => r.plan === plan && r.kind === 'test').slice(0, limit);
}

/**
 * The pass rate of the plan's recent runs, oldest first, ending with `upTo` (the run a report
 * is written for) when given. A run never resumed has one stored result per case, so its
 * counts give its report's pass rate at no cost; a resumed run may keep superseded cancelled
 * rows, so its results are read.
 */
export async function passRateTrend(
  history: RunHistory,
  plan: string,
  options: {
    readonly limit?: number;
    readonly upTo?: string;
    /** `upTo`'s own pass rate, when the caller has it (its report's summary): not read again. */
    readonly upToPassRate?: number | null;
  } = {},
): Promise<TrendPoint[]> {
  const all = await runsOfPlan(history, plan, Number.MAX_SAFE_INTEGER);
  const from = options.upTo === undefined ? 0 : all.findIndex((r) => r.id === options.upTo);
  const runs = all.slice(Math.max(0, from), Math.max(0, from) + (options.limit ?? 20));
  const points: TrendPoint[] = [];
  for (const r of runs.reverse()) {
    if (r.status === 'running' && r.id !== options.upTo) continue;
    const c = r.counts;
    const passRate =
      r.id === options.upTo && options.upToPassRate !== undefined
        ? options.upToPassRate
        : r.resumes === 0
          ? c.total === 0
            ? null
            : c.succeeded / c.total
          : (await runFigures(history, r)).passRate;
    points.push({ runId: r.id, startedAt: r.startedAt, passRate });
  }
  return points;
}

const BARS = '▁▂▃▄▅▆▇█';

/**
 * A text sparkline of pass rates, oldest first: one block per run, scaled from the lowest to the
 * highest rate shown (a plan's pass rate usually moves within a few points, which a fixed
 * 0-100 % scale would flatten into one bar), a space for an unknown rate. Print the range with it.
 *
 * @example
 * ```ts
 * sparkline([0.9, 0.95, 1, null]); // '▁▅█ '
 * ```
 */
export function sparkline(rates: readonly (number | null)[]): string {
  const known = rates.filter((r): r is number => r !== null);
  const low = Math.min(...known);
  const span = Math.max(...known) - low;
  return rates
    .map((r) => {
      if (r === null) return ' ';
      if (span < 1e-12) return BARS[3]!;
      return BARS[Math.round(((r - low) / span) * (BARS.length - 1))]!;
    })
    .join('');
}
