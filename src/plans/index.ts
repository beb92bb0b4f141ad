/**
 * Reading test plans: YAML / JSON plan files, JSONL / CSV / JSON case files, validation with
 * positions, `${VAR}` interpolation, selection, assertions. See docs/plans.md.
 *
 * @example
 * ```ts
 * import { evaluateAssertions, iterateCases, loadPlan } from './plans/index.js';
 *
 * const manifest = await loadPlan('examples/dify-workflow/plan.yaml');
 * for await (const testCase of iterateCases(manifest)) {
 *   const output = await callTarget(testCase.inputs);
 *   const outcomes = evaluateAssertions(testCase.expected, { output, latencyMs: 800 });
 * }
 * ```
 */

export {
  evalJsonPath,
  type JsonPathResult,
  type JsonPathSegment,
  parseJsonPath,
} from '../core/index.js';
export {
  type AssertionInput,
  type AssertionOutcome,
  type CaseVerdict,
  caseVerdict,
  customAssertion,
  type EvaluateOptions,
  evaluateAssertions,
  evaluateAssertionsAsync,
  textOf,
} from './assertions.js';
export {
  type CaseStats,
  checkCases,
  type IterateCasesOptions,
  iterateCases,
  type ReadCasesOptions,
  readCases,
} from './cases.js';
export { DURATION_EXPECTED, formatDuration, parseDuration, tryParseDuration } from './duration.js';
export {
  type Env,
  type Interpolation,
  interpolate,
  REDACTED,
  redact,
  redactLiterals,
  redactUrl,
  setIn,
} from './env.js';
export { formatIssue, PlanError, type PlanErrorCode, type PlanIssue } from './errors.js';
export { type LoadPlanOptions, loadPlan, type ParsePlanOptions, parsePlan } from './load.js';
export { type CompiledPattern, compilePattern, PatternError, patternProblem } from './pattern.js';
export { type PrintPlanOptions, printPlan } from './print.js';
export {
  cosineSimilarity,
  type Embedding,
  GRADER_SYSTEM,
  type Grade,
  type GradeRequest,
  type Grader,
  type GradeUsage,
  gradingPrompt,
  parseVerdict,
  unparsableGrade,
  type Verdict,
} from './rubric.js';
export {
  type Assertion,
  type AssertionContext,
  type CaseFileFormat,
  type CasesSource,
  type CustomAssertionFn,
  type CustomAssertionResult,
  canonicalJson,
  type DatasetSpec,
  type DifyTargetConfig,
  deriveCaseId,
  type ExecutionPolicy,
  type FunctionTargetConfig,
  type GraderConfig,
  type HttpTargetConfig,
  type OpenAiTargetConfig,
  planSchema,
  type ResolvedRetryPolicy,
  type RunManifest,
  type SecretRef,
  type Selection,
  type TargetConfig,
  type TestCase,
} from './schema.js';
