/**
 * A small line diff (longest common subsequence) for the HTML report's expected/actual view.
 * A dependency would do more; an LLM's answer against an expected value needs only this.
 */

import { safeJson } from './text.js';

/** One line of a diff: kept (` `), only in the expected (`-`), only in the actual (`+`). */
export interface DiffLine {
  readonly op: ' ' | '-' | '+';
  readonly text: string;
}

/**
 * Past this many cells (lines × lines) the LCS table is not built: expected and actual are
 * shown whole, as `-` then `+`. Bounds a diff's time and memory (1 MB of table) whatever the
 * values.
 */
const MAX_CELLS = 250_000;

/** The text a value is diffed as: a string is itself, anything else its indented JSON. */
export function diffText(value: unknown): string {
  return typeof value === 'string' ? value : safeJson(value, 2);
}

/**
 * Diffs two texts line by line: `-` lines are the expected's, `+` lines the actual's.
 * The common head and tail are matched first, then an LCS on what is left between them.
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
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) {
    tail++;
  }
  const out: DiffLine[] = a.slice(0, head).map((text) => ({ op: ' ', text }));
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  out.push(...middle(midA, midB));
  out.push(...a.slice(a.length - tail).map((text): DiffLine => ({ op: ' ', text })));
  return out;
}

function middle(a: readonly string[], b: readonly string[]): DiffLine[] {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0 || (n + 1) * (m + 1) > MAX_CELLS) {
    return [
      ...a.map((text): DiffLine => ({ op: '-', text })),
      ...b.map((text): DiffLine => ({ op: '+', text })),
    ];
  }
  // lcs[i * (m + 1) + j]: length of the LCS of a[i..] and b[j..], so the walk goes forwards.
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] =
        a[i] === b[j]
          ? lcs[(i + 1) * w + j + 1]! + 1
          : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i++]! });
      j++;
    } else if (lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!) {
      out.push({ op: '-', text: a[i++]! });
    } else {
      out.push({ op: '+', text: b[j++]! });
    }
  }
  while (i < n) out.push({ op: '-', text: a[i++]! });
  while (j < m) out.push({ op: '+', text: b[j++]! });
  return out;
}
