/**
 * The numbers every report starts with, computed in one pass over the results with bounded
 * memory: counters, a log histogram for the percentiles (core/histogram.ts, 1 % precision), the
 * ten slowest cases. Nothing here keeps a result, so a run of a million cases costs the same few
 * kilobytes as a run of ten.
 */

// Not re-exported by core/index.ts (an engine internal); imported directly, read-only use.
import { LatencyHistogram } from '../core/histogram.js';
import type { TestResult, TestStatus } from './convert.js';
import type { ResultSource } from './sink.js';
import { caseName, datasetOf, isCancelled } from './text.js';

/** What a report says about the run itself (the results do not know it). */
export interface ReportMeta {
  readonly runId: string;
  /** The plan's workflow id, or the plan's name. */
  readonly plan: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Epoch milliseconds; undefined while the run has not finished. */
  readonly finishedAt: number | undefined;
  /**
   * Milliseconds the run's sessions ran, summed (the store's `RunSummary.activeMs`): a resumed
   * run's wall time also holds the hours between sessions. Left out: the run is taken as one
   * session (active = wall) unless `resumes` > 0, when active time is unknown.
   */
  readonly activeMs?: number | undefined;
  /** How many times the run was resumed (its sessions are `resumes + 1`). */
  readonly resumes?: number | undefined;
  /** The run this one resumed or re-ran. */
  readonly parentId?: string;
  /** Why the run stopped early (a stop rule, a deadline, a signal). */
  readonly stoppedBy?: string;
  /** The command that reproduces the run, shown in the HTML report. */
  readonly command?: string;
}

function wallSeconds(meta: ReportMeta): number | undefined {
  return meta.finishedAt === undefined
    ? undefined
    : Math.max(0, meta.finishedAt - meta.startedAt) / 1000;
}

function activeSeconds(meta: ReportMeta): number | undefined {
  if (meta.finishedAt === undefined) return undefined;
  if (meta.activeMs !== undefined) return meta.activeMs / 1000;
  return (meta.resumes ?? 0) === 0 ? wallSeconds(meta) : undefined;
}

/**
 * Run time as people read it: active and wall apart when they differ, e.g.
 * `active 3.0 s · wall 1.0 h (2 sessions)`; `fmt` formats seconds.
 */
export function timeText(
  s: Pick<ReportSummary, 'durationSeconds' | 'activeSeconds' | 'sessions'>,
  fmt: (seconds: number) => string,
): string {
  if (s.durationSeconds === undefined) return 'not finished';
  const wall = fmt(s.durationSeconds);
  const sessions = s.sessions > 1 ? ` (${s.sessions} sessions)` : '';
  if (s.activeSeconds === undefined) return `active unknown · wall ${wall}${sessions}`;
  return `active ${fmt(s.activeSeconds)} · wall ${wall}${sessions}`;
}

/**
 * Cases per test status, disjoint with the summary's `cancelled`: `error` counts only the errors
 * that are not cancellations, so success + failed + timeout + error + cancelled = total. (A
 * cancelled case's own `status` stays `error`, the seeds' mapping; its `metadata.taskStatus` says
 * `cancelled`.)
 */
export type StatusCounts = Record<TestStatus, number>;

/**
 * Latency in seconds (a case's `executionTime`) over the cases that ran to a verdict: a cancelled
 * case (never judged) and a case that never started are left out, so a run of cancelled cases
 * does not show `p50 0 ms`. Percentiles are within 1 % of the truth. With `count` 0 the other
 * fields are 0 and mean nothing: show them as unknown.
 */
export interface LatencyStats {
  /** Cases the latency is over: those that ran to a verdict (not cancelled). */
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** One bar of the latency histogram: cases with `from <= seconds < to` (`to` null: no bound). */
export interface HistogramBucket {
  readonly from: number;
  readonly to: number | null;
  readonly count: number;
}

/** The counts of one dataset (a JUnit `<testsuite>`, a row of the HTML table). */
export interface DatasetSummary {
  readonly name: string;
  readonly total: number;
  readonly success: number;
  readonly failed: number;
  readonly timeout: number;
  /** Errors that are not cancellations (disjoint with `cancelled`). */
  readonly error: number;
  /** Cases that were cancelled, not judged (status `error`, not counted in `error`); JUnit's `skipped`. */
  readonly cancelled: number;
  readonly passRate: number;
  /** Sum of the cases' execution times. */
  readonly seconds: number;
  /** Cases with a score (judged against at least one assertion). */
  readonly scored: number;
  /** Mean of the scored cases' scores, 0..1; null when none was scored (unknown, not 0). */
  readonly meanScore: number | null;
}

/**
 * A summary's cost in words: `0.0123`, `unknown for 3 cases (partial sum of the other 7:
 * 0.0123)`, or `unknown (no price known for any of the 10 cases)`.
 *
 * @example
 * ```ts
 * console.log(`cost ${costText(summary, (c) => c.toFixed(4))}`);
 * ```
 */
export function costText(
  s: Pick<ReportSummary, 'cost' | 'costUnknown' | 'total'>,
  money: (cost: number) => string,
): string {
  if (s.costUnknown === 0) return money(s.cost);
  if (s.costUnknown >= s.total)
    return `unknown (no price known for any of the ${s.total} case${s.total === 1 ? '' : 's'})`;
  return `unknown for ${s.costUnknown} case${s.costUnknown === 1 ? '' : 's'} (partial sum of the other ${s.total - s.costUnknown}: ${money(s.cost)})`;
}

/** One of the slowest cases. */
export interface SlowCase {
  readonly id: string;
  readonly dataset: string;
  readonly seconds: number;
  readonly status: TestStatus;
}

/** Non-passing cases sharing an error code. */
export interface ErrorGroup {
  /** `metadata.errorCode`; `CANCELLED` for a cancelled case; `(none)` when there is no code. */
  readonly code: string;
  readonly count: number;
  /** The first message seen with this code (cut to 300 characters). */
  readonly example: string | undefined;
}

/** Everything the reports print above the per-case detail. */
export interface ReportSummary {
  readonly meta: ReportMeta;
  /**
   * Wall-clock seconds from the first start to the last finish; undefined if the run has not
   * finished. A resumed run's includes the time between its sessions: see `activeSeconds`.
   */
  readonly durationSeconds: number | undefined;
  /**
   * Seconds the run's sessions ran, summed (issue #18): equal to `durationSeconds` for a run of
   * one session; undefined when unknown (a resumed run whose sessions were not recorded) or the
   * run has not finished.
   */
  readonly activeSeconds: number | undefined;
  /** The run's sessions: 1 + its resumes. */
  readonly sessions: number;
  readonly total: number;
  /** Per status, cancelled cases apart: counts and `cancelled` add up to `total`. */
  readonly counts: StatusCounts;
  /** Cancelled cases (status `error` in each result, not counted in `counts.error`). */
  readonly cancelled: number;
  /** success / total; 0 when there are no results. */
  readonly passRate: number;
  /** Cases with a score (judged against at least one assertion). */
  readonly scored: number;
  /** Mean of the scored cases' scores, 0..1; null when none was scored. */
  readonly meanScore: number | null;
  /** By name. Past MAX_DATASETS names, the rest are counted under OTHER_DATASETS. */
  readonly datasets: readonly DatasetSummary[];
  readonly latency: LatencyStats;
  readonly histogram: readonly HistogramBucket[];
  readonly tokens: number;
  /**
   * The sum of the known costs. With `costUnknown` > 0 it is a partial sum, not the run's cost:
   * show it as such ("cost unknown for N cases"), never as the total.
   */
  readonly cost: number;
  /** Cases whose cost is unknown (usage reported without a price): left out of `cost`. */
  readonly costUnknown: number;
  /** Attempts over all cases. */
  readonly attempts: number;
  /** Cases that took more than one attempt. */
  readonly retried: number;
  /** The SLOWEST_CASES slowest cases, slowest first. */
  readonly slowest: readonly SlowCase[];
  /** By count, largest first. Past MAX_ERROR_CODES codes, the rest count under OTHER_CODES. */
  readonly errors: readonly ErrorGroup[];
}

/** How many slow cases a summary keeps. */
export const SLOWEST_CASES = 10;
/**
 * Distinct dataset names a summary tracks. A plan names a handful; the cap only matters when
 * every case carries its own `dataset`, where a map of a million names would undo the point.
 */
export const MAX_DATASETS = 1000;
/** The dataset name that collects cases past MAX_DATASETS. */
export const OTHER_DATASETS = '(other datasets)';
/** Distinct error codes a summary tracks (codes of foreign errors are open-ended). */
export const MAX_ERROR_CODES = 200;
/** The code that collects errors past MAX_ERROR_CODES. */
export const OTHER_CODES = '(other codes)';

/**
 * Upper bounds (seconds) of the histogram's bars: 1-2.5-5 steps from 1 ms to 1000 s, and one
 * open bar above. Fixed rather than fitted to the data, so two runs' histograms compare bar by bar.
 */
const EDGES = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500,
  1000,
];

interface MutableDataset {
  total: number;
  success: number;
  failed: number;
  timeout: number;
  error: number;
  cancelled: number;
  seconds: number;
  scored: number;
  scoreSum: number;
}

/**
 * Whether a case ran to a verdict: its latency means something. A cancelled case was cut off (or
 * never started); pending, queued and running cases have no verdict yet.
 */
function ranToVerdict(result: TestResult): boolean {
  const t = result.metadata.taskStatus;
  return t === 'succeeded' || t === 'failed' || t === 'timeout' || t === 'error';
}

function finite(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

function rate(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

/**
 * Computes a ReportSummary in one streaming pass: `add` every result, then `build`.
 *
 * Memory is bounded whatever the number of results: percentiles come from a log histogram
 * (LatencyHistogram, at most a few thousand counters), the slowest cases from a list of
 * SLOWEST_CASES, and datasets and error codes are capped (MAX_DATASETS, MAX_ERROR_CODES).
 *
 * @example
 * ```ts
 * const builder = new SummaryBuilder();
 * for await (const result of service.streamTestPlan(manifest)) builder.add(result);
 * const summary = builder.build({ runId, plan: manifest.workflowId, startedAt, finishedAt: Date.now() });
 * console.log(`${(summary.passRate * 100).toFixed(1)} % passed, p95 ${summary.latency.p95} s`);
 * ```
 */
export class SummaryBuilder {
  private total = 0;
  private readonly counts: StatusCounts = { success: 0, failed: 0, timeout: 0, error: 0 };
  private cancelled = 0;
  private scored = 0;
  private scoreSum = 0;
  private readonly datasets = new Map<string, MutableDataset>();
  private readonly errors = new Map<string, { count: number; example: string | undefined }>();
  // Microseconds: the histogram lumps everything below 1 unit together, and sub-millisecond
  // cases (a function target, a cache hit) deserve percentiles too.
  private readonly histogram = new LatencyHistogram();
  private readonly bars: number[] = new Array<number>(EDGES.length + 1).fill(0);
  private min = Number.POSITIVE_INFINITY;
  private tokens = 0;
  private cost = 0;
  private costUnknown = 0;
  private attempts = 0;
  private retried = 0;
  /** Slowest first; at most SLOWEST_CASES. */
  private readonly slowest: SlowCase[] = [];

  /** Counts one result. */
  add(result: TestResult): void {
    const seconds = Math.max(0, finite(result.executionTime));
    const status = result.status;
    const cancelled = isCancelled(result);
    this.total++;
    if (cancelled) this.cancelled++;
    else this.counts[status]++;

    const dataset = this.datasetFor(datasetOf(result));
    dataset.total++;
    if (cancelled) dataset.cancelled++;
    else dataset[status]++;
    dataset.seconds += seconds;
    if (typeof result.score === 'number' && Number.isFinite(result.score)) {
      this.scored++;
      this.scoreSum += result.score;
      dataset.scored++;
      dataset.scoreSum += result.score;
    }

    if (ranToVerdict(result)) {
      this.histogram.record(seconds * 1e6);
      if (seconds < this.min) this.min = seconds;
      let bar = 0;
      while (bar < EDGES.length && seconds >= EDGES[bar]!) bar++;
      this.bars[bar]!++;
      this.keepIfSlow(result, seconds);
    }

    this.tokens += finite(result.tokensUsed);
    if (result.cost === undefined) this.costUnknown++;
    else this.cost += finite(result.cost);
    const attempts = finite(result.metadata.attemptCount);
    this.attempts += attempts;
    if (attempts > 1) this.retried++;

    if (status !== 'success') this.countError(result, cancelled);
  }

  /** The summary of everything added so far (the builder can keep adding afterwards). */
  build(meta: ReportMeta): ReportSummary {
    const lat = this.histogram.summary();
    const datasets = [...this.datasets.entries()]
      .map(([name, { scoreSum, ...d }]) => ({
        name,
        ...d,
        passRate: rate(d.success, d.total),
        meanScore: d.scored === 0 ? null : scoreSum / d.scored,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const errors = [...this.errors.entries()]
      .map(([code, e]) => ({ code, count: e.count, example: e.example }))
      .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : 1));
    return {
      meta,
      durationSeconds: wallSeconds(meta),
      activeSeconds: activeSeconds(meta),
      sessions: 1 + (meta.resumes ?? 0),
      total: this.total,
      counts: { ...this.counts },
      cancelled: this.cancelled,
      passRate: rate(this.counts.success, this.total),
      scored: this.scored,
      meanScore: this.scored === 0 ? null : this.scoreSum / this.scored,
      datasets,
      latency: {
        count: lat.count,
        min: lat.count === 0 ? 0 : this.min,
        mean: lat.mean / 1e6,
        p50: lat.p50 / 1e6,
        p90: lat.p90 / 1e6,
        p95: lat.p95 / 1e6,
        p99: lat.p99 / 1e6,
        max: lat.max / 1e6,
      },
      histogram: this.bars.map((count, i) => ({
        from: i === 0 ? 0 : EDGES[i - 1]!,
        to: EDGES[i] ?? null,
        count,
      })),
      tokens: this.tokens,
      cost: this.cost,
      costUnknown: this.costUnknown,
      attempts: this.attempts,
      retried: this.retried,
      slowest: [...this.slowest],
      errors,
    };
  }

  private datasetFor(name: string): MutableDataset {
    let d = this.datasets.get(name);
    if (d === undefined) {
      const key = this.datasets.size < MAX_DATASETS ? name : OTHER_DATASETS;
      d = this.datasets.get(key);
      if (d === undefined) {
        d = {
          total: 0,
          success: 0,
          failed: 0,
          timeout: 0,
          error: 0,
          cancelled: 0,
          seconds: 0,
          scored: 0,
          scoreSum: 0,
        };
        this.datasets.set(key, d);
      }
    }
    return d;
  }

  private keepIfSlow(result: TestResult, seconds: number): void {
    const list = this.slowest;
    if (list.length === SLOWEST_CASES && seconds <= list[list.length - 1]!.seconds) return;
    // Ten entries: an insertion into a sorted array beats a heap on every count that matters.
    let at = list.length;
    while (at > 0 && list[at - 1]!.seconds < seconds) at--;
    list.splice(at, 0, {
      id: caseName(result),
      dataset: datasetOf(result),
      seconds,
      status: result.status,
    });
    if (list.length > SLOWEST_CASES) list.pop();
  }

  private countError(result: TestResult, cancelled: boolean): void {
    const code = result.metadata.errorCode ?? (cancelled ? 'CANCELLED' : '(none)');
    let group = this.errors.get(code);
    if (group === undefined) {
      const key = this.errors.size < MAX_ERROR_CODES ? code : OTHER_CODES;
      group = this.errors.get(key);
      if (group === undefined) {
        const message = result.errorMessage;
        group = {
          count: 0,
          example:
            message === undefined || message.length <= 300
              ? message
              : `${message.slice(0, 297)}...`,
        };
        this.errors.set(key, group);
      }
    }
    group.count++;
  }
}

/**
 * Maps a result to the dataset name it is counted under in `summary`: its own, or
 * OTHER_DATASETS when the summary ran out of names. Writers use it so their grouping matches
 * the summary's counts.
 *
 * @example
 * ```ts
 * const datasetOf = datasetResolver(summary);
 * for (const r of results) if (datasetOf(r) === 'refunds') console.log(r.executionId);
 * ```
 */
export function datasetResolver(summary: ReportSummary): (result: TestResult) => string {
  const known = new Set(summary.datasets.map((d) => d.name));
  return (result) => {
    const name = datasetOf(result);
    return known.has(name) ? name : OTHER_DATASETS;
  };
}

/**
 * Reads `source` once and summarises it.
 *
 * @example
 * ```ts
 * const summary = await summarize(() => results, { runId: 'r1', plan: 'support-bot', startedAt, finishedAt });
 * ```
 */
export async function summarize(source: ResultSource, meta: ReportMeta): Promise<ReportSummary> {
  const builder = new SummaryBuilder();
  for await (const result of source()) builder.add(result);
  return builder.build(meta);
}
