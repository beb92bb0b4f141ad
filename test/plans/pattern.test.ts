/**
 * Patterns from plan and case files run in linear time (issue #16): the catastrophic pattern
 * terminates with the right verdict, JavaScript spellings keep their meaning, what RE2 cannot run
 * is refused with a reason, and a match too large for the event loop's thread runs on a worker
 * that an abort ends.
 */

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { evaluateAssertions, evaluateAssertionsAsync, parsePlan } from '../../src/plans/index.js';
import { matchInWorker } from '../../src/plans/match-worker.js';
import {
  compilePattern,
  fitsInThread,
  IN_THREAD_STEPS,
  MAX_PROGRAM_SIZE,
  PatternError,
  patternProblem,
} from '../../src/plans/pattern.js';

const CATASTROPHIC = '(a+)+$';
const POISON = `ok:${'a'.repeat(31)}!`;

describe('the catastrophic pattern of issue #16', () => {
  // With RegExp's backtracking each test below runs for minutes (2^31 paths): before the fix
  // they fail by the test timeout. The assertions are on the verdict, not on time.
  test('(a+)+$ against "ok:aaa...a!" does not match', () => {
    expect(compilePattern(CATASTROPHIC).test(POISON)).toBe(false);
    expect(compilePattern(CATASTROPHIC).test(`ok:${'a'.repeat(31)}`)).toBe(true);
  });

  test('as a plan assertion it fails the case, through both evaluators', async () => {
    const m = parsePlan(`workflow_id: w\ncases:\n  - expected: { regex: "${CATASTROPHIC}" }\n`);
    const ds = m.datasets[0]!;
    if (ds.cases.kind !== 'inline') throw new Error('inline cases expected');
    const expected = ds.cases.cases[0]!.expected;
    const [sync] = evaluateAssertions(expected, { output: POISON });
    expect(sync).toMatchObject({ type: 'regex', passed: false, actual: POISON });
    expect(sync!.message).toBe(`output does not match /(a+)+$/: ${JSON.stringify(POISON)}`);
    const [viaAsync] = await evaluateAssertionsAsync(expected, { output: POISON });
    expect(viaAsync).toEqual(sync);
  });
});

describe('JavaScript spellings keep their meaning', () => {
  const same: readonly (readonly [string, readonly string[]])[] = [
    ['^refund \\d{2,4}$', ['refund 42', 'refund 4', 'refund 12345', 'Refund 42']],
    ['\\u00e9t\\u00E9', ['été', 'ete']],
    ['\\uD83D\\uDE00', ['😀', 'x']],
    ['a[^]b', ['a\nb', 'ab']],
    ['a[]b', ['ab', 'a]b']],
    ['[\\b]', ['\b', 'b']],
    ['\\cJ', ['\n', 'J']],
    ['x\\0', ['x\0', 'x0']],
    ['(?<word>\\w+)-\\w+', ['ab-cd', 'ab-']],
    ['[[a]', ['[', 'a', 'b']],
    ['\\/api\\/v1', ['/api/v1', 'api']],
    ['a{,3}', ['a{,3}', 'aaa']],
    ['\\bcat\\b', ['a cat sat', 'concat']],
    ['^$', ['', 'x']],
    ['colou?r|gr[ae]y', ['grey', 'colour', 'gruy']],
    ['\\x41\\x62', ['Ab', 'ab']],
  ];
  test.each(same)('%s gives RegExp verdicts', (pattern, inputs) => {
    for (const text of inputs) {
      expect([text, compilePattern(pattern).test(text)]).toEqual([
        text,
        new RegExp(pattern).test(text),
      ]);
    }
  });

  test('\\u{...} is a code point, as with the u flag (without it, RegExp reads "u{1F600}")', () => {
    expect(compilePattern('\\u{1F600}').test('smile 😀')).toBe(true);
    expect(/\u{1F600}/u.test('smile 😀')).toBe(true);
    expect(compilePattern('^\\u{1F600}$').test('u{1F600}')).toBe(false);
  });

  test('\\s and \\S are JavaScript whitespace, for every BMP character, in and out of classes', () => {
    const forms = ['\\s', '\\S', '[\\s]', '[\\S]', '[^\\s]', '[^\\S]', '[a\\S]'];
    const wrong: string[] = [];
    for (const form of forms) {
      const ours = compilePattern(`^${form}$`);
      const js = new RegExp(`^${form}$`);
      for (let cp = 0; cp <= 0xffff; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue; // lone surrogates: not characters
        const ch = String.fromCharCode(cp);
        if (ours.test(ch) !== js.test(ch)) wrong.push(`${form} U+${cp.toString(16)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('ignore_case adds the i flag', () => {
    expect(compilePattern('^refund$', { ignoreCase: true }).test('REFUND')).toBe(true);
    expect(compilePattern('^refund$').test('REFUND')).toBe(false);
    expect(compilePattern('[a-c]x', { ignoreCase: true }).test('BX')).toBe(true);
  });

  // Patterns built from the constructs both engines share, on short texts over an alphabet that
  // avoids the documented differences (line terminators other than \n, case folding beyond
  // ASCII): every verdict must be RegExp's.
  test('random patterns of the shared subset match as RegExp does', () => {
    const atom = fc.constantFrom(
      'a',
      'b',
      'c',
      ' ',
      '.',
      '\\d',
      '\\D',
      '\\w',
      '\\W',
      '\\s',
      '\\S',
      '[ab]',
      '[^a]',
      '[a-c1]',
      '\\.',
      '1',
    );
    const quant = fc.constantFrom('', '', '*', '+', '?', '{2}', '{1,2}', '*?', '+?');
    const piece = fc.tuple(atom, quant).map(([a, q]) => a + q);
    const seq = fc.array(piece, { minLength: 1, maxLength: 4 }).map((p) => p.join(''));
    const alt = fc.array(seq, { minLength: 1, maxLength: 3 }).map((p) => p.join('|'));
    const group = fc
      .tuple(alt, fc.constantFrom('', '*', '+', '?'), fc.constantFrom('(', '(?:'))
      .map(([body, q, open]) => `${open}${body})${q}`);
    const pattern = fc
      .tuple(
        fc.constantFrom('', '^'),
        fc.array(fc.oneof(piece, group), { minLength: 1, maxLength: 3 }),
        fc.constantFrom('', '$', '\\b'),
      )
      .map(([start, parts, end]) => start + parts.join('') + end);
    const text = fc
      .array(fc.constantFrom('a', 'b', 'c', 'A', '1', ' ', '\n', '.', '\u00a0', 'é'), {
        maxLength: 12,
      })
      .map((cs) => cs.join(''));
    fc.assert(
      fc.property(pattern, text, fc.boolean(), (p, t, i) => {
        const ours = compilePattern(p, { ignoreCase: i }).test(t);
        expect(ours).toBe(new RegExp(p, i ? 'i' : '').test(t));
      }),
      { numRuns: 2000, seed: 16 },
    );
  });
});

describe('what linear-time matching cannot run is refused, with the reason', () => {
  const refused: readonly (readonly [string, string])[] = [
    ['foo(?=bar)', 'lookahead "(?=" is not supported in linear-time matching'],
    ['foo(?!bar)', 'negative lookahead "(?!" is not supported in linear-time matching'],
    ['(?<=foo)bar', 'lookbehind "(?<=" is not supported in linear-time matching'],
    ['(?<!foo)bar', 'negative lookbehind "(?<!" is not supported in linear-time matching'],
    ['(\\w+) \\1', 'the backreference "\\1" is not supported in linear-time matching'],
    [
      '(?<w>\\w+) \\k<w>',
      'the named backreference "\\k<...>" is not supported in linear-time matching',
    ],
    ['[\\1]', 'the octal escape "\\1" (write \\xHH) is not supported in linear-time matching'],
    ['\\012', 'the octal escape "\\01" (write \\xHH) is not supported in linear-time matching'],
    ['a{1001}', 'invalid repeat count: `{1001}`: not supported in linear-time matching'],
    ['\\e', 'invalid escape sequence: `\\e`: not supported in linear-time matching'],
  ];
  test.each(refused)('%s', (pattern, message) => {
    expect(() => new RegExp(pattern)).not.toThrow(); // JavaScript accepts every one of them
    const problem = patternProblem(pattern);
    expect(problem).toBeInstanceOf(PatternError);
    expect(problem).toMatchObject({ message, unsupported: true });
  });

  test('a pattern neither engine accepts is invalid, not unsupported', () => {
    expect(patternProblem('(unclosed')).toMatchObject({
      message: 'missing closing ): `(unclosed`',
      unsupported: false,
    });
    expect(patternProblem('[a-z')).toMatchObject({ unsupported: false });
  });

  test('a compiled program over the size limit is refused (its compilation alone can take a second)', () => {
    const big = 'x{1000}'.repeat(11);
    expect(patternProblem(big)?.message).toMatch(
      new RegExp(
        `^too large for linear-time matching: \\d+ instructions, at most ${MAX_PROGRAM_SIZE}$`,
      ),
    );
    expect(patternProblem('[a-z]{1000}')).toBeUndefined();
  });

  test('a pattern refused in a hand-built manifest fails its assertion instead of throwing', () => {
    const [o] = evaluateAssertions([{ type: 'regex', pattern: 'a(?=b)' }], { output: 'ab' });
    expect(o).toMatchObject({ passed: false });
    expect(o!.message).toBe(
      '/a(?=b)/ cannot be used: lookahead "(?=" is not supported in linear-time matching',
    );
  });
});

describe('matches too large for this thread run on a worker that an abort ends', () => {
  test('the budget is program size times text length', () => {
    const p = compilePattern('^ok'); // a small program
    const fits = Math.floor(IN_THREAD_STEPS / p.programSize) - 1;
    expect(fitsInThread(p, fits)).toBe(true);
    expect(fitsInThread(p, fits + 1)).toBe(false);
  });

  test('the worker gives the same verdicts', async () => {
    const cases: readonly (readonly [string, boolean, string])[] = [
      [CATASTROPHIC, false, POISON],
      ['^refund \\d+$', true, 'REFUND 42'],
      ['\\s$', false, 'x\u00a0'],
      ['(?:a[ab]{999}[c-z]|b[ab]{999}[c-z])', false, 'ab'],
    ];
    for (const [source, ignoreCase, text] of cases) {
      const p = compilePattern(source, { ignoreCase });
      expect(await matchInWorker(p, text)).toBe(p.test(text));
    }
  });

  // A pattern whose DFA gives up (2,000 instructions alive at every character of a random a/b
  // text) and falls back to the NFA: ~10 s per 100 KB on this machine, so a match that was not
  // ended would hold the test far past its timeout.
  const SLOW = compilePattern('(?:a[ab]{999}[c-z]|b[ab]{999}[c-z])');
  const slowText = (n: number) => {
    let seed = 7;
    let s = '';
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      s += seed & 0x10000 ? 'a' : 'b';
    }
    return s;
  };

  test('an abort ends the match in progress, and the next match gets a new worker', async () => {
    const text = slowText(400_000);
    expect(fitsInThread(SLOW, text.length)).toBe(false);
    const controller = new AbortController();
    const running = matchInWorker(SLOW, text, controller.signal);
    const queued = matchInWorker(compilePattern('b$'), 'ab'); // waits behind the slow match
    const reason = new Error('attempt timed out');
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(await queued).toBe(true);
    expect(await matchInWorker(compilePattern('^a'), 'ab')).toBe(true);
  });

  test('an abort of a queued match removes it; an aborted signal never starts one', async () => {
    const first = new AbortController();
    const slow = matchInWorker(SLOW, slowText(400_000), first.signal);
    const second = new AbortController();
    const waiting = matchInWorker(compilePattern('a'), 'a', second.signal);
    second.abort('cancelled');
    await expect(waiting).rejects.toBe('cancelled');
    first.abort('done');
    await expect(slow).rejects.toBe('done');
    await expect(matchInWorker(compilePattern('a'), 'a', AbortSignal.abort('late'))).rejects.toBe(
      'late',
    );
  });

  test('evaluateAssertionsAsync sends a large match to the worker and passes the signal on', async () => {
    const m = parsePlan(
      'workflow_id: w\ncases:\n  - expected: { regex: "(?:a[ab]{999}[c-z]|b[ab]{999}[c-z])" }\n',
    );
    const ds = m.datasets[0]!;
    if (ds.cases.kind !== 'inline') throw new Error('inline cases expected');
    const expected = ds.cases.cases[0]!.expected;
    const output = `${slowText(300)}z`; // over the budget with 2,000 instructions, yet quick
    expect(fitsInThread(SLOW, output.length)).toBe(false);
    const [o] = await evaluateAssertionsAsync(expected, { output });
    expect(o).toMatchObject({ passed: SLOW.test(output) });

    const controller = new AbortController();
    const pending = evaluateAssertionsAsync(
      expected,
      { output: slowText(400_000) },
      {
        signal: controller.signal,
      },
    );
    controller.abort(new Error('timeout'));
    await expect(pending).rejects.toThrow('timeout');
  });
});
