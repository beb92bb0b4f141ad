/**
 * Checking a case's result against its `expected` assertions.
 */

import { describeValue } from '../core/errors.js';
import { evalJsonPath, parseJsonPath } from '../core/index.js';
import { matchInWorker } from './match-worker.js';
import { type CompiledPattern, compilePattern, fitsInThread, PatternError } from './pattern.js';
import type {
  Assertion,
  AssertionContext,
  CustomAssertionFn,
  CustomAssertionResult,
} from './schema.js';

/** The verdict of one assertion. */
export interface AssertionOutcome {
  readonly type: Assertion['type'];
  readonly passed: boolean;
  /** One line a person can read: what was checked and, on failure, what was wrong. */
  readonly message: string;
  readonly expected?: unknown;
  readonly actual?: unknown;
}

/** What the assertions look at. */
export type AssertionInput = AssertionContext;

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return (
    ka.length === kb.length &&
    ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * The value an assertion looks at: the whole output, or `field` inside it. A string output is
 * parsed as JSON first when a field is asked for (an LLM that answers in JSON).
 */
function subject(output: unknown, field: string | undefined): { found: boolean; value: unknown } {
  if (field === undefined) return { found: true, value: output };
  let root = output;
  if (typeof root === 'string') {
    const parsed = tryJson(root);
    if (!parsed.ok) return { found: false, value: undefined };
    root = parsed.value;
  }
  const r = evalJsonPath(root, parseJsonPath(field));
  return r.found ? { found: true, value: r.value } : { found: false, value: undefined };
}

/**
 * The text of a value for `contains`, `not_contains` and `regex`: a string is itself; `null` and
 * `undefined` are `''`; anything else (a Dify workflow's `outputs` object) is its compact JSON
 * text, `JSON.stringify(value)`. So `contains: refund` on `{"text": "refund issued"}` passes, and
 * so would `contains: text` (a key): use `field: text` to look at one output only.
 */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function where(field: string | undefined): string {
  return field === undefined ? 'output' : `field ${field}`;
}

function short(text: string, max = 120): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

function missingField(type: Assertion['type'], field: string): AssertionOutcome {
  return { type, passed: false, message: `field ${field} not found in the output` };
}

function settleCustom(name: string, result: CustomAssertionResult): AssertionOutcome {
  if (typeof result === 'boolean') {
    return {
      type: 'custom',
      passed: result,
      message: result ? `custom assertion ${name} passed` : `custom assertion ${name} failed`,
    };
  }
  return {
    type: 'custom',
    passed: result.passed,
    message:
      result.message ??
      (result.passed ? `custom assertion ${name} passed` : `custom assertion ${name} failed`),
    ...(result.actual === undefined ? {} : { actual: result.actual }),
  };
}

function thrown(name: string, e: unknown): AssertionOutcome {
  const message = e instanceof Error ? e.message : String(e);
  return { type: 'custom', passed: false, message: `custom assertion ${name} threw: ${message}` };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}

type RegexAssertion = Extract<Assertion, { type: 'regex' }>;

/**
 * The text a regex assertion reads and its compiled pattern, or the outcome when there is
 * nothing to match. Patterns run on a linear-time engine (`pattern.ts`, issue #16): a plan's
 * pattern was checked when the plan was read, so a `PatternError` here means a manifest built
 * by hand, and fails the assertion instead of throwing.
 */
function regexSubject(
  a: RegexAssertion,
  ctx: AssertionInput,
): { text: string; pattern: CompiledPattern } | { outcome: AssertionOutcome } {
  const s = subject(ctx.output, a.field);
  if (!s.found && a.field !== undefined) return { outcome: missingField(a.type, a.field) };
  try {
    const pattern = compilePattern(a.pattern, { ignoreCase: a.ignoreCase === true });
    return { text: textOf(s.value), pattern };
  } catch (e) {
    if (!(e instanceof PatternError)) throw e;
    return {
      outcome: {
        type: a.type,
        passed: false,
        message: `/${a.pattern}/ cannot be used: ${e.message}`,
        expected: a.pattern,
      },
    };
  }
}

function regexOutcome(a: RegexAssertion, text: string, passed: boolean): AssertionOutcome {
  return {
    type: a.type,
    passed,
    message: `${where(a.field)} ${passed ? 'matches' : 'does not match'} /${a.pattern}/${a.ignoreCase === true ? 'i' : ''}${passed ? '' : `: ${JSON.stringify(short(text))}`}`,
    expected: a.pattern,
    actual: text,
  };
}

/**
 * A regex assertion that may wait: a match too large for this thread (`fitsInThread`) runs on
 * the pattern worker, which `signal` (read only then) ends.
 */
async function evaluateRegexAsync(
  a: RegexAssertion,
  input: AssertionInput,
  options: EvaluateOptions,
): Promise<AssertionOutcome> {
  const r = regexSubject(a, input);
  if ('outcome' in r) return r.outcome;
  const passed = fitsInThread(r.pattern, r.text.length)
    ? r.pattern.test(r.text)
    : await matchInWorker(r.pattern, r.text, options.signal);
  return regexOutcome(a, r.text, passed);
}

function evaluateOne(a: Assertion, ctx: AssertionInput): AssertionOutcome {
  switch (a.type) {
    case 'equals': {
      const s = subject(ctx.output, a.field);
      if (!s.found && a.field !== undefined) return missingField(a.type, a.field);
      let actual = s.value;
      // A JSON answer compared with a structured value: compare the parsed answer.
      if (typeof actual === 'string' && typeof a.value !== 'string') {
        const parsed = tryJson(actual);
        if (parsed.ok) actual = parsed.value;
      }
      const passed = deepEqual(actual, a.value);
      return {
        type: a.type,
        passed,
        message: passed
          ? `${where(a.field)} equals ${describeValue(a.value)}`
          : `${where(a.field)} is ${describeValue(actual)}, expected ${describeValue(a.value)}`,
        expected: a.value,
        actual,
      };
    }
    case 'contains':
    case 'not_contains': {
      const s = subject(ctx.output, a.field);
      if (!s.found && a.field !== undefined) return missingField(a.type, a.field);
      const text = textOf(s.value);
      const has =
        a.ignoreCase === true
          ? text.toLowerCase().includes(a.value.toLowerCase())
          : text.includes(a.value);
      const passed = a.type === 'contains' ? has : !has;
      const verb = has ? 'contains' : 'does not contain';
      return {
        type: a.type,
        passed,
        message: `${where(a.field)} ${verb} ${JSON.stringify(a.value)}${passed ? '' : `: ${JSON.stringify(short(text))}`}`,
        expected: a.value,
        actual: text,
      };
    }
    case 'regex': {
      const r = regexSubject(a, ctx);
      return 'outcome' in r ? r.outcome : regexOutcome(a, r.text, r.pattern.test(r.text));
    }
    case 'is_json': {
      const s = subject(ctx.output, a.field);
      if (!s.found && a.field !== undefined) return missingField(a.type, a.field);
      const passed =
        typeof s.value === 'string'
          ? tryJson(s.value).ok
          : s.value !== undefined && typeof s.value !== 'function';
      return {
        type: a.type,
        passed,
        message: `${where(a.field)} ${passed ? 'is' : 'is not'} JSON`,
        actual: s.value,
      };
    }
    case 'json_path': {
      const s = subject(ctx.output, a.field);
      if (!s.found && a.field !== undefined) return missingField(a.type, a.field);
      let root = s.value;
      if (typeof root === 'string') {
        const parsed = tryJson(root);
        if (!parsed.ok) {
          return {
            type: a.type,
            passed: false,
            message: `${where(a.field)} is not JSON, cannot read ${a.path}`,
            expected: a.equals,
          };
        }
        root = parsed.value;
      }
      const r = evalJsonPath(root, a.path);
      if (!r.found) {
        return {
          type: a.type,
          passed: false,
          message: `${a.path} not found in the ${where(a.field)}`,
          expected: a.equals,
        };
      }
      const passed = deepEqual(r.value, a.equals);
      return {
        type: a.type,
        passed,
        message: passed
          ? `${a.path} equals ${describeValue(a.equals)}`
          : `${a.path} is ${describeValue(r.value)}, expected ${describeValue(a.equals)}`,
        expected: a.equals,
        actual: r.value,
      };
    }
    case 'latency_below':
      return below(a.type, 'latency', ctx.latencyMs, a.ms, 'ms');
    case 'cost_below':
      return below(a.type, 'cost', ctx.cost, a.value, '');
    case 'tokens_below':
      return below(a.type, 'tokens', ctx.tokens, a.value, '');
    case 'custom': {
      let result: CustomAssertionResult | Promise<CustomAssertionResult>;
      try {
        result = a.fn(ctx);
      } catch (e) {
        return thrown(a.name, e);
      }
      if (isThenable(result)) {
        // A rejected promise must not go unhandled: we report it through this outcome.
        Promise.resolve(result).catch(() => {});
        return {
          type: 'custom',
          passed: false,
          message: `custom assertion ${a.name} returned a promise; use evaluateAssertionsAsync`,
        };
      }
      return settleCustom(a.name, result);
    }
  }
}

function below(
  type: Assertion['type'],
  what: string,
  actual: number | undefined,
  limit: number,
  unit: string,
): AssertionOutcome {
  if (actual === undefined) {
    const message =
      what === 'cost'
        ? // Unknown is not free: without a price there is nothing to compare (issue #18).
          'cost unknown: no price is known for this answer (an openai target needs price_per_million; a blocking Dify workflow reports no price, a streaming one does)'
        : `${what} was not reported`;
    return { type, passed: false, message, expected: limit };
  }
  const passed = actual < limit;
  return {
    type,
    passed,
    message: `${what} ${actual}${unit} is ${passed ? 'below' : 'not below'} ${limit}${unit}`,
    expected: limit,
    actual,
  };
}

/**
 * Checks a result against assertions, in order; every assertion is evaluated (no short cut), so
 * a report shows all that failed.
 *
 * How the output is seen: Dify workflows give an `outputs` object, chat and completion apps an
 * answer string. `equals` compares values (a string answer is parsed as JSON when compared with
 * a non-string); `contains`, `not_contains` and `regex` read text, and an object's text is its
 * JSON (`textOf`); `field: answer` (or `data.items[0]`) narrows any assertion to one value;
 * `json_path` reads a path in the output (a string output is parsed as JSON). `*_below` are
 * strict: `latency_below: 5s` fails at exactly 5000 ms; an unreported value fails.
 *
 * Custom assertions must be synchronous here; use `evaluateAssertionsAsync` for async ones.
 *
 * @example
 * ```ts
 * evaluateAssertions(testCase.expected, { output: { text: 'Refund issued' }, latencyMs: 900 });
 * // [{ type: 'contains', passed: true, message: 'output contains "Refund"', ... }]
 * ```
 */
export function evaluateAssertions(
  assertions: readonly Assertion[],
  input: AssertionInput,
): AssertionOutcome[] {
  return assertions.map((a) => evaluateOne(a, input));
}

/** Options of `evaluateAssertionsAsync`. */
export interface EvaluateOptions {
  /**
   * Ends a regex match that runs on the pattern worker (its text too large to match on this
   * thread within ~10 ms): the promise then rejects with `signal.reason`. Pass the attempt's
   * signal, so no assertion outlives the case's timeout, a cancel or Ctrl-C.
   */
  readonly signal?: AbortSignal;
}

/**
 * Like `evaluateAssertions`, awaiting custom assertions that return promises. A regex match too
 * large for this thread runs on a worker thread that `options.signal` ends; `evaluateAssertions`
 * always matches on the calling thread (linear time, but not bounded by any timeout).
 */
export async function evaluateAssertionsAsync(
  assertions: readonly Assertion[],
  input: AssertionInput,
  options: EvaluateOptions = {},
): Promise<AssertionOutcome[]> {
  return Promise.all(
    assertions.map(async (a) => {
      if (a.type === 'regex') return evaluateRegexAsync(a, input, options);
      if (a.type !== 'custom') return evaluateOne(a, input);
      try {
        return settleCustom(a.name, await a.fn(input));
      } catch (e) {
        return thrown(a.name, e);
      }
    }),
  );
}

/**
 * Builds a custom assertion for the library API (a plan file cannot hold a function).
 *
 * @example
 * ```ts
 * const polite = customAssertion('polite', ({ output }) => !/stupid/i.test(String(output)));
 * ```
 */
export function customAssertion(name: string, fn: CustomAssertionFn): Assertion {
  return { type: 'custom', name, fn };
}
