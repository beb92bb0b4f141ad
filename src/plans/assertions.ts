/**
 * Checking a case's result against its `expected` assertions.
 */

import { describeValue } from '../core/errors.js';
import { evalJsonPath, parseJsonPath } from '../core/index.js';
import { compileJsonSchema, editDistance, schemaErrors } from './assertion-kinds.js';
import { matchInWorker } from './match-worker.js';
import { callModule, ModuleCallError, modulePath } from './module-worker.js';
import { type CompiledPattern, compilePattern, fitsInThread, PatternError } from './pattern.js';
import { cosineSimilarity, type Grader, type GradeUsage } from './rubric.js';
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
  /**
   * 0..1: how well it passed, from a code check or a grader. Absent for the yes/no kinds: their
   * score is 1 when passed, else 0.
   */
  readonly score?: number;
  /** The assertion's weight, when not 1. */
  readonly weight?: number;
  /** Set when the assertion is required (with a case threshold, it must pass). */
  readonly required?: true;
  /** An `llm_rubric`'s grader calls: attempts, tokens and cost ("grading cost", not the app's). */
  readonly grading?: GradeUsage;
  /**
   * Set when the assertion could not be judged (`GRADE_UNPARSABLE`, or the grader's error after
   * its retries): the case then ends `error` with this code, not `failed`.
   */
  readonly errorCode?: string;
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

/**
 * The outcome with the assertion's weight and required flag. A yes/no outcome carries no
 * `score`: it is 1 or 0 by its `passed` (`caseVerdict`), so outcomes stay as they were.
 */
function scored(a: Assertion, o: AssertionOutcome): AssertionOutcome {
  return {
    ...o,
    ...(a.weight === undefined || a.weight === 1 ? {} : { weight: a.weight }),
    ...(a.required === true ? { required: true as const } : {}),
  };
}

function evaluateOne(a: Assertion, ctx: AssertionInput): AssertionOutcome {
  return scored(a, evaluateKind(a, ctx));
}

function evaluateKind(a: Assertion, ctx: AssertionInput): AssertionOutcome {
  switch (a.type) {
    case 'llm_rubric':
      return noGrader(a);
    case 'similar':
      return noEmbeddings(a);
    case 'starts_with':
    case 'contains_all':
    case 'contains_any':
    case 'levenshtein_below':
    case 'json_schema':
      return evaluateScoredKind(a, ctx);
    case 'assert_module':
      return {
        type: a.type,
        passed: false,
        message: `assert_module ${a.module}#${a.export} runs on a worker; use evaluateAssertionsAsync`,
      };
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

type ScoredKind = Extract<
  Assertion,
  { type: 'starts_with' | 'contains_all' | 'contains_any' | 'levenshtein_below' | 'json_schema' }
>;

function evaluateScoredKind(a: ScoredKind, ctx: AssertionInput): AssertionOutcome {
  const s = subject(ctx.output, a.field);
  if (!s.found && a.field !== undefined) return missingField(a.type, a.field);
  if (a.type === 'json_schema') return jsonSchemaOutcome(a, s.value);
  const raw = textOf(s.value);
  if (a.type === 'levenshtein_below') {
    const d = editDistance(raw, a.value);
    const passed = d < a.distance;
    return {
      type: a.type,
      passed,
      message: `${where(a.field)} is ${d} edit${d === 1 ? '' : 's'} from ${JSON.stringify(short(a.value))} (${passed ? 'below' : 'not below'} ${a.distance})`,
      expected: a.value,
      actual: raw,
    };
  }
  const fold = (t: string) => (a.ignoreCase === true ? t.toLowerCase() : t);
  const text = fold(raw);
  if (a.type === 'starts_with') {
    const passed = text.startsWith(fold(a.value));
    return {
      type: a.type,
      passed,
      message: `${where(a.field)} ${passed ? 'starts' : 'does not start'} with ${JSON.stringify(a.value)}${passed ? '' : `: ${JSON.stringify(short(raw))}`}`,
      expected: a.value,
      actual: raw,
    };
  }
  const found = a.values.filter((v) => text.includes(fold(v)));
  const missing = a.values.filter((v) => !text.includes(fold(v)));
  const passed = a.type === 'contains_all' ? missing.length === 0 : found.length > 0;
  const list = (vs: readonly string[]) => vs.map((v) => JSON.stringify(v)).join(', ');
  return {
    type: a.type,
    passed,
    message: passed
      ? `${where(a.field)} contains ${list(a.type === 'contains_all' ? a.values : found)}`
      : a.type === 'contains_all'
        ? `${where(a.field)} does not contain ${list(missing)}: ${JSON.stringify(short(raw))}`
        : `${where(a.field)} contains none of ${list(a.values)}: ${JSON.stringify(short(raw))}`,
    expected: a.values,
    actual: raw,
  };
}

function jsonSchemaOutcome(
  a: Extract<Assertion, { type: 'json_schema' }>,
  value: unknown,
): AssertionOutcome {
  let doc = value;
  if (typeof doc === 'string') {
    const parsed = tryJson(doc);
    if (!parsed.ok) {
      return {
        type: a.type,
        passed: false,
        message: `${where(a.field)} is not JSON: ${JSON.stringify(short(doc))}`,
        actual: doc,
      };
    }
    doc = parsed.value;
  }
  const validate = compileJsonSchema(a.schema);
  if (validate instanceof Error) {
    // Refused when the plan was read; only a manifest built by hand gets here.
    return { type: a.type, passed: false, message: `not a JSON Schema: ${validate.message}` };
  }
  const passed = validate(doc) === true;
  return {
    type: a.type,
    passed,
    message: passed
      ? `${where(a.field)} matches the JSON Schema`
      : `${where(a.field)} does not match the JSON Schema: ${schemaErrors(validate)}`,
    actual: doc,
  };
}

type ModuleAssertion = Extract<Assertion, { type: 'assert_module' }>;

/** The case as a code check sees it: plain data (custom assertions' functions left out). */
function caseView(tc: AssertionInput['testCase']): Record<string, unknown> | undefined {
  if (tc === undefined) return undefined;
  return {
    id: tc.id,
    inputs: tc.inputs,
    tags: tc.tags,
    ...(tc.dataset === undefined ? {} : { dataset: tc.dataset }),
    ...(tc.scenario === undefined ? {} : { scenario: tc.scenario }),
    ...(tc.metadata === undefined ? {} : { metadata: tc.metadata }),
  };
}

function plainExpected(tc: AssertionInput['testCase']): unknown[] {
  return (tc?.expected ?? []).map((e) =>
    e.type === 'custom' ? { type: e.type, name: e.name } : e,
  );
}

/**
 * What a check returned, as an outcome: `true`/`false`; a score 0..1 (passes at 0.5 or more);
 * or `{ pass, score, reason }` (either of pass and score may be left out).
 */
function moduleOutcome(a: ModuleAssertion, value: unknown): AssertionOutcome {
  const name = `${a.module}#${a.export}`;
  const unit = (n: unknown): n is number => typeof n === 'number' && n >= 0 && n <= 1;
  const fail = (message: string): AssertionOutcome => ({ type: a.type, passed: false, message });
  let passed: boolean;
  let score: number;
  let reason: string | undefined;
  if (typeof value === 'boolean') {
    passed = value;
    score = value ? 1 : 0;
  } else if (unit(value)) {
    score = value;
    passed = value >= 0.5;
  } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as { pass?: unknown; score?: unknown; reason?: unknown };
    if (v.pass !== undefined && typeof v.pass !== 'boolean') {
      return fail(`${name} returned pass ${describeValue(v.pass)}, expected true or false`);
    }
    if (v.score !== undefined && !unit(v.score)) {
      return fail(
        `${name} returned score ${describeValue(v.score)}, expected a number from 0 to 1`,
      );
    }
    if (v.pass === undefined && v.score === undefined) {
      return fail(`${name} returned an object without pass or score`);
    }
    score = unit(v.score) ? v.score : v.pass === true ? 1 : 0;
    passed = typeof v.pass === 'boolean' ? v.pass : score >= 0.5;
    reason = typeof v.reason === 'string' ? v.reason : undefined;
  } else {
    return fail(
      `${name} returned ${describeValue(value)}, expected true/false, a score from 0 to 1 or { pass, score, reason }`,
    );
  }
  return {
    type: a.type,
    passed,
    score,
    message: `${name} ${passed ? 'passed' : 'failed'} (score ${round(score)})${reason === undefined ? '' : `: ${reason}`}`,
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

async function evaluateModule(
  a: ModuleAssertion,
  input: AssertionInput,
  options: EvaluateOptions,
): Promise<AssertionOutcome> {
  const s = subject(input.output, a.field);
  if (!s.found && a.field !== undefined) return missingField(a.type, a.field);
  const arg = {
    output: s.value,
    inputs: input.testCase?.inputs ?? {},
    expected: plainExpected(input.testCase),
    case: caseView(input.testCase),
  };
  try {
    const value = await callModule(modulePath(a.module, options.baseDir), a.export, arg, {
      signal: options.signal,
      ...(options.moduleTimeoutMs === undefined ? {} : { timeoutMs: options.moduleTimeoutMs }),
    });
    return moduleOutcome(a, value);
  } catch (e) {
    // An abort (the case's timeout, a cancel) ends the case as usual; anything else is this
    // check's failure, reported on it.
    if (!(e instanceof ModuleCallError)) throw e;
    return { type: a.type, passed: false, message: `${a.module}#${a.export} ${e.message}` };
  }
}

type RubricAssertion = Extract<Assertion, { type: 'llm_rubric' }>;

function noGrader(a: RubricAssertion): AssertionOutcome {
  return {
    type: a.type,
    passed: false,
    message: "llm_rubric needs a grader (the plan's grader:, or EvaluateOptions.grader)",
    errorCode: 'INVALID_OPTION',
  };
}

async function evaluateRubric(
  a: RubricAssertion,
  ctx: AssertionInput,
  options: EvaluateOptions,
): Promise<AssertionOutcome> {
  if (options.grader === undefined) return noGrader(a);
  const s = subject(ctx.output, a.field);
  if (!s.found) return missingField(a.type, a.field!);
  try {
    const g = await options.grader.grade(
      {
        caseId: ctx.testCase?.id ?? '',
        rubric: a.rubric,
        input: ctx.testCase?.inputs,
        output: textOf(s.value),
        ...(a.model === undefined ? {} : { model: a.model }),
      },
      options.signal,
    );
    const passed = a.threshold === undefined ? g.pass : g.score >= a.threshold;
    const limit = a.threshold === undefined ? '' : ` (threshold ${a.threshold})`;
    return {
      type: a.type,
      passed,
      message: `rubric ${passed ? 'passed' : 'failed'}, score ${round(g.score)}${limit}: ${g.reason || 'no reason given'}`,
      score: g.score,
      expected: a.rubric,
      grading: g.usage,
    };
  } catch (e) {
    // An abort (the case's timeout, a cancel) ends the case as usual.
    if (options.signal?.aborted === true) throw e;
    const code = (e as { code?: unknown }).code;
    const usage = (e as { usage?: GradeUsage }).usage;
    return {
      type: a.type,
      passed: false,
      message: `the grading failed: ${e instanceof Error ? e.message : String(e)}`,
      expected: a.rubric,
      errorCode: typeof code === 'string' ? code : 'UNKNOWN_ERROR',
      ...(usage === undefined ? {} : { grading: usage }),
    };
  }
}

type SimilarAssertion = Extract<Assertion, { type: 'similar' }>;

function noEmbeddings(a: SimilarAssertion): AssertionOutcome {
  return {
    type: a.type,
    passed: false,
    message:
      "similar needs a grader with embeddings (the plan's grader:, or EvaluateOptions.grader)",
    expected: a.value,
    errorCode: 'INVALID_OPTION',
  };
}

/** Adds two calls' usage: the output's embedding and the expected value's. */
function addUsage(x: GradeUsage, y: GradeUsage): GradeUsage {
  const tokens = (x.tokens ?? 0) + (y.tokens ?? 0);
  const cost = (x.cost ?? 0) + (y.cost ?? 0);
  return {
    attempts: x.attempts + y.attempts,
    ...(tokens > 0 ? { tokens } : {}),
    ...(cost > 0 ? { cost } : {}),
  };
}

/**
 * `similar` (issue #20 item 2): the cosine of the output's and the expected value's embeddings,
 * both through the grader (which embeds each distinct text once per run). A failed embeddings
 * call, after the grader's retries, is an error of the judging (`errorCode`), not a failure.
 */
async function evaluateSimilar(
  a: SimilarAssertion,
  ctx: AssertionInput,
  options: EvaluateOptions,
): Promise<AssertionOutcome> {
  const embed = options.grader?.embed?.bind(options.grader);
  if (embed === undefined) return noEmbeddings(a);
  const s = subject(ctx.output, a.field);
  if (!s.found) return missingField(a.type, a.field!);
  const text = textOf(s.value);
  if (text === '') {
    return {
      type: a.type,
      passed: false,
      message: `similarity 0 (threshold ${a.threshold}): the output is empty`,
      score: 0,
      expected: a.value,
      actual: text,
    };
  }
  try {
    const [want, got] = await Promise.all([
      embed(a.value, options.signal),
      embed(text, options.signal),
    ]);
    // A cosine below 0 (opposed meanings) scores 0: a score is 0..1. Rounded to 1e-9 so that
    // equal texts score exactly 1 (the float sum can land an ulp below it) and reach 1.
    const score = Math.round(Math.max(0, cosineSimilarity(got.vector, want.vector)) * 1e9) / 1e9;
    const passed = score >= a.threshold;
    return {
      type: a.type,
      passed,
      message: `similarity ${round(score)} ${passed ? '>=' : '<'} threshold ${a.threshold}`,
      score,
      expected: a.value,
      actual: text,
      grading: addUsage(want.usage, got.usage),
    };
  } catch (e) {
    if (options.signal?.aborted === true) throw e;
    const code = (e as { code?: unknown }).code;
    return {
      type: a.type,
      passed: false,
      message: `the embeddings call failed: ${e instanceof Error ? e.message : String(e)}`,
      expected: a.value,
      errorCode: typeof code === 'string' ? code : 'UNKNOWN_ERROR',
    };
  }
}

/** A case's verdict from its assertions' outcomes. */
export interface CaseVerdict {
  readonly passed: boolean;
  /** The weighted mean of the outcomes' scores; undefined without assertions (or weights). */
  readonly score: number | undefined;
}

/**
 * A case's score and verdict: the score is the weighted mean of the assertions' scores (weight
 * default 1); without a `threshold` the case passes when every assertion passes, with one when
 * every `required` assertion passes and the score reaches the threshold.
 *
 * @example
 * ```ts
 * caseVerdict([{ type: 'contains', passed: true, message: '', score: 1, weight: 3 },
 *              { type: 'regex', passed: false, message: '', score: 0 }], 0.7);
 * // { passed: true, score: 0.75 }
 * ```
 */
export function caseVerdict(
  outcomes: readonly AssertionOutcome[],
  threshold?: number,
): CaseVerdict {
  let total = 0;
  let sum = 0;
  for (const o of outcomes) {
    const w = o.weight ?? 1;
    total += w;
    sum += w * (o.score ?? (o.passed ? 1 : 0));
  }
  const score = total > 0 ? sum / total : undefined;
  if (threshold === undefined) return { passed: outcomes.every((o) => o.passed), score };
  const required = outcomes.every((o) => o.required !== true || o.passed);
  // Rounded so that weights such as 0.1 + 0.2 reach a threshold of 0.3.
  const reached = score === undefined || Math.round(score * 1e9) / 1e9 >= threshold;
  return { passed: required && reached, score };
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
   * signal, so no assertion outlives the case's timeout, a cancel or Ctrl-C. It also ends an
   * `assert_module` check in progress.
   */
  readonly signal?: AbortSignal;
  /** The directory `assert_module` paths resolve against (the plan's). @default '.' */
  readonly baseDir?: string;
  /** How long one `assert_module` call may take. @default 5000 */
  readonly moduleTimeoutMs?: number;
  /** Grades `llm_rubric` assertions; without it they fail, saying a grader is needed. */
  readonly grader?: Grader;
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
      if (a.type === 'regex') return scored(a, await evaluateRegexAsync(a, input, options));
      if (a.type === 'assert_module') return scored(a, await evaluateModule(a, input, options));
      if (a.type === 'llm_rubric') return scored(a, await evaluateRubric(a, input, options));
      if (a.type === 'similar') return scored(a, await evaluateSimilar(a, input, options));
      if (a.type !== 'custom') return evaluateOne(a, input);
      try {
        return scored(a, settleCustom(a.name, await a.fn(input)));
      } catch (e) {
        return scored(a, thrown(a.name, e));
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
