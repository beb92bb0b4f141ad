/**
 * Durations in plan files: a number is seconds (the seeds' `*_seconds` keys), a string has units:
 * `"500ms"`, `"90s"`, `"2m"`, `"1h"`, `"1.5s"`, or a sum such as `"1m30s"`. A bare numeric string
 * (`"30"`, as `${VAR}` gives) is seconds too. Results are whole milliseconds.
 */

import { InvalidOptionError } from '../core/errors.js';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)/y;
const NUMBER = /^(\d+(?:\.\d*)?|\.\d+)$/;

/** What a duration looks like, for error messages. */
export const DURATION_HINT = '(seconds, or a string such as "500ms", "90s", "2m", "1h")';
export const DURATION_EXPECTED = `a duration ${DURATION_HINT}`;

/** Parses a duration to whole milliseconds, or returns undefined if it is not one. */
export function tryParseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (NUMBER.test(text)) return Math.round(Number(text) * 1000);
  if (text === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const match = PART.exec(text);
    if (match === null) return undefined;
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/**
 * Parses a duration to milliseconds.
 *
 * @example
 * ```ts
 * parseDuration(2);       // 2000 (a number is seconds)
 * parseDuration('500ms'); // 500
 * parseDuration('1m30s'); // 90000
 * ```
 * @throws InvalidOptionError (code `INVALID_OPTION`) for anything else, negative values included.
 */
export function parseDuration(value: unknown, field = 'duration'): number {
  const ms = tryParseDuration(value);
  if (ms === undefined) throw new InvalidOptionError(field, value, DURATION_EXPECTED);
  return ms;
}

/** The shortest exact string for whole milliseconds: `90000` -> `"90s"`, `1500` -> `"1500ms"`. */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
