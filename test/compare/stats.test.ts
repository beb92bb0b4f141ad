/**
 * The comparison's statistics against published and hand-computed values: Wilson intervals
 * (Newcombe 1998, Stat Med 17:857, Table I, method 3), McNemar's exact test (small tables by
 * hand; Fagerland, Lydersen & Laake 2013, BMC Med Res Methodol 13:91, the AHR example), and the
 * per-case verdicts with repeats.
 */

import { describe, expect, it } from 'vitest';
import { caseVerdict, mcnemar, wilson, Z95 } from '../../src/compare/stats.js';

describe('wilson', () => {
  it("matches Newcombe's published 95 % Wilson intervals to 4 decimals", () => {
    const published: [number, number, number, number][] = [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
      [1, 29, 0.0061, 0.1718],
    ];
    for (const [passed, total, low, high] of published) {
      const ci = wilson(passed, total)!;
      expect(ci.low, `${passed}/${total}`).toBeCloseTo(low, 4);
      expect(ci.high, `${passed}/${total}`).toBeCloseTo(high, 4);
    }
  });

  it('stays inside [0, 1], is symmetric, and is unknown without results', () => {
    expect(wilson(20, 20)!.high).toBe(1);
    expect(wilson(0, 20)!.low).toBe(0);
    const a = wilson(3, 10)!;
    const b = wilson(7, 10)!;
    expect(a.low).toBeCloseTo(1 - b.high, 12);
    expect(wilson(0, 0)).toBeUndefined();
    expect(Z95).toBeCloseTo(1.96, 2);
  });
});

describe('mcnemar', () => {
  it('gives the exact two-sided p-value of small tables, computed by hand', () => {
    // n discordant cases, each a fair coin: p = 2 * P(X <= min) with X ~ Binomial(n, 1/2).
    expect(mcnemar(0, 6).p_value).toBeCloseTo(2 / 64, 15); // 2 * 1/64
    expect(mcnemar(6, 0).p_value).toBeCloseTo(2 / 64, 15);
    expect(mcnemar(1, 5).p_value).toBeCloseTo((2 * 7) / 64, 15); // 2 * (1 + 6)/64
    expect(mcnemar(2, 10).p_value).toBeCloseTo((2 * (1 + 12 + 66)) / 4096, 15);
    expect(mcnemar(3, 3).p_value).toBe(1); // capped: the middle term is in both tails
    expect(mcnemar(0, 1).p_value).toBe(1);
    expect(mcnemar(0, 0)).toEqual({ test: 'mcnemar-exact', regressed: 0, fixed: 0, p_value: 1 });
  });

  it("matches Fagerland et al.'s exact conditional p-value for the AHR example (1 vs 7)", () => {
    // Published: exact conditional McNemar p = 0.070 (2 * 9/256 = 0.0703125).
    expect(mcnemar(1, 7).p_value).toBeCloseTo(0.0703125, 12);
    expect(mcnemar(1, 7).p_value.toFixed(3)).toBe('0.070');
  });

  it('stays accurate for large tables (symmetric, monotone, agrees with the normal approximation)', () => {
    const p = mcnemar(4000, 4200).p_value;
    expect(p).toBeCloseTo(mcnemar(4200, 4000).p_value, 12);
    expect(p).toBeGreaterThan(0.02);
    expect(p).toBeLessThan(0.04);
    expect(mcnemar(4000, 4300).p_value).toBeLessThan(p);
    // normal approximation with continuity correction: z = (200 - 1) / sqrt(8200) = 2.1976
    // two-sided tail 0.02798
    expect(p).toBeCloseTo(0.02798, 3);
  });
});

describe('caseVerdict', () => {
  it('calls a case flaky when it varies within a run, whatever the other run did', () => {
    expect(caseVerdict(1, 1, 0, 1)).toBe('regressed');
    expect(caseVerdict(0, 1, 1, 1)).toBe('fixed');
    expect(caseVerdict(3, 3, 0, 3)).toBe('regressed');
    expect(caseVerdict(0, 3, 3, 3)).toBe('fixed');
    expect(caseVerdict(3, 3, 2, 3)).toBe('flaky'); // one flip in the head: not a regression
    expect(caseVerdict(2, 3, 0, 3)).toBe('flaky'); // varied in the base
    expect(caseVerdict(1, 2, 1, 2)).toBe('flaky');
    expect(caseVerdict(3, 3, 3, 3)).toBe('stable');
    expect(caseVerdict(0, 3, 0, 2)).toBe('stable');
  });
});
