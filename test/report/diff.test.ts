/**
 * The line diff on the `diff` package and the word similarity: long texts with a few changes
 * get a precise diff (the replaced LCS table gave up past 250,000 cells and showed both sides
 * whole), completely different texts stay bounded, and similarity scores what words are shared.
 */

import { describe, expect, it } from 'vitest';
import { lineDiff, similarity } from '../../src/report/diff.js';

describe('lineDiff on long texts', () => {
  it('shows only the changed lines of two 2,000-line texts that differ in 10', () => {
    const a = Array.from({ length: 2000 }, (_, i) => `line ${i}`);
    const b = [...a];
    for (let i = 0; i < 10; i++) b[i * 190 + 7] = `changed ${i}`;
    const d = lineDiff(a.join('\n'), b.join('\n'));
    expect(d.filter((l) => l.op === '-').map((l) => l.text)).toEqual(
      Array.from({ length: 10 }, (_, i) => `line ${i * 190 + 7}`),
    );
    expect(d.filter((l) => l.op === '+')).toHaveLength(10);
    expect(d.filter((l) => l.op !== '+').map((l) => l.text)).toEqual(a);
    expect(d.filter((l) => l.op !== '-').map((l) => l.text)).toEqual(b);
  });

  it('treats CRLF and LF alike', () => {
    expect(lineDiff('a\r\nb', 'a\nb')).toEqual([
      { op: ' ', text: 'a' },
      { op: ' ', text: 'b' },
    ]);
  });
});

describe('similarity', () => {
  it('is twice the words shared in order over all words', () => {
    expect(similarity('the refund is on its way', 'the refund is on the way')).toBeCloseTo(
      10 / 12,
      12,
    );
    expect(similarity('a b c', 'a b c')).toBe(1);
    expect(similarity('a  b\nc', 'a b c')).toBe(1); // whitespace ignored
    expect(similarity('a b', 'c d')).toBe(0);
    expect(similarity('', '')).toBe(1);
    expect(similarity('word', '')).toBe(0);
  });

  it('counts shared words without order past the edit bound (an upper bound)', () => {
    const a = Array.from({ length: 600 }, (_, i) => `w${i}`);
    const b = [...a].reverse();
    // 600 reversed words: in order they share 1, as a bag all 600.
    expect(similarity(a.join(' '), b.join(' '))).toBe(1);
    const c = Array.from({ length: 600 }, (_, i) => `x${i}`);
    expect(similarity(a.join(' '), c.join(' '))).toBe(0);
  });
});
