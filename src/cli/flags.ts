/**
 * Flag value parsers for commander. Each throws commander's InvalidArgumentError, which commander
 * turns into `error: option '--concurrency <n>' argument 'abc' is invalid. <why>`: the flag, the
 * bad value and what was expected, then exit code 2 (see app.ts).
 */

import { InvalidArgumentError, Option } from 'commander';
import { describeValue } from '../core/errors.js';
import { tryParseDuration } from '../plans/duration.js';
import { RUN_ID_EXPECTED, RUN_ID_MAX_LENGTH, runIdProblem } from '../store/run-id.js';

/** An integer >= `min`. */
export function intArg(min: number): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}`);
    }
    return n;
  };
}

/** A rate: `600` or `600/min` per minute, `10/s` per second, `36000/h` per hour. Returns per minute. */
export function rateArg(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|m|min|h|hour))?\s*$/.exec(raw);
  const unit = m?.[2] ?? 'min';
  const value = m === null ? Number.NaN : Number(m[1]);
  const perMinute =
    unit === 's' || unit === 'sec'
      ? value * 60
      : unit === 'h' || unit === 'hour'
        ? value / 60
        : value;
  if (!Number.isFinite(perMinute) || perMinute <= 0) {
    throw new InvalidArgumentError('expected a rate such as 600 (per minute), 600/min or 10/s');
  }
  return perMinute;
}

/** A duration: `30s`, `1500ms`, `2m`, or a number of seconds. Returns milliseconds (> 0). */
export function durationArg(raw: string): number {
  const ms = tryParseDuration(/^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : raw);
  if (ms === undefined || ms <= 0) {
    throw new InvalidArgumentError('expected a duration such as 30s, 1500ms, 2m or 45 (seconds)');
  }
  return ms;
}

/** A share: `0.95`, `95%`. Returns a number in [0, 1]. */
export function shareArg(raw: string): number {
  const s = raw.trim();
  const n = s.endsWith('%') ? Number(s.slice(0, -1)) / 100 : Number(s);
  if (s === '' || s === '%' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError('expected a share between 0 and 1, or a percentage such as 95%');
  }
  return n;
}

/**
 * `--max-failures`: a count (`10`), or a share of the settled cases (`0.2`, `20%`), as the plan's
 * `stop_conditions.max_failures`.
 */
export function maxFailuresArg(raw: string): number {
  const s = raw.trim();
  // Both forms named in every refusal: a count alone misled users who meant a share (issue #18
  // item 16: `-1` said "expected an integer >= 1").
  const expected = 'expected a count >= 1 (10) or a share between 0 and 1 (0.2, 20%)';
  if (s.endsWith('%') || s.includes('.')) {
    let share: number;
    try {
      share = shareArg(s);
    } catch {
      throw new InvalidArgumentError(expected);
    }
    if (share === 0 || share >= 1) throw new InvalidArgumentError(expected);
    return share;
  }
  const n = Number(s);
  if (s === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(expected);
  return n;
}

/** `--range FROM-TO`, `FROM-` or `N` (1-based, inclusive). */
export function rangeArg(raw: string): { from: number; to?: number } {
  const m = /^\s*(\d+)\s*(?:(-)\s*(\d+)?)?\s*$/.exec(raw);
  const from = m === null ? 0 : Number(m[1]);
  const to = m?.[3] === undefined ? (m?.[2] === undefined ? from : undefined) : Number(m[3]);
  if (m === null || from < 1 || (to !== undefined && to < from)) {
    throw new InvalidArgumentError('expected FROM-TO, FROM- or N, 1-based (e.g. 1-100)');
  }
  return to === undefined ? { from } : { from, to };
}

/** A repeatable, comma-separable list flag (`--tag a --tag b,c`). */
export function listArg(raw: string, previous: string[] | undefined): string[] {
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError('expected a non-empty value');
  return [...(previous ?? []), ...items];
}

/**
 * What is wrong with `--run-id`'s value, as a whole message, or `undefined`. Not a commander
 * parser: commander would echo the raw value (5,000 characters, control characters) in its
 * message; this shows it quoted, escaped and shortened.
 */
export function runIdFlagProblem(raw: string): string | undefined {
  const problem = runIdProblem(raw);
  return problem === undefined
    ? undefined
    : `--run-id ${describeValue(raw)}: the id ${problem}; expected ${RUN_ID_EXPECTED}, at most ${RUN_ID_MAX_LENGTH} characters`;
}

/** When `--fail-on-regression` fails the command. */
export type RegressionGate =
  | { readonly when: 'any' }
  | { readonly when: 'significant'; readonly alpha: number };

/**
 * `--fail-on-regression[=any|significant|P]`: without a value, any regression fails; with
 * `significant`, only one the paired test finds at p < 0.05; with a number, at p < that number.
 */
export function regressionGateArg(raw: string | boolean): RegressionGate {
  if (raw === true || raw === 'any') return { when: 'any' };
  const s = String(raw).trim();
  if (s === 'significant') return { when: 'significant', alpha: 0.05 };
  const n = Number(s);
  if (s !== '' && Number.isFinite(n) && n > 0 && n < 1) return { when: 'significant', alpha: n };
  throw new InvalidArgumentError(
    'expected any, significant, or a p-value threshold between 0 and 1 such as 0.01',
  );
}

/** The `--fail-on-regression` option (the value is optional: write `--fail-on-regression=0.01`). */
export function regressionGateOption(): Option {
  return new Option(
    '--fail-on-regression [when]',
    'exit 1 on a regression: any (default), significant (p < 0.05) or a p threshold (=0.01)',
  )
    .preset('any')
    .argParser(regressionGateArg);
}

/** What `stride compare` prints or writes. */
export type CompareFormat = 'text' | 'md' | 'html' | 'json';

/** `stride compare --format`: text, md (or markdown), html or json. */
export function compareFormatArg(raw: string): CompareFormat {
  const f = raw.trim().toLowerCase();
  if (f === 'markdown') return 'md';
  if (f === 'text' || f === 'md' || f === 'html' || f === 'json') return f;
  throw new InvalidArgumentError('expected text, md, html or json');
}
