/**
 * The statistics of a comparison: a pass rate's confidence interval (Wilson score), the paired
 * test of two runs over the same cases (McNemar's exact test), and the per-case verdict when a
 * case ran several times. Pure functions, no I/O.
 *
 * The binomial distribution comes from simple-statistics (maintained, no dependencies); the
 * rest is a few lines of arithmetic, tested against published values (test/compare/stats.test.ts).
 */

import { binomialDistribution, errorFunction } from 'simple-statistics';

/** The normal quantile for a two-sided 95 % interval (1.959963984540054, to double precision). */
export const Z95 = 1.959963984540054;

/** A confidence interval; both bounds are shares in [0, 1]. */
export interface Interval {
  readonly low: number;
  readonly high: number;
}

/**
 * The Wilson score interval of a pass rate: `passed` of `total`, 95 % by default. Chosen over
 * the textbook normal interval because it stays inside [0, 1] and keeps its coverage for small
 * runs and pass rates near 0 or 1 (a regression suite mostly passes). Undefined when `total` is
 * 0: there is no rate to bound.
 *
 * @example
 * ```ts
 * wilson(81, 263); // { low: 0.2553..., high: 0.3662... }
 * ```
 */
export function wilson(passed: number, total: number, z = Z95): Interval | undefined {
  if (total <= 0) return undefined;
  const p = passed / total;
  const z2 = z * z;
  const denominator = 1 + z2 / total;
  const center = (p + z2 / (2 * total)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / total + z2 / (4 * total * total));
  return { low: Math.max(0, center - half), high: Math.min(1, center + half) };
}

/** The result of McNemar's test on the discordant pairs. */
export interface PairedTest {
  readonly test: 'mcnemar-exact' | 'mcnemar-normal';
  /** Cases that passed in the base and not in the head. */
  readonly regressed: number;
  /** Cases that did not pass in the base and passed in the head. */
  readonly fixed: number;
  /** Two-sided p-value: the chance of a split at least this uneven if neither run is better. */
  readonly p_value: number;
}

/**
 * McNemar's exact test: under "neither run is better", each discordant case (passed in one run
 * only) is a fair coin, so the regressed count is Binomial(regressed + fixed, 1/2); the p-value
 * is twice the smaller tail, capped at 1. Concordant cases carry no information about the
 * difference and do not enter.
 *
 * Past a million discordant cases the exact table is not built and the normal approximation
 * with continuity correction is used (`test: 'mcnemar-normal'`); at that size the two agree to
 * many digits.
 *
 * @example
 * ```ts
 * mcnemar(1, 5).p_value; // 0.21875 = 2 * (1 + 6) / 2^6
 * ```
 */
export function mcnemar(regressed: number, fixed: number): PairedTest {
  const n = regressed + fixed;
  if (n === 0) return { test: 'mcnemar-exact', regressed, fixed, p_value: 1 };
  const k = Math.min(regressed, fixed);
  const cells = binomialDistribution(n, 0.5);
  if (cells !== undefined && cells.length > k) {
    let tail = 0;
    for (let i = 0; i <= k; i++) tail += cells[i]!;
    return { test: 'mcnemar-exact', regressed, fixed, p_value: Math.min(1, 2 * tail) };
  }
  const z = Math.max(0, Math.abs(regressed - fixed) - 1) / Math.sqrt(n);
  // 1 - erf(z / sqrt 2) is the two-sided normal tail; simple-statistics' erf is the Numerical
  // Recipes erfc form, accurate to 1.2e-7 relative even far in the tail.
  return {
    test: 'mcnemar-normal',
    regressed,
    fixed,
    p_value: Math.min(1, 1 - errorFunction(z / Math.SQRT2)),
  };
}

/**
 * A case's verdict across two runs, from its passes and judged samples in each (a case runs
 * several times with `select.repeat`, or when a side of the comparison is several runs):
 *
 * - `flaky`: its outcome varies within the base or within the head (some samples passed, some
 *   did not). A flip of such a case is noise by definition, so it is never a regression or fix;
 * - `regressed`: every base sample passed, no head sample did;
 * - `fixed`: no base sample passed, every head sample did;
 * - `stable`: the same outcome everywhere (passing, or failing in both).
 *
 * @example
 * ```ts
 * caseVerdict(3, 3, 0, 3); // 'regressed'
 * caseVerdict(3, 3, 2, 3); // 'flaky'
 * ```
 */
export function caseVerdict(
  basePassed: number,
  baseTotal: number,
  headPassed: number,
  headTotal: number,
): 'regressed' | 'fixed' | 'flaky' | 'stable' {
  const baseVaries = basePassed > 0 && basePassed < baseTotal;
  const headVaries = headPassed > 0 && headPassed < headTotal;
  if (baseVaries || headVaries) return 'flaky';
  const basePass = basePassed === baseTotal;
  const headPass = headPassed === headTotal;
  if (basePass && !headPass) return 'regressed';
  if (!basePass && headPass) return 'fixed';
  return 'stable';
}
