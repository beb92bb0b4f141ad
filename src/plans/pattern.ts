/**
 * Regular expressions that plan, case and action files supply, matched in linear time.
 *
 * JavaScript's RegExp backtracks: `(a+)+$` against 30 `a`s and a `!` runs for minutes, on the
 * thread that also runs the event loop, so no timeout, no Ctrl-C and no journal write could
 * happen until it ended (issue #16). These patterns run on re2js, a pure-JavaScript port of RE2
 * (no native build): its time is linear in the text, at most the program's size per character.
 * RE2 has no backreferences and no lookaround, which backtracking needs; such a pattern is
 * refused when the plan is read (`patternProblem`), before anything is sent.
 *
 * Patterns are written as in JavaScript: the spellings RE2 lacks (`\uXXXX`, `\u{...}`, `\cX`,
 * `[^]`, `[]`, `[\b]`) are translated, and `\s` / `\S` keep JavaScript's Unicode whitespace.
 * The remaining differences are listed in docs/plans.md ("Regular expressions").
 */

import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';

const require = createRequire(import.meta.url);
/**
 * re2js, loaded when the first pattern is compiled: a plan without patterns never pays for its
 * 260 kB (CommonJS build, the one match-worker.ts's worker loads too; outside the CLI's bundle).
 */
const re2js = (): typeof import('re2js') => require('re2js') as typeof import('re2js');

/**
 * Compiled programs above this many instructions are refused: compiling one costs up to a
 * second on the main thread (an 840-character pattern of counted repeats made 120,000), and the
 * matching bound below is per instruction. Real assertion patterns have tens to a few hundred;
 * `[a-z]{1000}` has 1,003.
 */
export const MAX_PROGRAM_SIZE = 10_000;

/**
 * A match runs on the calling thread when program size × (text length + 1) is at most this.
 * Linear time still has a constant: RE2's NFA fallback was measured at ~50 ns per instruction
 * per character on the CI machine, so this bounds an in-thread match to ~10 ms even in the worst
 * case; larger products go to a worker thread that an aborted attempt ends (`match-worker.ts`).
 */
export const IN_THREAD_STEPS = 200_000;

/** Why a pattern cannot be used; `unsupported`: JavaScript accepts it, linear-time matching does not. */
export class PatternError extends Error {
  override readonly name = 'PatternError';
  constructor(
    message: string,
    readonly unsupported: boolean,
  ) {
    super(message);
  }
}

/** A pattern ready to match. */
export interface CompiledPattern {
  /** The pattern as written. */
  readonly source: string;
  readonly ignoreCase: boolean;
  /** The RE2 text it was translated to. */
  readonly engineSource: string;
  /** RE2JS flags (`CASE_INSENSITIVE` or 0). */
  readonly flags: number;
  /** Instructions in the compiled program: the per-character cost bound. */
  readonly programSize: number;
  /** Whether the pattern matches anywhere in `text` (RegExp's `test`), on this thread. */
  test(text: string): boolean;
}

// JavaScript's \s: WhiteSpace and LineTerminator of ECMA-262 (the Zs category included). RE2's
// \s is ASCII only, and a non-breaking space (U+00A0, U+202F) is common in model output.
const WS =
  '\\x{9}-\\x{d} \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}';
// Its complement as ranges, for `\S` inside a class (where `[^...]` cannot nest).
const NOT_WS =
  '\\x{0}-\\x{8}\\x{e}-\\x{1f}\\x{21}-\\x{9f}\\x{a1}-\\x{167f}\\x{1681}-\\x{1fff}\\x{200b}-\\x{2027}' +
  '\\x{202a}-\\x{202e}\\x{2030}-\\x{205e}\\x{2060}-\\x{2fff}\\x{3001}-\\x{fefe}\\x{ff00}-\\x{10ffff}';
const ANYTHING = '[\\x{0}-\\x{10ffff}]';
const NOTHING = '[^\\x{0}-\\x{10ffff}]';

const HEX = /^[0-9a-fA-F]$/;
const isHex = (s: string | undefined): boolean => s !== undefined && HEX.test(s);

const LINEAR = 'linear-time matching';

function unsupported(what: string): PatternError {
  return new PatternError(`${what} is not supported in ${LINEAR}`, true);
}

const LOOKAROUND: readonly (readonly [string, string])[] = [
  ['(?=', 'lookahead "(?="'],
  ['(?!', 'negative lookahead "(?!"'],
  ['(?<=', 'lookbehind "(?<="'],
  ['(?<!', 'negative lookbehind "(?<!"'],
];

/** `\u` at `i`: `\uXXXX` (a surrogate pair as one code point) or `\u{X...}`, as `\x{...}`. */
function unicodeEscape(src: string, i: number): { text: string; length: number } | undefined {
  if (src[i + 2] === '{') {
    const close = src.indexOf('}', i + 3);
    const digits = close < 0 ? '' : src.slice(i + 3, close);
    if (digits !== '' && [...digits].every(isHex)) {
      return { text: `\\x{${digits}}`, length: close - i + 1 };
    }
    return undefined;
  }
  const four = src.slice(i + 2, i + 6);
  if (four.length !== 4 || ![...four].every(isHex)) return undefined;
  const unit = Number.parseInt(four, 16);
  if (unit >= 0xd800 && unit <= 0xdbff && src.startsWith('\\u', i + 6)) {
    const low = src.slice(i + 8, i + 12);
    const lowUnit = low.length === 4 && [...low].every(isHex) ? Number.parseInt(low, 16) : -1;
    if (lowUnit >= 0xdc00 && lowUnit <= 0xdfff) {
      const cp = (unit - 0xd800) * 0x400 + (lowUnit - 0xdc00) + 0x10000;
      return { text: `\\x{${cp.toString(16)}}`, length: 12 };
    }
  }
  return { text: `\\x{${four}}`, length: 6 };
}

/** The escape at `src[i] === '\\'`, as RE2 text; throws for the ones RE2 cannot run. */
function translateEscape(
  src: string,
  i: number,
  inClass: boolean,
): { text: string; length: number } {
  const next = src[i + 1];
  switch (next) {
    case undefined:
      return { text: '\\', length: 1 }; // RE2 reports the trailing backslash
    case 's':
      return { text: inClass ? WS : `[${WS}]`, length: 2 };
    case 'S':
      return { text: inClass ? NOT_WS : `[^${WS}]`, length: 2 };
    case 'b':
      return { text: inClass ? '\\x{8}' : '\\b', length: 2 };
    case 'c': {
      const letter = src.charCodeAt(i + 2);
      if ((letter >= 65 && letter <= 90) || (letter >= 97 && letter <= 122)) {
        return { text: `\\x{${(letter % 32).toString(16)}}`, length: 3 };
      }
      return { text: '\\c', length: 2 };
    }
    case 'u':
      return unicodeEscape(src, i) ?? { text: '\\u', length: 2 };
    case '0':
      if (src[i + 2] === undefined || src[i + 2]! < '0' || src[i + 2]! > '9') {
        return { text: '\\x{0}', length: 2 };
      }
      throw unsupported(`the octal escape "\\0${src[i + 2]}" (write \\xHH)`);
    case 'k':
      if (src[i + 2] === '<') throw unsupported('the named backreference "\\k<...>"');
      return { text: '\\k', length: 2 };
    default: {
      if (next >= '1' && next <= '9') {
        throw unsupported(
          inClass ? `the octal escape "\\${next}" (write \\xHH)` : `the backreference "\\${next}"`,
        );
      }
      // A literal astral character after the backslash is one code point, two UTF-16 units.
      const cp = src.codePointAt(i + 1)!;
      return { text: `\\${String.fromCodePoint(cp)}`, length: cp > 0xffff ? 3 : 2 };
    }
  }
}

/**
 * The RE2 text of a JavaScript-style pattern. Throws a `PatternError` for lookaround and
 * backreferences; anything else RE2 cannot parse is left for RE2 to report.
 */
export function translatePattern(src: string): string {
  let out = '';
  let inClass = false;
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      const e = translateEscape(src, i, inClass);
      out += e.text;
      i += e.length;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      // RE2 reads `[[:alpha:]]` as a POSIX class; in JavaScript `[` in a class is a literal.
      out += c === '[' ? '\\[' : c;
      i++;
      continue;
    }
    if (c === '[') {
      // In JavaScript `[]` matches nothing and `[^]` anything; RE2 would read the `]` as a
      // literal and go on looking for the end of the class.
      if (src.startsWith('[]', i)) {
        out += NOTHING;
        i += 2;
      } else if (src.startsWith('[^]', i)) {
        out += ANYTHING;
        i += 3;
      } else {
        inClass = true;
        out += src[i + 1] === '^' ? '[^' : '[';
        i += src[i + 1] === '^' ? 2 : 1;
      }
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      for (const [opening, what] of LOOKAROUND) {
        if (src.startsWith(opening, i)) throw unsupported(what);
      }
    }
    out += c;
    i++;
  }
  return out;
}

function jsAccepts(src: string): boolean {
  try {
    new RegExp(src); // compiling only: RegExp's cost is in matching, never in parsing
    return true;
  } catch {
    return false;
  }
}

function compileUncached(source: string, ignoreCase: boolean): CompiledPattern {
  const engineSource = translatePattern(source);
  const { RE2JS: engine } = re2js();
  const flags = ignoreCase ? engine.CASE_INSENSITIVE : 0;
  let re: RE2JS;
  try {
    re = engine.compile(engineSource, flags);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).replace(
      /^error parsing regexp: /,
      '',
    );
    if (jsAccepts(source)) throw new PatternError(`${reason}: not supported in ${LINEAR}`, true);
    throw new PatternError(reason, false);
  }
  const programSize = re.programSize();
  if (programSize > MAX_PROGRAM_SIZE) {
    throw new PatternError(
      `too large for ${LINEAR}: ${programSize} instructions, at most ${MAX_PROGRAM_SIZE}`,
      true,
    );
  }
  return {
    source,
    ignoreCase,
    engineSource,
    flags,
    programSize,
    test: (text) => re.test(text),
  };
}

// Case files may give each row its own pattern; a bounded cache keeps the common case (one
// pattern for many cases) at one compilation without growing with a million distinct rows.
const cache = new Map<string, CompiledPattern | PatternError>();
const CACHE_LIMIT = 500;

/**
 * Compiles a pattern for linear-time matching (cached). Throws a `PatternError`.
 *
 * @example
 * ```ts
 * compilePattern('^refund \\d+$', { ignoreCase: true }).test('Refund 42'); // true
 * compilePattern('(\\w+) \\1'); // PatternError: the backreference "\1" is not supported ...
 * ```
 */
export function compilePattern(
  source: string,
  options: { readonly ignoreCase?: boolean } = {},
): CompiledPattern {
  const ignoreCase = options.ignoreCase === true;
  const key = `${ignoreCase ? 'i' : '-'}${source}`;
  let compiled = cache.get(key);
  if (compiled === undefined) {
    try {
      compiled = compileUncached(source, ignoreCase);
    } catch (e) {
      if (!(e instanceof PatternError)) throw e;
      compiled = e;
    }
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, compiled);
  }
  if (compiled instanceof PatternError) throw compiled;
  return compiled;
}

/** Why `source` cannot be used as a pattern, or `undefined` when it can. */
export function patternProblem(source: string): PatternError | undefined {
  try {
    compilePattern(source);
    return undefined;
  } catch (e) {
    if (e instanceof PatternError) return e;
    throw e;
  }
}

/** Whether matching `pattern` against `length` characters is cheap enough for this thread. */
export function fitsInThread(pattern: CompiledPattern, length: number): boolean {
  return pattern.programSize * (length + 1) <= IN_THREAD_STEPS;
}
