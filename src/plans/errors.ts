/**
 * Errors of plan and case reading. One class, `PlanError`, carries every problem found (one
 * `PlanIssue` each) so a user fixes a plan in one pass instead of one error per run.
 */

import { describeValue, type ErrorCode, StrideError } from '../core/errors.js';

/** The codes a PlanError can carry. */
export type PlanErrorCode = Extract<
  ErrorCode,
  'PLAN_INVALID' | 'PLAN_NOT_FOUND' | 'CASES_INVALID' | 'ENV_MISSING' | 'EMPTY_PLAN'
>;

/**
 * One problem in a plan or case file. `line` and `column` are 1-based; both are 0 when the
 * problem has no position (a missing file, a case list built in code).
 */
export interface PlanIssue {
  /** The file as the user named it (`examples/chat-app/plan.yaml`), or `<plan>` for text. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** Key path inside the plan (`execution_policy.concurrency`, `cases[3].inputs`), or ''. */
  readonly path: string;
  /** What is wrong, without the position and path prefix. */
  readonly message: string;
  /**
   * The offending value as written in the file. For a value that came from `${VAR}` this is the
   * `${VAR}` template, never the variable's value; for a secret it is `'[redacted]'`.
   */
  readonly value?: unknown;
}

/** `plan.yaml:7:5: execution_policy.concurrency: -3 is invalid, expected an integer >= 1` */
export function formatIssue(issue: PlanIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return `${where}: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`;
}

/** Orders issues by file, then position, so messages read top to bottom. */
export function sortIssues(issues: readonly PlanIssue[]): PlanIssue[] {
  return [...issues].sort(
    (a, b) =>
      (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.column - b.column,
  );
}

/** The message for a value that does not fit: `-3 is invalid, expected an integer >= 1`. */
export function invalidValueMessage(value: unknown, expected: string): string {
  return value === undefined
    ? `missing, expected ${expected}`
    : `${describeValue(value)} is invalid, expected ${expected}`;
}

/**
 * A plan or case file could not be used. `message` lists every issue, one per line, as
 * `file:line:column: key.path: problem`; `issues` has them as data.
 *
 * @example
 * ```ts
 * try { await loadPlan('plan.yaml'); } catch (e) {
 *   if (isStrideError(e) && e.code === 'PLAN_INVALID') console.error(e.message);
 * }
 * ```
 */
export class PlanError extends StrideError {
  readonly issues: readonly PlanIssue[];

  constructor(
    issues: readonly PlanIssue[],
    code: PlanErrorCode = 'PLAN_INVALID',
    options: { cause?: unknown } = {},
  ) {
    const sorted = sortIssues(issues);
    super(code, sorted.map(formatIssue).join('\n'), { ...options, retryable: false });
    this.issues = sorted;
  }
}
