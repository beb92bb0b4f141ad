/**
 * The plan file schema (zod, strict: unknown keys are errors) and the normalised `RunManifest`
 * it becomes: camelCase keys, durations in milliseconds, defaults filled in.
 *
 * The zod schemas check the file as written, in the seeds' snake_case keys; `normalisePlan` then
 * builds the manifest. Keeping the two apart keeps every zod issue path equal to a path in the
 * file, which is what lets an error point at a line and column.
 */

import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { RateLimit, RetryPolicy, StopConditions } from '../core/index.js';
import { parseJsonPath } from '../core/index.js';
import { parseModuleRef, SCORED_KEYS, scoredShape, unitInterval } from './assertion-kinds.js';
import { DURATION_EXPECTED, DURATION_HINT, tryParseDuration } from './duration.js';
import { PatternError, patternProblem } from './pattern.js';

// ---------------------------------------------------------------------------------------------
// The normalised types
// ---------------------------------------------------------------------------------------------

/**
 * The manifest's retry policy, defaults filled in: the engine's `RetryPolicy` with every field
 * present.
 */
export type ResolvedRetryPolicy = Required<RetryPolicy>;

/** The seeds' `ExecutionPolicy`. */
export interface ExecutionPolicy {
  /** Attempts running at once: the ceiling of the adaptive pace. @default 10 */
  readonly concurrency: number;
  /**
   * Adaptive pace: a target that refuses without Retry-After lowers the effective concurrency
   * (then the rate), clean answers raise it back to `concurrency`. @default true
   */
  readonly adaptive: boolean;
  /** The floor of the adaptive concurrency. @default 1 */
  readonly minConcurrency?: number;
  /** Batch mode (the seeds' `batch_size`): admit this many, wait for all, back off. Absent: a sliding window. */
  readonly batchSize?: number;
  /** The seeds' `execution_policy.backoff_seconds`: the pause between batches. @default 0 */
  readonly backoffMs: number;
  /** Per-attempt timeout. Absent: none. */
  readonly timeoutMs?: number;
  readonly rateControl?: Required<RateLimit>;
  /** LLM tokens per minute (`rate_control.tokens_per_minute`), reserved and reconciled. */
  readonly tokensPerMinute?: number;
  readonly retryPolicy: ResolvedRetryPolicy;
  /** Stop rules; `stop_conditions.timeout` is the run deadline, `deadlineMs`. */
  readonly stopConditions: Pick<
    StopConditions,
    'maxFailures' | 'deadlineMs' | 'maxCost' | 'maxTokens'
  >;
}

/** A Dify app, called through its Service API. */
export interface DifyTargetConfig {
  readonly type: 'dify';
  /** @default 'https://api.dify.ai/v1' */
  readonly baseUrl: string;
  /** The app key (`app-...`). A secret: see `RunManifest.secrets`. */
  readonly apiKey: string;
  /** Which endpoint: `/workflows/run`, `/chat-messages` or `/completion-messages`. @default 'workflow' */
  readonly app: 'workflow' | 'chat' | 'completion';
  /** @default 'streaming' (Dify's blocking mode cannot be stopped and hits gateway timeouts) */
  readonly responseMode: 'blocking' | 'streaming';
  /** Dify's end-user id, required by the API. @default 'stride' */
  readonly user: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** An OpenAI-compatible chat completions endpoint. */
export interface OpenAiTargetConfig {
  readonly type: 'openai';
  /** @default 'https://api.openai.com/v1' */
  readonly baseUrl: string;
  /** Optional: local servers often need none. A secret. */
  readonly apiKey?: string;
  readonly model: string;
  /** A system prompt sent before each case. */
  readonly system?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** Absent: blocking (the target's default). Streaming asks for `include_usage`. */
  readonly responseMode?: 'blocking' | 'streaming';
  /** Prices per million tokens, to report a cost; without them the cost is unknown. */
  readonly pricePerMillion?: { readonly input: number; readonly output: number };
  readonly headers?: Readonly<Record<string, string>>;
}

/** Any HTTP endpoint: the case's `inputs` are sent as the JSON body. */
export interface HttpTargetConfig {
  readonly type: 'http';
  readonly url: string;
  /** @default 'POST' */
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly headers?: Readonly<Record<string, string>>;
}

/** A function the library user registers under a name. */
export interface FunctionTargetConfig {
  readonly type: 'function';
  readonly name: string;
}

/** What the cases are sent to. */
export type TargetConfig =
  | DifyTargetConfig
  | OpenAiTargetConfig
  | HttpTargetConfig
  | FunctionTargetConfig;

/** What a custom assertion function receives. */
export interface AssertionContext {
  /** The target's output: for Dify workflows the `outputs` object, for chat apps the answer. */
  readonly output: unknown;
  readonly latencyMs?: number;
  readonly tokens?: number;
  readonly cost?: number;
  /** The case, when the caller passes it. */
  readonly testCase?: TestCase;
}

/** What a custom assertion returns: a verdict, or a verdict with details. */
export type CustomAssertionResult =
  | boolean
  | { readonly passed: boolean; readonly message?: string; readonly actual?: unknown };

export type CustomAssertionFn = (
  ctx: AssertionContext,
) => CustomAssertionResult | Promise<CustomAssertionResult>;

/**
 * One check of a case's result. `field` picks a part of an object output (a path such as
 * `answer` or `data.items[0]`); without it, text checks see the whole output (see
 * `evaluateAssertions` for how an object becomes text).
 */
export type Assertion = AssertionKind & AssertionWeight;

/**
 * What every assertion may carry: its share of the case's score and whether the case fails
 * whatever its score when this one fails (see `caseVerdict`).
 */
export interface AssertionWeight {
  /** Share of the case's score (a weighted mean). @default 1 */
  readonly weight?: number;
  /** With a case `threshold`: the case fails when this assertion fails, whatever its score. */
  readonly required?: true;
}

/** `similar`'s threshold when the plan gives none (issue #20 item 2). */
export const SIMILAR_THRESHOLD = 0.8;
/** The grader's embeddings model when `grader.embedding_model` is not given. */
export const DEFAULT_EMBEDDING_MODEL = 'text-embedding-3-small';

/** The assertion kinds, without the weight and required flag every one may carry. */
export type AssertionKind =
  | { readonly type: 'equals'; readonly value: unknown; readonly field?: string }
  | {
      readonly type: 'starts_with';
      readonly value: string;
      readonly field?: string;
      readonly ignoreCase?: true;
    }
  | {
      readonly type: 'contains_all' | 'contains_any';
      readonly values: readonly string[];
      readonly field?: string;
      readonly ignoreCase?: true;
    }
  | {
      readonly type: 'levenshtein_below';
      readonly value: string;
      /** Passes when the edit distance is below this. */
      readonly distance: number;
      readonly field?: string;
    }
  | { readonly type: 'json_schema'; readonly schema: unknown; readonly field?: string }
  | {
      readonly type: 'llm_rubric';
      /** What the grader checks the answer against. */
      readonly rubric: string;
      /** Passes when the grader's score reaches it; absent: when the grader says pass. */
      readonly threshold?: number;
      /** Another model of the plan's grader, for this assertion. */
      readonly model?: string;
      readonly field?: string;
    }
  | {
      /**
       * Cosine similarity of the embeddings of the output and `value`, from the grader's
       * `/v1/embeddings` (issue #20 item 2). The score is the cosine; it passes when the score
       * reaches `threshold`.
       */
      readonly type: 'similar';
      readonly value: string;
      /** 0..1. @default 0.8 */
      readonly threshold: number;
      readonly field?: string;
    }
  | {
      readonly type: 'assert_module';
      /** As written: relative to the plan file's directory (`RunManifest.baseDir`). */
      readonly module: string;
      readonly export: string;
      readonly field?: string;
    }
  | {
      readonly type: 'contains' | 'not_contains';
      readonly value: string;
      readonly field?: string;
      readonly ignoreCase?: true;
    }
  | {
      readonly type: 'regex';
      readonly pattern: string;
      readonly field?: string;
      readonly ignoreCase?: true;
    }
  | { readonly type: 'is_json'; readonly field?: string }
  | {
      readonly type: 'json_path';
      readonly path: string;
      readonly equals: unknown;
      readonly field?: string;
    }
  | { readonly type: 'latency_below'; readonly ms: number }
  | { readonly type: 'cost_below'; readonly value: number }
  | { readonly type: 'tokens_below'; readonly value: number }
  /** Only from the library API: a plan file cannot hold a function. */
  | { readonly type: 'custom'; readonly name: string; readonly fn: CustomAssertionFn };

/** The seeds' `TestCase`. */
export interface TestCase {
  /**
   * Stable identity: given, or derived from inputs, dataset and scenario (`deriveCaseId`). With
   * `select.repeat: N > 1`, each copy gets `#1`..`#N` appended (`refund-1#2`).
   */
  readonly id: string;
  /** Sent to the target as they are (Dify's `inputs`). */
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly dataset?: string;
  readonly scenario?: string;
  readonly tags: readonly string[];
  /** Higher runs first among cases ready together. @default 0 */
  readonly priority: number;
  /** Per-attempt timeout for this case, overriding the plan's. */
  readonly timeoutMs?: number;
  readonly expected: readonly Assertion[];
  /**
   * The score (weighted mean of the assertions' scores, 0..1) the case needs to pass, with
   * every `required` assertion passing. Absent: every assertion must pass.
   */
  readonly threshold?: number;
  /** Free-form data carried into results. */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** With `select.repeat > 1`: which copy this is (1-based). */
  readonly repeatIndex?: number;
}

export type CaseFileFormat = 'jsonl' | 'csv' | 'json';

/** Where a dataset's cases come from. */
export type CasesSource =
  | { readonly kind: 'inline'; readonly cases: readonly TestCase[] }
  | {
      readonly kind: 'file';
      /** As written in the plan; relative paths resolve against `RunManifest.baseDir`. */
      readonly path: string;
      readonly format: CaseFileFormat;
    };

/** A named set of cases (the seeds' dataset), with a weight in the interleaved order. */
export interface DatasetSpec {
  /** Absent for a plan's plain `cases:`. Cases without their own `dataset` get this one. */
  readonly name?: string;
  /** Share of the interleaved order when several datasets stream together. @default 1 */
  readonly weight: number;
  /** Default scenario for its cases. */
  readonly scenario?: string;
  /** Default priority for its cases. */
  readonly priority?: number;
  readonly cases: CasesSource;
}

/** Which cases run, applied while streaming. */
export interface Selection {
  /** Keep cases with at least one of these tags. */
  readonly tags?: readonly string[];
  /** Drop cases with any of these tags. */
  readonly excludeTags?: readonly string[];
  /** 1-based, inclusive positions after the tag filter. */
  readonly range?: { readonly from: number; readonly to?: number };
  /** A seeded random sample of `size` cases (reservoir sampling; the stream order is kept). */
  readonly sample?: { readonly size: number; readonly seed: number };
  /** Run each selected case this many times. @default 1 */
  readonly repeat: number;
}

/** A value that is a credential, so reports and `printPlan` never show it. */
export interface SecretRef {
  /** Path in the manifest, e.g. `['target', 'apiKey']`. */
  readonly path: readonly string[];
  /** The `${VAR}` text it came from, if it did; printed instead of the value. */
  readonly template?: string;
}

/** The seeds' `RunManifest`: a test plan, validated and normalised. */
export interface RunManifest {
  /** The seeds' key: names the plan (and its runs). */
  readonly workflowId: string;
  readonly description?: string;
  /** Absent in a seed-style manifest; a runner then needs a target from elsewhere. */
  readonly target?: TargetConfig;
  /** One entry for a plain `cases:`; one per entry of `datasets:`. */
  readonly datasets: readonly DatasetSpec[];
  readonly executionPolicy: ExecutionPolicy;
  readonly select: Selection;
  readonly secrets: readonly SecretRef[];
  /** The plan file, as named to `loadPlan` / `parsePlan({ file })`; used in messages. */
  readonly file?: string;
  /** The directory case file paths resolve against. */
  readonly baseDir: string;
  /** The plan's `grader:`, which `llm_rubric` assertions need (issue #20). */
  readonly grader?: GraderConfig;
}

/**
 * The plan's `grader:`: an OpenAI-compatible model that grades `llm_rubric` assertions, with its
 * own concurrency, rate limit, retry policy and rate bucket key, so grading never eats the app's
 * limit.
 */
export interface GraderConfig {
  /** The chat model that grades, as an openai target. */
  readonly target: OpenAiTargetConfig;
  /** The rate bucket key of grader calls. @default 'grader' */
  readonly key: string;
  /** The model of `similar`'s `/v1/embeddings` calls. @default 'text-embedding-3-small' */
  readonly embeddingModel: string;
  /** Concurrency, rate limit, retry policy and timeout of grader calls (defaults as a run's). */
  readonly policy: ExecutionPolicy;
}

// ---------------------------------------------------------------------------------------------
// Building blocks with user-facing "expected ..." messages
// ---------------------------------------------------------------------------------------------

const NUMERIC = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Numbers may be written as strings, so that `${VAR}` (always a string) can give one. */
function numeric<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (typeof v === 'string' && NUMERIC.test(v) ? Number(v) : v), schema);
}

/** Converts a validated number-or-numeric-string. */
export function toNumber(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

function int(min?: number) {
  const expected = min === undefined ? 'an integer' : `an integer >= ${min}`;
  const base = z.number({ error: expected }).int({ error: expected });
  return numeric(min === undefined ? base : base.min(min, { error: expected }));
}

function num(bound: { gt?: number; gte?: number; lte?: number }) {
  const parts: string[] = [];
  if (bound.gt !== undefined) parts.push(`> ${bound.gt}`);
  if (bound.gte !== undefined) parts.push(`>= ${bound.gte}`);
  if (bound.lte !== undefined) parts.push(`<= ${bound.lte}`);
  const expected = `a number ${parts.join(' and ')}`.trim();
  let s = z.number({ error: expected });
  if (bound.gt !== undefined) s = s.gt(bound.gt, { error: expected });
  if (bound.gte !== undefined) s = s.gte(bound.gte, { error: expected });
  if (bound.lte !== undefined) s = s.lte(bound.lte, { error: expected });
  return numeric(s);
}

function text(expected = 'a non-empty string') {
  return z.string({ error: expected }).min(1, { error: expected });
}

function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `one of ${quoteList(values)}` });
}

function duration(positive: boolean) {
  const expected = positive ? `a duration > 0 ${DURATION_HINT}` : DURATION_EXPECTED;
  return z.custom<number | string>(
    (v) => {
      const ms = tryParseDuration(v);
      return ms !== undefined && (!positive || ms > 0);
    },
    { error: expected },
  );
}

function isHttpUrl(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    const url = new URL(v);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

const httpUrl = z.custom<string>(isHttpUrl, { error: 'an http(s) URL' });

const headers = z.record(
  z.string(),
  z.custom<string | number>((v) => typeof v === 'string' || typeof v === 'number', {
    error: 'a string',
  }),
  { error: 'a mapping of header names to values' },
);

function validJsonPath(v: unknown, field: boolean): boolean {
  if (typeof v !== 'string' || v === '' || (field && v === '$')) return false;
  try {
    parseJsonPath(v);
    return true;
  } catch {
    return false;
  }
}

const jsonPath = z.custom<string>((v) => validJsonPath(v, false), {
  error: 'a JSON path such as "$.data.items[0].name"',
});
const fieldPath = z.custom<string>((v) => validJsonPath(v, true), {
  error: 'a field path such as "answer" or "data.items[0].name"',
});

// Checked by compiling for the linear-time engine the assertion will run on (pattern.ts), so
// a pattern that could hang a run (a backreference, lookaround) is refused before anything runs.
function regexError(v: unknown): PatternError | undefined {
  if (typeof v !== 'string' || v === '') return new PatternError('not a string', false);
  return patternProblem(v);
}

const regex = z.custom<string>((v) => regexError(v) === undefined, {
  error: (issue) => {
    if (typeof issue.input !== 'string' || issue.input === '') {
      return 'a regular expression (a non-empty string)';
    }
    const problem = regexError(issue.input);
    return problem?.unsupported === true
      ? `a regular expression in RE2 syntax (${problem.message}; see docs/plans.md)`
      : `a valid regular expression (${problem?.message})`;
  },
});

function oneOrMany<T extends z.ZodType>(schema: T, expected: string) {
  return z.union([schema, z.array(schema, { error: expected }).min(1, { error: expected })], {
    error: expected,
  });
}

function maxFailuresOk(v: unknown): boolean {
  if (typeof v === 'string') {
    const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v);
    if (pct !== null) return Number(pct[1]) > 0 && Number(pct[1]) < 100;
    if (!NUMERIC.test(v)) return false;
    return maxFailuresOk(Number(v));
  }
  return typeof v === 'number' && ((Number.isInteger(v) && v >= 1) || (v > 0 && v < 1));
}

/** `max_failures`: a count, a fraction 0 < x < 1, or a percentage string `"5%"`. */
export function toMaxFailures(v: unknown): number {
  if (typeof v === 'string') {
    const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v);
    if (pct !== null) return Number(pct[1]) / 100;
  }
  return toNumber(v);
}

// ---------------------------------------------------------------------------------------------
// Raw schemas (the file as written)
// ---------------------------------------------------------------------------------------------

/** Assertion keys of an `expected` mapping, in the order they are documented. */
export const ASSERTION_KEYS = [
  'equals',
  'contains',
  'not_contains',
  'regex',
  'is_json',
  'json_path',
  'latency_below',
  'cost_below',
  'tokens_below',
  ...SCORED_KEYS,
] as const;

const jsonPathCheck = z.strictObject(
  { path: jsonPath, equals: z.unknown() },
  { error: 'a mapping {path, equals}' },
);

const expectShape = {
  field: fieldPath.optional(),
  ignore_case: z.boolean({ error: 'true or false' }).optional(),
  equals: z.unknown().optional(),
  contains: oneOrMany(text(), 'a string or a non-empty list of strings').optional(),
  not_contains: oneOrMany(text(), 'a string or a non-empty list of strings').optional(),
  regex: oneOrMany(regex, 'a regular expression or a non-empty list of them').optional(),
  is_json: z.literal(true, { error: 'true' }).optional(),
  json_path: oneOrMany(jsonPathCheck, 'a mapping {path, equals} or a list of them').optional(),
  latency_below: duration(true).optional(),
  cost_below: num({ gte: 0 }).optional(),
  tokens_below: int(0).optional(),
  ...scoredShape,
};

const expectObject = z
  .strictObject(expectShape, { error: 'a mapping of assertions' })
  .superRefine((v, ctx) => {
    if (!ASSERTION_KEYS.some((k) => k in v)) {
      ctx.addIssue({
        code: 'custom',
        message: `at least one assertion (${ASSERTION_KEYS.join(', ')})`,
      });
    }
  });

const expected = oneOrMany(expectObject, 'a mapping of assertions or a list of them');

const caseShape = {
  id: z.custom<string | number>(
    (v) =>
      (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isSafeInteger(v)),
    { error: 'a non-empty string' },
  ),
  inputs: z.record(z.string(), z.unknown(), { error: 'a mapping (the inputs sent to the target)' }),
  dataset: text(),
  scenario: text(),
  tags: z.array(text(), { error: 'a list of strings' }),
  priority: int(),
  timeout: duration(true),
  expected,
  threshold: unitInterval,
  metadata: z.record(z.string(), z.unknown(), { error: 'a mapping' }),
};

/**
 * A case's `expected` alone: the case reader checks it apart from the case's other keys (which
 * it checks by hand), so a line's expected is validated without the whole case schema.
 */
export const caseExpectedSchema = caseShape.expected;

/** One case, as written in a plan, a JSONL line or a JSON array. */
export const caseSchema = z
  .strictObject(
    {
      id: caseShape.id.optional(),
      inputs: caseShape.inputs.optional(),
      dataset: caseShape.dataset.optional(),
      scenario: caseShape.scenario.optional(),
      tags: caseShape.tags.optional(),
      priority: caseShape.priority.optional(),
      timeout: caseShape.timeout.optional(),
      expected: caseShape.expected.optional(),
      threshold: caseShape.threshold.optional(),
      metadata: caseShape.metadata.optional(),
    },
    { error: 'a case mapping (id, inputs, expected, ...)' },
  )
  .superRefine((v, ctx) => {
    if (typeof v.id === 'string' && v.id.includes('#')) {
      ctx.addIssue({
        code: 'custom',
        path: ['id'],
        message: 'an id without "#" (it separates repeat copies)',
      });
    }
  });
export type RawCase = z.output<typeof caseSchema>;

const CASES_EXPECTED = 'a path to a .jsonl, .csv or .json file, or a list of cases';
const casesField = z.union(
  [
    text(CASES_EXPECTED),
    z.array(caseSchema, { error: CASES_EXPECTED }).min(1, { error: 'a non-empty list of cases' }),
  ],
  { error: CASES_EXPECTED },
);

const FORMATS = ['jsonl', 'csv', 'json'] as const;

const datasetShape = {
  name: text(),
  weight: num({ gt: 0 }).optional(),
  cases: casesField,
  format: oneOf(FORMATS).optional(),
  scenario: text().optional(),
  priority: int().optional(),
};
const datasetSchema = z.strictObject(datasetShape, {
  error: 'a dataset mapping (name, weight, cases)',
});

const difyShape = {
  type: z.literal('dify'),
  base_url: httpUrl.optional(),
  api_key: text(),
  app: oneOf(['workflow', 'chat', 'completion']).optional(),
  response_mode: oneOf(['blocking', 'streaming']).optional(),
  user: text().optional(),
  headers: headers.optional(),
};
const priceShape = { input: num({ gte: 0 }), output: num({ gte: 0 }) };
const openaiShape = {
  type: z.literal('openai'),
  base_url: httpUrl.optional(),
  api_key: text().optional(),
  model: text(),
  system: z.string({ error: 'a string' }).optional(),
  temperature: num({ gte: 0, lte: 2 }).optional(),
  max_tokens: int(1).optional(),
  response_mode: oneOf(['blocking', 'streaming']).optional(),
  price_per_million: z
    .strictObject(priceShape, {
      error: 'a mapping {input, output} of prices per million tokens',
    })
    .optional(),
  headers: headers.optional(),
};
const httpShape = {
  type: z.literal('http'),
  url: httpUrl,
  method: oneOf(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).optional(),
  headers: headers.optional(),
};
const functionShape = { type: z.literal('function'), name: text() };

export const TARGET_TYPES = ['dify', 'openai', 'http', 'function'] as const;

const targetSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject(difyShape),
    z.strictObject(openaiShape),
    z.strictObject(httpShape),
    z.strictObject(functionShape),
  ],
  { error: 'a target mapping with a type' },
);

const rateShape = {
  per_minute: num({ gt: 0 }),
  burst: int(1).optional(),
  tokens_per_minute: num({ gt: 0 }).optional(),
};
const retryShape = {
  max_attempts: int(1).optional(),
  max_rate_limit_retries: int(0).optional(),
  backoff_seconds: duration(false).optional(),
  backoff_multiplier: num({ gte: 1 }).optional(),
  max_backoff_seconds: duration(false).optional(),
  jitter: z
    .custom<'none' | 'full' | 'equal' | boolean>(
      (v) => v === true || v === false || v === 'none' || v === 'full' || v === 'equal',
      { error: 'one of "none", "full", "equal" (or true / false)' },
    )
    .optional(),
};
const stopShape = {
  max_failures: z
    .custom<number | string>(maxFailuresOk, {
      error: 'an integer >= 1 or a fraction 0 < x < 1 (or a percentage such as "5%")',
    })
    .optional(),
  timeout: duration(true).optional(),
  max_cost: num({ gte: 0 }).optional(),
  max_tokens: int(0).optional(),
};
const policyShape = {
  concurrency: int(1).optional(),
  adaptive: z.boolean({ error: 'true or false' }).optional(),
  min_concurrency: int(1).optional(),
  batch_size: int(1).optional(),
  backoff_seconds: duration(false).optional(),
  timeout: duration(true).optional(),
  rate_control: z.strictObject(rateShape, { error: 'a mapping {per_minute, burst}' }).optional(),
  retry_policy: z
    .strictObject(retryShape, { error: 'a mapping {max_attempts, backoff_seconds, ...}' })
    .optional(),
  stop_conditions: z
    .strictObject(stopShape, { error: 'a mapping {max_failures, timeout, ...}' })
    .optional(),
};

const graderShape = {
  base_url: openaiShape.base_url,
  api_key: openaiShape.api_key,
  model: openaiShape.model,
  system: openaiShape.system,
  temperature: openaiShape.temperature,
  max_tokens: openaiShape.max_tokens,
  price_per_million: openaiShape.price_per_million,
  headers: openaiShape.headers,
  embedding_model: openaiShape.model.optional(),
  key: text().optional(),
  concurrency: policyShape.concurrency,
  timeout: policyShape.timeout,
  rate_control: policyShape.rate_control,
  retry_policy: policyShape.retry_policy,
};

const RANGE_EXPECTED = 'a range such as "10-20" or "10-", or a mapping {from, to}';
const RANGE_TEXT = /^\s*(\d+)\s*-\s*(\d*)\s*$/;
const rangeShape = { from: int(1).optional(), to: int(1).optional() };
const rangeSchema = z.union(
  [
    z.custom<string>((v) => typeof v === 'string' && RANGE_TEXT.test(v), {
      error: RANGE_EXPECTED,
    }),
    z.strictObject(rangeShape, { error: RANGE_EXPECTED }),
  ],
  { error: RANGE_EXPECTED },
);
const sampleShape = { size: int(1), seed: int().optional() };
const selectShape = {
  tags: z.array(text(), { error: 'a list of strings' }).optional(),
  exclude_tags: z.array(text(), { error: 'a list of strings' }).optional(),
  range: rangeSchema.optional(),
  sample: z.strictObject(sampleShape, { error: 'a mapping {size, seed}' }).optional(),
  repeat: int(1).optional(),
};

const planShape = {
  workflow_id: text(),
  description: z.string({ error: 'a string' }).optional(),
  target: targetSchema.optional(),
  cases: casesField.optional(),
  datasets: z
    .array(datasetSchema, { error: 'a list of datasets' })
    .min(1, { error: 'a non-empty list of datasets' })
    .optional(),
  execution_policy: z
    .strictObject(policyShape, { error: 'a mapping (concurrency, timeout, ...)' })
    .optional(),
  grader: z
    .strictObject(graderShape, { error: 'a mapping (base_url, model, concurrency, ...)' })
    .optional(),
  select: z
    .strictObject(selectShape, { error: 'a mapping (tags, range, sample, repeat)' })
    .optional(),
};

/** The whole plan file, as written. */
export const planSchema = z.strictObject(planShape, {
  error: 'a mapping (workflow_id, target, cases, execution_policy, ...)',
});
export type RawPlan = z.output<typeof planSchema>;

/** Parses a `select.range` value that the schema accepted. */
export function toRange(v: unknown): { from: number; to?: number } {
  if (typeof v === 'string') {
    const m = RANGE_TEXT.exec(v);
    const from = Number(m?.[1] ?? 1);
    return m?.[2] ? { from, to: Number(m[2]) } : { from };
  }
  const o = (v ?? {}) as { from?: unknown; to?: unknown };
  const from = o.from === undefined ? 1 : toNumber(o.from);
  return o.to === undefined ? { from } : { from, to: toNumber(o.to) };
}

// ---------------------------------------------------------------------------------------------
// Allowed keys, for "did you mean"
// ---------------------------------------------------------------------------------------------

const TARGET_KEYS: Readonly<Record<string, readonly string[]>> = {
  dify: Object.keys(difyShape),
  openai: Object.keys(openaiShape),
  http: Object.keys(httpShape),
  function: Object.keys(functionShape),
};

const SECTION_KEYS: Readonly<Record<string, readonly string[]>> = {
  execution_policy: Object.keys(policyShape),
  grader: Object.keys(graderShape),
  rate_control: Object.keys(rateShape),
  retry_policy: Object.keys(retryShape),
  stop_conditions: Object.keys(stopShape),
  select: Object.keys(selectShape),
  range: Object.keys(rangeShape),
  sample: Object.keys(sampleShape),
  datasets: Object.keys(datasetShape),
  cases: Object.keys(caseShape),
  expected: Object.keys(expectShape),
  json_path: ['path', 'equals'],
  price_per_million: Object.keys(priceShape),
};

/**
 * Keys allowed in the mapping at `path` (a path into a plan, or into one case when
 * `root === 'case'`); `targetType` picks the target's keys.
 */
export function allowedKeysAt(
  path: readonly PropertyKey[],
  root: 'plan' | 'case',
  targetType?: unknown,
): readonly string[] {
  const named = path.filter((p): p is string => typeof p === 'string');
  const last = named[named.length - 1];
  if (last === undefined) return root === 'plan' ? Object.keys(planShape) : Object.keys(caseShape);
  if (last === 'target') {
    const keys = typeof targetType === 'string' ? TARGET_KEYS[targetType] : undefined;
    return keys ?? [...new Set(Object.values(TARGET_KEYS).flat())];
  }
  return SECTION_KEYS[last] ?? [];
}

/** Every key of a plan with its full path, for "this key belongs elsewhere" hints. */
export const PLAN_KEY_PATHS: readonly string[] = (() => {
  const out: string[] = [];
  const add = (prefix: string, keys: readonly string[]) => {
    for (const k of keys) out.push(prefix === '' ? k : `${prefix}.${k}`);
  };
  add('', Object.keys(planShape));
  add('execution_policy', Object.keys(policyShape));
  add('execution_policy.rate_control', Object.keys(rateShape));
  add('execution_policy.retry_policy', Object.keys(retryShape));
  add('execution_policy.stop_conditions', Object.keys(stopShape));
  add('grader', Object.keys(graderShape));
  add('select', Object.keys(selectShape));
  add('target', [...new Set(Object.values(TARGET_KEYS).flat())]);
  return out;
})();

// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

/** Keys sorted, `undefined` dropped: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/**
 * The id of a case that has none: the first 12 hex digits of the sha256 of the canonical JSON of
 * `{dataset, inputs, scenario}`. Expectations are left out, so editing an assertion keeps the id.
 *
 * @example
 * ```ts
 * deriveCaseId({ query: 'hi' }, 'smoke'); // same 12 hex digits on every machine
 * ```
 */
export function deriveCaseId(
  inputs: Readonly<Record<string, unknown>>,
  dataset?: string,
  scenario?: string,
): string {
  return createHash('sha256')
    .update(canonicalJson({ dataset, inputs, scenario }))
    .digest('hex')
    .slice(0, 12);
}

function listOf<T>(value: T | readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

/**
 * Turns a validated `expected` value into assertions. `input` is the value as written: its key
 * order is the assertions' order (zod's output follows the schema's order instead).
 */
export function normaliseExpected(input: unknown): Assertion[] {
  if (input === undefined) return [];
  const out: Assertion[] = [];
  for (const item of listOf<Record<string, unknown>>(input as Record<string, unknown>)) {
    const field = typeof item.field === 'string' ? { field: item.field } : {};
    const ic = item.ignore_case === true ? { ignoreCase: true as const } : {};
    const mods = {
      ...(item.weight === undefined ? {} : { weight: toNumber(item.weight) }),
      ...(item.required === true ? { required: true as const } : {}),
    };
    const from = out.length;
    for (const key of Object.keys(item)) {
      const v = item[key];
      switch (key) {
        case 'starts_with':
          out.push({ type: 'starts_with', value: v as string, ...field, ...ic });
          break;
        case 'contains_all':
        case 'contains_any':
          out.push({ type: key, values: v as string[], ...field, ...ic });
          break;
        case 'levenshtein_below': {
          const l = v as { value: string; distance: unknown };
          out.push({
            type: 'levenshtein_below',
            value: l.value,
            distance: toNumber(l.distance),
            ...field,
          });
          break;
        }
        case 'json_schema':
          out.push({ type: 'json_schema', schema: v, ...field });
          break;
        case 'llm_rubric': {
          const r = (typeof v === 'string' ? { rubric: v } : v) as Obj;
          out.push({
            type: 'llm_rubric',
            rubric: r.rubric as string,
            ...(r.threshold === undefined ? {} : { threshold: toNumber(r.threshold) }),
            ...(r.provider === undefined ? {} : { model: r.provider as string }),
            ...field,
          });
          break;
        }
        case 'similar': {
          const m = (typeof v === 'string' ? { value: v } : v) as Obj;
          out.push({
            type: 'similar',
            value: m.value as string,
            threshold: m.threshold === undefined ? SIMILAR_THRESHOLD : toNumber(m.threshold),
            ...field,
          });
          break;
        }
        case 'assert_module':
          for (const ref of listOf(v as string)) {
            out.push({ type: 'assert_module', ...parseModuleRef(ref), ...field });
          }
          break;
        case 'equals':
          out.push({ type: 'equals', value: v, ...field });
          break;
        case 'contains':
        case 'not_contains':
          for (const s of listOf(v as string)) out.push({ type: key, value: s, ...field, ...ic });
          break;
        case 'regex':
          for (const s of listOf(v as string)) {
            out.push({ type: 'regex', pattern: s, ...field, ...ic });
          }
          break;
        case 'is_json':
          out.push({ type: 'is_json', ...field });
          break;
        case 'json_path':
          for (const jp of listOf(v as { path: string; equals: unknown })) {
            out.push({ type: 'json_path', path: jp.path, equals: jp.equals, ...field });
          }
          break;
        case 'latency_below':
          out.push({ type: 'latency_below', ms: tryParseDuration(v) ?? 0 });
          break;
        case 'cost_below':
          out.push({ type: 'cost_below', value: toNumber(v) });
          break;
        case 'tokens_below':
          out.push({ type: 'tokens_below', value: toNumber(v) });
          break;
        default:
          break;
      }
    }
    // `weight` and `required` apply to every assertion of their mapping, as `field` does.
    if (mods.weight !== undefined || mods.required !== undefined) {
      for (let i = from; i < out.length; i++) out[i] = { ...out[i]!, ...mods };
    }
  }
  return out;
}

/** Defaults a dataset gives its cases. */
export interface CaseDefaults {
  readonly dataset?: string | undefined;
  readonly scenario?: string | undefined;
  readonly priority?: number | undefined;
}

/**
 * Turns a validated case (`input` as written, e.g. a parsed JSONL line) into a TestCase: the
 * dataset's defaults applied, the id given or derived.
 */
export function normaliseCase(
  input: Record<string, unknown>,
  defaults: CaseDefaults = {},
): TestCase {
  const inputs = (input.inputs ?? {}) as Record<string, unknown>;
  const dataset = (input.dataset as string | undefined) ?? defaults.dataset;
  const scenario = (input.scenario as string | undefined) ?? defaults.scenario;
  const id = input.id === undefined ? deriveCaseId(inputs, dataset, scenario) : String(input.id);
  const priority =
    input.priority === undefined ? (defaults.priority ?? 0) : toNumber(input.priority);
  const timeoutMs = input.timeout === undefined ? undefined : tryParseDuration(input.timeout);
  return {
    id,
    inputs,
    ...(dataset === undefined ? {} : { dataset }),
    ...(scenario === undefined ? {} : { scenario }),
    tags: (input.tags as string[] | undefined) ?? [],
    priority,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    expected: normaliseExpected(input.expected),
    ...(input.threshold === undefined ? {} : { threshold: toNumber(input.threshold) }),
    ...(input.metadata === undefined
      ? {}
      : { metadata: input.metadata as Record<string, unknown> }),
  };
}

/** The case file format a path implies, from its extension. */
export function formatFromPath(path: string): CaseFileFormat | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.json')) return 'json';
  return undefined;
}

function stringHeaders(h: Record<string, string | number> | undefined) {
  if (h === undefined) return {};
  return { headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)])) };
}

function normalisePrice(p: Record<string, unknown>): { input: number; output: number } {
  return { input: toNumber(p.input), output: toNumber(p.output) };
}

function normaliseTarget(t: Record<string, unknown>): TargetConfig {
  const h = stringHeaders(t.headers as Record<string, string | number> | undefined);
  switch (t.type) {
    case 'dify':
      return {
        type: 'dify',
        baseUrl: (t.base_url as string | undefined) ?? 'https://api.dify.ai/v1',
        apiKey: t.api_key as string,
        app: (t.app as DifyTargetConfig['app'] | undefined) ?? 'workflow',
        responseMode:
          (t.response_mode as DifyTargetConfig['responseMode'] | undefined) ?? 'streaming',
        user: (t.user as string | undefined) ?? 'stride',
        ...h,
      };
    case 'openai':
      return {
        type: 'openai',
        baseUrl: (t.base_url as string | undefined) ?? 'https://api.openai.com/v1',
        ...(t.api_key === undefined ? {} : { apiKey: t.api_key as string }),
        model: t.model as string,
        ...(t.system === undefined ? {} : { system: t.system as string }),
        ...(t.temperature === undefined ? {} : { temperature: toNumber(t.temperature) }),
        ...(t.max_tokens === undefined ? {} : { maxTokens: toNumber(t.max_tokens) }),
        ...(t.response_mode === undefined
          ? {}
          : { responseMode: t.response_mode as 'blocking' | 'streaming' }),
        ...(t.price_per_million === undefined
          ? {}
          : { pricePerMillion: normalisePrice(t.price_per_million as Record<string, unknown>) }),
        ...h,
      };
    case 'http':
      return {
        type: 'http',
        url: t.url as string,
        method: (t.method as HttpTargetConfig['method'] | undefined) ?? 'POST',
        ...h,
      };
    default:
      return { type: 'function', name: t.name as string };
  }
}

type Obj = Record<string, unknown>;

function normalisePolicy(p: Obj | undefined): ExecutionPolicy {
  const policy = p ?? {};
  const rate = policy.rate_control as Obj | undefined;
  const retry = (policy.retry_policy ?? {}) as Obj;
  const stop = (policy.stop_conditions ?? {}) as Obj;
  const ms = (v: unknown, dflt: number) => (v === undefined ? dflt : (tryParseDuration(v) ?? dflt));
  const jitter = retry.jitter === true ? 'full' : retry.jitter === false ? 'none' : retry.jitter;
  return {
    concurrency: policy.concurrency === undefined ? 10 : toNumber(policy.concurrency),
    adaptive: policy.adaptive !== false,
    ...(policy.min_concurrency === undefined
      ? {}
      : { minConcurrency: toNumber(policy.min_concurrency) }),
    ...(policy.batch_size === undefined ? {} : { batchSize: toNumber(policy.batch_size) }),
    backoffMs: ms(policy.backoff_seconds, 0),
    ...(policy.timeout === undefined ? {} : { timeoutMs: ms(policy.timeout, 0) }),
    ...(rate === undefined
      ? {}
      : {
          rateControl: {
            perMinute: toNumber(rate.per_minute),
            burst: rate.burst === undefined ? 1 : toNumber(rate.burst),
          },
          ...(rate.tokens_per_minute === undefined
            ? {}
            : { tokensPerMinute: toNumber(rate.tokens_per_minute) }),
        }),
    retryPolicy: {
      maxAttempts: retry.max_attempts === undefined ? 3 : toNumber(retry.max_attempts),
      maxRateLimitRetries:
        retry.max_rate_limit_retries === undefined ? 10 : toNumber(retry.max_rate_limit_retries),
      backoffMs: ms(retry.backoff_seconds, 1000),
      backoffMultiplier:
        retry.backoff_multiplier === undefined ? 2 : toNumber(retry.backoff_multiplier),
      maxBackoffMs: ms(retry.max_backoff_seconds, 60_000),
      jitter: (jitter as ResolvedRetryPolicy['jitter'] | undefined) ?? 'none',
    },
    stopConditions: {
      ...(stop.max_failures === undefined ? {} : { maxFailures: toMaxFailures(stop.max_failures) }),
      ...(stop.timeout === undefined ? {} : { deadlineMs: ms(stop.timeout, 0) }),
      ...(stop.max_cost === undefined ? {} : { maxCost: toNumber(stop.max_cost) }),
      ...(stop.max_tokens === undefined ? {} : { maxTokens: toNumber(stop.max_tokens) }),
    },
  };
}

function normaliseSelect(s: Obj | undefined): Selection {
  const sel = s ?? {};
  const sample = sel.sample as Obj | undefined;
  return {
    ...(sel.tags === undefined ? {} : { tags: sel.tags as string[] }),
    ...(sel.exclude_tags === undefined ? {} : { excludeTags: sel.exclude_tags as string[] }),
    ...(sel.range === undefined ? {} : { range: toRange(sel.range) }),
    ...(sample === undefined
      ? {}
      : {
          sample: {
            size: toNumber(sample.size),
            seed: sample.seed === undefined ? 0 : toNumber(sample.seed),
          },
        }),
    repeat: sel.repeat === undefined ? 1 : toNumber(sel.repeat),
  };
}

/** Called for each inline case built, with its path in the plan (for positions in messages). */
export type InlineCaseHook = (testCase: TestCase, path: readonly (string | number)[]) => void;

function normaliseSource(
  cases: unknown,
  format: unknown,
  defaults: CaseDefaults,
  path: (string | number)[],
  onCase: InlineCaseHook | undefined,
): CasesSource {
  if (typeof cases === 'string') {
    return {
      kind: 'file',
      path: cases,
      format: (format as CaseFileFormat | undefined) ?? formatFromPath(cases) ?? 'jsonl',
    };
  }
  const list = (cases as Obj[]).map((c, i) => {
    const tc = normaliseCase(c, defaults);
    onCase?.(tc, [...path, i]);
    return tc;
  });
  return { kind: 'inline', cases: list };
}

/**
 * Builds the manifest from a plan that passed `planSchema` (`input` is the plan as written).
 * Secrets and locations come from the loader.
 */
export function normalisePlan(
  input: Obj,
  context: {
    secrets: readonly SecretRef[];
    file?: string | undefined;
    baseDir: string;
    onInlineCase?: InlineCaseHook;
  },
): RunManifest {
  const datasets: DatasetSpec[] = [];
  if (input.cases !== undefined) {
    datasets.push({
      weight: 1,
      cases: normaliseSource(input.cases, undefined, {}, ['cases'], context.onInlineCase),
    });
  }
  ((input.datasets ?? []) as Obj[]).forEach((d, i) => {
    const defaults: CaseDefaults = {
      dataset: d.name as string,
      scenario: d.scenario as string | undefined,
      priority: d.priority === undefined ? undefined : toNumber(d.priority),
    };
    datasets.push({
      name: d.name as string,
      weight: d.weight === undefined ? 1 : toNumber(d.weight),
      ...(d.scenario === undefined ? {} : { scenario: d.scenario as string }),
      ...(d.priority === undefined ? {} : { priority: toNumber(d.priority) }),
      cases: normaliseSource(
        d.cases,
        d.format,
        defaults,
        ['datasets', i, 'cases'],
        context.onInlineCase,
      ),
    });
  });
  return {
    workflowId: input.workflow_id as string,
    ...(input.description === undefined ? {} : { description: input.description as string }),
    ...(input.target === undefined ? {} : { target: normaliseTarget(input.target as Obj) }),
    datasets,
    executionPolicy: normalisePolicy(input.execution_policy as Obj | undefined),
    select: normaliseSelect(input.select as Obj | undefined),
    secrets: context.secrets,
    ...(context.file === undefined ? {} : { file: context.file }),
    baseDir: context.baseDir,
    ...(input.grader === undefined ? {} : { grader: normaliseGrader(input.grader as Obj) }),
  };
}

function normaliseGrader(g: Obj): GraderConfig {
  const { key, concurrency, timeout, rate_control, retry_policy, embedding_model, ...target } = g;
  return {
    target: normaliseTarget({ ...target, type: 'openai' }) as OpenAiTargetConfig,
    key: (key as string | undefined) ?? 'grader',
    embeddingModel: (embedding_model as string | undefined) ?? DEFAULT_EMBEDDING_MODEL,
    policy: normalisePolicy({ concurrency, timeout, rate_control, retry_policy }),
  };
}
