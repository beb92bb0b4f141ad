/**
 * What a comparison of two runs returns: `compareRuns`' result, `stride compare --json`'s
 * document. Keys are snake_case and stable: scripts and CI read them.
 */

import type { AssertionOutcome } from '../plans/index.js';
import type { TestStatus } from '../report/convert.js';
import type { Interval, PairedTest } from './stats.js';

/** A sample's status: the report's four, and `cancelled` (not judged: left out of verdicts). */
export type SampleStatus = TestStatus | 'cancelled';

/** A case's verdict across the two sides (see `caseVerdict`). */
export type CaseVerdict = 'regressed' | 'fixed' | 'flaky' | 'stable';

/** One run on one side. */
export interface RunInfo {
  readonly id: string;
  readonly plan: string;
  /** The stored status: a run that is not `completed` is compared as far as it got. */
  readonly status: string;
  /** ISO 8601. */
  readonly started_at: string;
  readonly finished_at: string | null;
}

/** A pass rate with its 95 % Wilson interval; null when there is nothing to rate. */
export interface Rate {
  /** Results: one per case and repeat (per run, when a side has several), cancelled included. */
  readonly total: number;
  readonly passed: number;
  readonly pass_rate: number | null;
  readonly ci95: Interval | null;
}

/** One side's figures. */
export interface SideSummary extends Rate {
  readonly runs: readonly RunInfo[];
  /** Cancelled results: counted in `total` (as the run's report does), never judged. */
  readonly cancelled: number;
  /** Per-case time in seconds (first attempt to verdict), as the run's report computes it. */
  readonly latency: { readonly p50: number | null; readonly p90: number | null };
  /**
   * Tokens and cost per run (the mean when the side has several runs). `cost` is over the known
   * costs only: with `cost_unknown` > 0 it is a partial sum, and the delta is null.
   */
  readonly tokens: number;
  readonly cost: number;
  /** Results whose cost is unknown (no price known), left out of `cost`. */
  readonly cost_unknown: number;
  /** Results with a score (judged against assertions; cancelled ones left out). */
  readonly scored: number;
  /** The mean of their scores, 0..1; null when none had one. */
  readonly mean_score: number | null;
}

/** One dataset's pass rates. */
export interface DatasetComparison {
  readonly name: string;
  readonly base: Rate;
  readonly head: Rate;
  /** Head minus base pass rate; null when either is unknown. */
  readonly delta_pass_rate: number | null;
  /** Mean scores of the side's scored results; null when none had one. */
  readonly base_mean_score: number | null;
  readonly head_mean_score: number | null;
  /** Head minus base mean score; null when either is unknown. */
  readonly delta_mean_score: number | null;
}

/** The whole comparison's figures. */
export interface CompareSummary {
  readonly base: SideSummary;
  readonly head: SideSummary;
  /** Head minus base; null when either side's figure is unknown. */
  readonly delta: {
    readonly pass_rate: number | null;
    readonly p50: number | null;
    readonly p90: number | null;
    readonly tokens: number;
    /** Null when either side has a result of unknown cost. */
    readonly cost: number | null;
    readonly mean_score: number | null;
  };
  readonly datasets: readonly DatasetComparison[];
  /** Cases (by dataset and id) found in both sides. */
  readonly matched: number;
  /** How many cases each list has (the lists' details may be cut, their ids never are). */
  readonly counts: {
    readonly regressions: number;
    readonly fixes: number;
    readonly added: number;
    readonly removed: number;
    readonly still_failing: number;
    readonly changed: number;
    readonly flaky: number;
    readonly unchanged: number;
    readonly unjudged: number;
  };
  /** McNemar's test over the matched cases with a stable verdict on both sides. */
  readonly test: PairedTest;
  /** The test's p-value (also in `test`), top level for scripts. */
  readonly p_value: number;
  /** The level `significant` is judged at. */
  readonly alpha: number;
  /** More regressions than fixes, and p < alpha: a regression that is not noise. */
  readonly significant: boolean;
  /** Some case had several samples on a side (repeats, or several runs per side). */
  readonly repeated: boolean;
  /** Full details (inputs, outputs, diff) are given for the first `limit` cases of each list. */
  readonly details: { readonly limit: number; readonly left_out: number };
  /** Things a reader must know: a run not finished, cases with no verdict. */
  readonly warnings: readonly string[];
}

/** One side of a listed case. */
export interface CaseSide {
  /** The status of the sample shown (a failing one for a regression's head, ...). */
  readonly status: SampleStatus;
  /** Judged samples (cancelled ones left out) and how many passed. */
  readonly samples: number;
  readonly passed: number;
  readonly pass_rate: number | null;
  /** Mean score of the judged samples; null when none had one. */
  readonly score: number | null;
  /** With details: the sample's output (the answer text when the target gives one). */
  readonly output?: unknown;
  readonly error?: string | null;
  readonly error_code?: string | null;
  readonly failed_assertions?: readonly AssertionOutcome[];
}

/** One case in one of the lists. */
export interface CaseChange {
  readonly id: string;
  readonly dataset: string;
  readonly verdict: CaseVerdict | null;
  /** Null for an added case. */
  readonly base: CaseSide | null;
  /** Null for a removed case. */
  readonly head: CaseSide | null;
  /** Head minus base score; null when either side has none. */
  readonly delta_score: number | null;
  /** Whether this entry has its details (inputs, outputs, diff). */
  readonly detailed: boolean;
  readonly inputs?: unknown;
  /** The assertion that broke (a regression's head) or was mended (a fix's base). */
  readonly assertion?: AssertionOutcome | null;
  /** Base output to head output, line by line: `- ` base, `+ ` head, `  ` both. */
  readonly diff?: string;
  /** 0..1, word similarity of the two outputs (see `similarity`). */
  readonly similarity?: number;
}

/** What `compareRuns` resolves with, and `stride compare --json` prints. */
export interface Comparison {
  /** Passed in the base, not in the head (failed, error or timeout), verdict `regressed`. */
  readonly regressions: readonly CaseChange[];
  /** Not passed in the base, passed in the head. */
  readonly fixes: readonly CaseChange[];
  /** Cases only in the head. */
  readonly added: readonly CaseChange[];
  /** Cases only in the base. */
  readonly removed: readonly CaseChange[];
  /** Not passed on either side. */
  readonly still_failing: readonly CaseChange[];
  /** Passed on both sides, with a different output. */
  readonly changed: readonly CaseChange[];
  /** Cases whose outcome varies within a side: never called a regression or a fix. */
  readonly flaky: readonly CaseChange[];
  /** Cases in both runs without a verdict on one side (only cancelled samples). */
  readonly unjudged: readonly CaseChange[];
  readonly summary: CompareSummary;
}
