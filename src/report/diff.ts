/**
 * Line diffs for the reports (expected/actual in the HTML report, base/head outputs in a
 * comparison) and a word similarity score, on the `diff` package (Myers' O(ND) algorithm).
 * It replaced a hand-written LCS table: same output on the report's cases, and a diff of two
 * long, nearly equal outputs costs time in the size of the change rather than of the texts
 * (measured in docs/compare.md).
 */

import { createRequire } from 'node:module';
import { safeJson } from './text.js';

// `diff` (19 modules) is loaded by the first diff, not by every report writer's import: a run
// whose cases all pass never draws one (issue #15, start-up). Its CommonJS build, so the diff
// stays synchronous.
const require = createRequire(import.meta.url);
const diffLib = (): typeof import('diff') => require('diff') as typeof import('diff');

/** One line of a diff: kept (` `), only in the expected (`-`), only in the actual (`+`). */
export interface DiffLine {
  readonly op: ' ' | '-' | '+';
  readonly text: string;
}

/**
 * Past this many inserted plus deleted lines (or words, for `similarity`) the diff gives up:
 * the two sides are shown whole, as `-` then `+`. Bounds a diff's time whatever the values
 * (Myers' cost grows with the edit distance times the length): two 400-line texts with nothing
 * in common take 5.6 ms at 200, as the replaced LCS did, against 32 ms at 1,000.
 */
const MAX_EDIT = 200;

/** The text a value is diffed as: a string is itself, anything else its indented JSON. */
export function diffText(value: unknown): string {
  return typeof value === 'string' ? value : safeJson(value, 2);
}

/**
 * Diffs two texts line by line: `-` lines are the expected's (the old side), `+` lines the
 * actual's (the new side). Every line of both sides is in the result, in order. Past MAX_EDIT
 * changed lines, the sides are shown whole.
 *
 * @example
 * ```ts
 * lineDiff('a\nb\nc', 'a\nB\nc');
 * // [{ op: ' ', text: 'a' }, { op: '-', text: 'b' }, { op: '+', text: 'B' }, { op: ' ', text: 'c' }]
 * ```
 */
export function lineDiff(expected: string, actual: string): DiffLine[] {
  const a = expected.split(/\r?\n/);
  const b = actual.split(/\r?\n/);
  const changes = diffLib().diffArrays(a, b, { maxEditLength: MAX_EDIT });
  if (changes === undefined) {
    return [
      ...a.map((text): DiffLine => ({ op: '-', text })),
      ...b.map((text): DiffLine => ({ op: '+', text })),
    ];
  }
  const out: DiffLine[] = [];
  for (const c of changes) {
    const op = c.added ? '+' : c.removed ? '-' : ' ';
    for (const text of c.value) out.push({ op, text });
  }
  return out;
}

/** Words (runs of non-space), the unit of `similarity`. */
function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

/**
 * How alike two texts are, from 0 (nothing in common) to 1 (the same words in the same order):
 * twice the words the two share in order (the word diff's common part) over the words of both.
 * Whitespace is ignored. Past MAX_EDIT changed words, the shared words are counted without
 * their order (a bag of words), which can only be higher.
 *
 * @example
 * ```ts
 * similarity('the refund is on its way', 'the refund is on the way'); // 0.833...
 * ```
 */
export function similarity(a: string, b: string): number {
  const wa = words(a);
  const wb = words(b);
  if (wa.length + wb.length === 0) return 1;
  const changes = diffLib().diffArrays(wa, wb, { maxEditLength: MAX_EDIT });
  let common = 0;
  if (changes === undefined) {
    const bag = new Map<string, number>();
    for (const w of wa) bag.set(w, (bag.get(w) ?? 0) + 1);
    for (const w of wb) {
      const n = bag.get(w) ?? 0;
      if (n > 0) {
        common++;
        bag.set(w, n - 1);
      }
    }
  } else {
    for (const c of changes) if (!c.added && !c.removed) common += c.count;
  }
  return (2 * common) / (wa.length + wb.length);
}
