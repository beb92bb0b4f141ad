/**
 * How journal entries, results and attempts become rows and back: shared by every store so that
 * they keep (and give back) exactly the same thing. A row here is what the SQLite tables hold.
 */

import { type ErrorInfo, InvalidOptionError } from '../core/errors.js';
import {
  type CancelReason,
  isTerminal,
  type TaskResult,
  type TaskStatus,
  type TaskTransition,
  type TerminalStatus,
} from '../core/model.js';
import type {
  AttemptRecord,
  AttemptState,
  JournalBatch,
  NewRun,
  ResultsOptions,
  ResumeState,
  Retention,
  RunCounts,
  RunEnd,
  StoredTransition,
  UnfinishedCase,
  UpstreamIds,
} from './port.js';
import { RUN_ID_EXPECTED, runIdProblem, STORED_RUN_ID_MAX_LENGTH } from './run-id.js';

/** A case's terminal result, as stored; its final attempt is folded in when it ended the case. */
export interface ResultRow {
  case_id: string;
  repeat_index: number | null;
  status: string;
  attempts: number;
  priority: number;
  started_at: number | null;
  finished_at: number | null;
  execution_ms: number;
  error_code: string | null;
  error_name: string | null;
  error_message: string | null;
  error_status: number | null;
  /** JSON of the CancelReason. */
  reason: string | null;
  tokens: number;
  cost: number;
  /** 1: `cost` is a partial sum, the case's cost is unknown (TaskResult.usage.costUnknown). */
  cost_unknown: number;
  /** JSON; NULL for undefined. */
  input: string | null;
  output: string | null;
  /** The final attempt, when the case's last transition ended it (NULL otherwise). */
  attempt_started_at: number | null;
  attempt_tokens: number | null;
  attempt_cost: number | null;
  upstream: string | null;
}

/** An attempt, as stored. */
export interface AttemptRow {
  case_id: string;
  number: number;
  started_at: number;
  ended_at: number;
  state: string;
  error_code: string | null;
  error_name: string | null;
  error_message: string | null;
  error_status: number | null;
  tokens: number;
  cost: number;
  upstream: string | null;
}

/**
 * JSON text of a value, NULL for undefined. A value JSON cannot hold (a cycle, a BigInt) is kept
 * as a description instead of failing the whole batch: the journal must not lose the rest.
 */
export function toJson(value: unknown): string | null {
  if (value === undefined) return null;
  try {
    return JSON.stringify(value) ?? null;
  } catch (err) {
    return JSON.stringify({ unserializable: err instanceof Error ? err.message : String(err) });
  }
}

function fromJson(text: string | null): unknown {
  return text === null ? undefined : JSON.parse(text);
}

function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/**
 * One transition as a JSON array: `[caseId, from, to, at, attempt]`, plus a detail object for
 * the transitions that carry one (`{"retry":true}`, `{"retryInMs":..,"error":..}`,
 * `{"error":..}`, `{"reason":..}`). `at` is written as whole microseconds after `baseAt` (the
 * batch's first transition): a small integer formats several times faster than a clock time,
 * and this runs once per transition. The journal's times are thus kept to the microsecond.
 */
function encodeTransition(t: TaskTransition, baseAt: number): string {
  const head = `[${JSON.stringify(t.taskId)},"${t.from}","${t.to}",${num(Math.round((t.at - baseAt) * 1000))},${t.attempt}`;
  switch (t.to) {
    case 'queued':
      return t.retry ? `${head},{"retry":true}]` : `${head}]`;
    case 'pending':
      return `${head},{"retryInMs":${num(t.retryInMs)},"error":${JSON.stringify(t.error)}}]`;
    case 'running':
    case 'succeeded':
      return `${head}]`;
    case 'cancelled':
      return `${head},{"reason":${JSON.stringify(t.reason)}}]`;
    default:
      return `${head},{"error":${JSON.stringify(t.error)}}]`;
  }
}

/** A batch of transitions as one journal row: its base time and its JSON array. */
export function encodeBatch(transitions: readonly TaskTransition[]): {
  baseAt: number;
  entries: string;
} {
  const first = transitions[0];
  const baseAt = first === undefined || !Number.isFinite(first.at) ? 0 : first.at;
  let entries = '[';
  for (let i = 0; i < transitions.length; i++) {
    if (i > 0) entries += ',';
    entries += encodeTransition(transitions[i]!, baseAt);
  }
  return { baseAt, entries: `${entries}]` };
}

type Encoded = [string, TaskStatus, TaskStatus, number, number, Record<string, unknown>?];

/** The transitions of one journal row. */
export function decodeTransitions(entries: string, baseAt: number): StoredTransition[] {
  const list = JSON.parse(entries) as Encoded[];
  const out: StoredTransition[] = [];
  for (const [taskId, from, to, offset, attempt, detail] of list) {
    const base = { taskId, from, at: baseAt + offset / 1000, attempt };
    switch (to) {
      case 'queued':
        out.push({ ...base, to, retry: detail?.retry === true });
        break;
      case 'pending':
        out.push({
          ...base,
          to,
          retryInMs: detail?.retryInMs as number,
          error: detail?.error as ErrorInfo,
        });
        break;
      case 'running':
      case 'succeeded':
        out.push({ ...base, to });
        break;
      case 'cancelled':
        out.push({ ...base, to, reason: detail?.reason as CancelReason });
        break;
      default:
        out.push({ ...base, to, error: detail?.error as ErrorInfo });
    }
  }
  return out;
}

const UPSTREAM: readonly (readonly [string, string])[] = [
  ['workflow_run_id', 'workflowRunId'],
  ['task_id', 'taskId'],
  ['message_id', 'messageId'],
  ['conversation_id', 'conversationId'],
];

function collectIds(value: object): Record<string, string> | undefined {
  let found: Record<string, string> | undefined;
  const v = value as Record<string, unknown>;
  for (const [snake, camel] of UPSTREAM) {
    const id = v[snake] ?? v[camel];
    if (typeof id !== 'string' || id === '') continue;
    found ??= {};
    found[snake] = id;
  }
  return found;
}

/**
 * The ids a target's output carries for the request it made (Dify's `workflow_run_id`,
 * `task_id`, `message_id`, `conversation_id`, in either spelling), also inside a test plan's
 * CaseOutcome (`{ output, assertions }`). Undefined when there are none.
 */
export function upstreamIds(output: unknown): UpstreamIds | undefined {
  if (typeof output !== 'object' || output === null) return undefined;
  const found = collectIds(output);
  if (found !== undefined) return found;
  const inner = (output as { output?: unknown }).output;
  return typeof inner === 'object' && inner !== null ? collectIds(inner) : undefined;
}

/** The state an attempt that failed with this error code ended in. */
export function attemptStateOf(error: ErrorInfo): AttemptState {
  if (error.code === 'TIMEOUT') return 'timeout';
  if (error.code === 'TASK_FAILED') return 'failed';
  return 'error';
}

export function repeatIndexOf(input: unknown): number | null {
  const r = (input as { repeatIndex?: unknown } | null | undefined)?.repeatIndex;
  return typeof r === 'number' ? r : null;
}

/** True when `attempt` is the one that ended the case with this terminal transition. */
function endsCase(attempt: AttemptRecord | undefined, t: TaskTransition): boolean {
  return (
    attempt !== undefined &&
    t.from === 'running' &&
    attempt.number === t.attempt &&
    attempt.state === t.to &&
    attempt.endedAt === t.at
  );
}

/** A terminal result as a row, with its final attempt folded in if given. */
export function toResultRow(result: TaskResult, final: AttemptRecord | undefined): ResultRow {
  const e = result.error;
  return {
    case_id: result.id,
    repeat_index: repeatIndexOf(result.input),
    status: result.status,
    attempts: result.attempts,
    priority: result.priority,
    started_at: result.startedAt ?? null,
    finished_at: result.finishedAt ?? null,
    execution_ms: result.executionTimeMs,
    error_code: e?.code ?? null,
    error_name: e?.name ?? null,
    error_message: e?.message ?? null,
    error_status: e?.status ?? null,
    reason: result.reason === undefined ? null : JSON.stringify(result.reason),
    tokens: result.usage.tokens,
    cost: result.usage.cost,
    cost_unknown: result.usage.costUnknown === true ? 1 : 0,
    input: toJson(result.input),
    output: toJson(result.output),
    attempt_started_at: final?.startedAt ?? null,
    attempt_tokens: final?.usage.tokens ?? null,
    attempt_cost: final?.usage.cost ?? null,
    upstream: final?.upstream === undefined ? null : JSON.stringify(final.upstream),
  };
}

function errorOf(
  code: string | null,
  name: string | null,
  message: string | null,
  status: number | null,
): ErrorInfo | undefined {
  if (code === null) return undefined;
  const info: ErrorInfo = { code, name: name ?? '', message: message ?? '' };
  if (status !== null) info.status = status;
  return info;
}

/** A result row back as the engine's TaskResult. */
export function fromResultRow(row: ResultRow): TaskResult {
  return {
    id: row.case_id,
    status: row.status as TerminalStatus,
    input: fromJson(row.input),
    priority: row.priority,
    attempts: row.attempts,
    output: fromJson(row.output),
    error: errorOf(row.error_code, row.error_name, row.error_message, row.error_status),
    reason: fromJson(row.reason) as CancelReason | undefined,
    usage:
      row.cost_unknown === 1
        ? { tokens: row.tokens, cost: row.cost, costUnknown: true }
        : { tokens: row.tokens, cost: row.cost },
    startedAt: row.started_at ?? undefined,
    finishedAt: row.finished_at ?? undefined,
    executionTimeMs: row.execution_ms,
  };
}

/** The final attempt folded into a result row, if there is one. */
export function finalAttemptOf(row: ResultRow): AttemptRecord | undefined {
  if (row.attempt_started_at === null) return undefined;
  return {
    caseId: row.case_id,
    number: row.attempts,
    startedAt: row.attempt_started_at,
    endedAt: row.finished_at ?? row.attempt_started_at,
    state: row.status as AttemptState,
    // A cancelled case may still carry the error of an earlier attempt; its last one had none.
    error:
      row.status === 'cancelled'
        ? undefined
        : errorOf(row.error_code, row.error_name, row.error_message, row.error_status),
    usage: { tokens: row.attempt_tokens ?? 0, cost: row.attempt_cost ?? 0 },
    upstream: fromJson(row.upstream) as UpstreamIds | undefined,
  };
}

export function toAttemptRow(a: AttemptRecord): AttemptRow {
  const e = a.error;
  return {
    case_id: a.caseId,
    number: a.number,
    started_at: a.startedAt,
    ended_at: a.endedAt,
    state: a.state,
    error_code: e?.code ?? null,
    error_name: e?.name ?? null,
    error_message: e?.message ?? null,
    error_status: e?.status ?? null,
    tokens: a.usage.tokens,
    cost: a.usage.cost,
    upstream: a.upstream === undefined ? null : JSON.stringify(a.upstream),
  };
}

export function fromAttemptRow(row: AttemptRow): AttemptRecord {
  return {
    caseId: row.case_id,
    number: row.number,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    state: row.state as AttemptState,
    error: errorOf(row.error_code, row.error_name, row.error_message, row.error_status),
    usage: { tokens: row.tokens, cost: row.cost },
    upstream: fromJson(row.upstream) as UpstreamIds | undefined,
  };
}

/** Orders strings by code point, as SQLite's BINARY collation orders UTF-8 text. */
function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Orders attempts by case id, then number: the order `Store.attempts` promises. */
export function compareAttempts(a: AttemptRecord, b: AttemptRecord): number {
  return compareCodePoints(a.caseId, b.caseId) || a.number - b.number;
}

/**
 * Replays a journal to find the cases that are not terminal at its end, and the attempts of the
 * cases still to run that do not count against max_attempts. Only live cases (and aborted ones)
 * are held, so memory follows the run's lookahead, not its size.
 */
export class UnfinishedTracker {
  private readonly live = new Map<
    string,
    { status: TaskStatus; attempts: number; since: number }
  >();
  /**
   * Per case without a verdict: attempts a pause interrupted (back to `queued` from `running`
   * with the same count) or a cancel aborted in flight (`cancelled` from `running`, same count).
   * Both were the run's decision, so neither spends the case's budget; a maybe-sent one does.
   * Nor does a refusal (retried after a 429: `pending` with code RATE_LIMITED).
   */
  private readonly unspent = new Map<string, number>();

  add(t: StoredTransition): void {
    const entry = this.live.get(t.taskId);
    // A start withdrawn before anything was sent has a lower count: that is no attempt.
    const aborted = t.from === 'running' && entry !== undefined && t.attempt === entry.attempts;
    if (isTerminal(t.to)) {
      this.live.delete(t.taskId);
      if (t.to !== 'cancelled') this.unspent.delete(t.taskId);
      else if (aborted) this.unspent.set(t.taskId, (this.unspent.get(t.taskId) ?? 0) + 1);
      return;
    }
    if (aborted && t.to === 'queued')
      this.unspent.set(t.taskId, (this.unspent.get(t.taskId) ?? 0) + 1);
    // A 429 turned the attempt away before any work: not spent either (Run's refusals).
    if (t.to === 'pending' && t.error.code === 'RATE_LIMITED')
      this.unspent.set(t.taskId, (this.unspent.get(t.taskId) ?? 0) + 1);
    // The latest event's attempt count is the truth: a start withdrawn before anything was sent
    // (a pause between "chosen" and "started") gives its attempt back.
    if (entry === undefined)
      this.live.set(t.taskId, { status: t.to, attempts: t.attempt, since: t.at });
    else {
      entry.status = t.to;
      entry.attempts = t.attempt;
      entry.since = t.at;
    }
  }

  result(): Pick<ResumeState, 'unfinished' | 'unspent'> {
    const unfinished: UnfinishedCase[] = [];
    for (const [caseId, e] of this.live) {
      unfinished.push({
        caseId,
        status: e.status,
        attempts: e.attempts,
        maybeSent: e.status === 'running',
        since: e.since,
      });
    }
    return { unfinished, unspent: this.unspent };
  }
}

type TerminalTransition = Extract<TaskTransition, { readonly result: TaskResult }>;

/** True for the transitions that end a case (they carry its TaskResult). */
function isTerminalTransition(t: TaskTransition): t is TerminalTransition {
  return isTerminal(t.to);
}

/**
 * Walks a batch the way every store keeps it: each terminal transition becomes a result, with
 * the attempt that ended the case folded in; every other attempt is kept on its own.
 *
 * The journal lists ended attempts in the order of the transitions that end them, so one pass
 * over both pairs them (no lookup per case). Attempts that do not line up (appended by other
 * callers, or out of order) are kept on their own, unfolded: nothing is lost either way.
 */
export function foldBatch(
  batch: JournalBatch,
  onResult: (result: TaskResult, final: AttemptRecord | undefined) => void,
  onAttempt: (attempt: AttemptRecord) => void,
): void {
  const attempts = batch.attempts;
  let j = 0;
  for (const t of batch.transitions) {
    const terminal = isTerminalTransition(t);
    if (t.from === 'running') {
      const a = attempts[j];
      if (a !== undefined && a.caseId === t.taskId && a.endedAt === t.at) {
        j++;
        if (terminal && endsCase(a, t)) {
          onResult(t.result, a);
          continue;
        }
        onAttempt(a);
      }
    }
    if (terminal) onResult(t.result, undefined);
  }
  for (; j < attempts.length; j++) onAttempt(attempts[j]!);
}

const KINDS = new Set(['test', 'action']);

function requireString(value: unknown, field: string, nonEmpty: boolean): void {
  if (typeof value !== 'string' || (nonEmpty && value === '')) {
    throw new InvalidOptionError(field, value, nonEmpty ? 'a non-empty string' : 'a string');
  }
}

/** Throws InvalidOptionError naming the first bad field of a NewRun. */
export function validateNewRun(run: NewRun): void {
  if (typeof run !== 'object' || run === null)
    throw new InvalidOptionError('run', run, 'an object');
  const idProblem = runIdProblem(run.id, STORED_RUN_ID_MAX_LENGTH);
  if (idProblem !== undefined)
    throw new InvalidOptionError(
      'run.id',
      run.id,
      `${RUN_ID_EXPECTED}, at most ${STORED_RUN_ID_MAX_LENGTH} characters; it ${idProblem}`,
    );
  if (!KINDS.has(run.kind))
    throw new InvalidOptionError('run.kind', run.kind, "'test' or 'action'");
  requireString(run.plan, 'run.plan', false);
  requireString(run.planHash, 'run.planHash', false);
  requireString(run.planJson, 'run.planJson', false);
  requireString(run.optionsJson, 'run.optionsJson', false);
  if (typeof run.startedAt !== 'number' || !Number.isFinite(run.startedAt)) {
    throw new InvalidOptionError('run.startedAt', run.startedAt, 'epoch milliseconds');
  }
  if (
    run.clockOffsetMs !== undefined &&
    (typeof run.clockOffsetMs !== 'number' || !Number.isFinite(run.clockOffsetMs))
  ) {
    throw new InvalidOptionError('run.clockOffsetMs', run.clockOffsetMs, 'a finite number');
  }
  if (run.parentId !== undefined) requireString(run.parentId, 'run.parentId', true);
}

/** Throws InvalidOptionError for a bad Retention. */
export function validateRetention(r: Retention): void {
  if (typeof r !== 'object' || r === null) {
    throw new InvalidOptionError('retention', r, 'an object { maxAgeMs?, maxRuns? }');
  }
  if (r.maxAgeMs !== undefined && !(Number.isFinite(r.maxAgeMs) && r.maxAgeMs >= 0)) {
    throw new InvalidOptionError('retention.maxAgeMs', r.maxAgeMs, 'a number >= 0');
  }
  if (r.maxRuns !== undefined && !(Number.isInteger(r.maxRuns) && r.maxRuns >= 0)) {
    throw new InvalidOptionError('retention.maxRuns', r.maxRuns, 'an integer >= 0');
  }
  if (r.now !== undefined && !Number.isFinite(r.now)) {
    throw new InvalidOptionError('retention.now', r.now, 'epoch milliseconds');
  }
}

/** Throws InvalidOptionError for a bad `listRuns` limit. */
export function validateLimit(limit: unknown): void {
  if (limit !== undefined && !(Number.isInteger(limit) && (limit as number) >= 0)) {
    throw new InvalidOptionError('limit', limit, 'an integer >= 0');
  }
}

/**
 * A `results` page, checked: `offset` and `limit` are integers >= 0 (InvalidOptionError naming
 * `results.offset` / `results.limit` otherwise).
 */
export function pageOf(options: ResultsOptions): { offset: number; limit: number | undefined } {
  const { offset = 0, limit } = options;
  if (!(Number.isInteger(offset) && offset >= 0)) {
    throw new InvalidOptionError('results.offset', offset, 'an integer >= 0');
  }
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new InvalidOptionError('results.limit', limit, 'an integer >= 0');
  }
  return { offset, limit };
}

/** Throws InvalidOptionError for a bad RunEnd. */
export function validateRunEnd(end: RunEnd): void {
  const statuses = ['completed', 'cancelled', 'stopped', 'interrupted'];
  if (typeof end !== 'object' || end === null || !statuses.includes(end.status)) {
    throw new InvalidOptionError('end.status', end?.status, statuses.join(' | '));
  }
  if (typeof end.finishedAt !== 'number' || !Number.isFinite(end.finishedAt)) {
    throw new InvalidOptionError('end.finishedAt', end.finishedAt, 'epoch milliseconds');
  }
}

/** Tallies as a store keeps them (RunCounts without the derived total). */
export interface Tally {
  succeeded: number;
  failed: number;
  timeout: number;
  cancelled: number;
  error: number;
  attempts: number;
  tokens: number;
  cost: number;
  /** Cases with a stored result whose cost is unknown (`cost` leaves them out). */
  costUnknown: number;
}

export function emptyTally(): Tally {
  return {
    succeeded: 0,
    failed: 0,
    timeout: 0,
    cancelled: 0,
    error: 0,
    attempts: 0,
    tokens: 0,
    cost: 0,
    costUnknown: 0,
  };
}

/** Counts a stored result. */
export function tallyResult(tally: Tally, status: TerminalStatus, costUnknown = false): void {
  tally[status]++;
  if (costUnknown) tally.costUnknown++;
}

/** Counts an ended attempt and its usage. */
export function tallyAttempt(tally: Tally, attempt: AttemptRecord): void {
  tally.attempts++;
  tally.tokens += attempt.usage.tokens;
  tally.cost += attempt.usage.cost;
}

export function toRunCounts(t: Tally): RunCounts {
  return {
    total: t.succeeded + t.failed + t.timeout + t.cancelled + t.error,
    succeeded: t.succeeded,
    failed: t.failed,
    timeout: t.timeout,
    cancelled: t.cancelled,
    error: t.error,
    attempts: t.attempts,
    tokens: t.tokens,
    cost: t.cost,
    costUnknown: t.costUnknown,
  };
}

/**
 * A run's active time from what a store keeps (see migration 8): the ended sessions' sum, plus
 * the open session up to its last journal write. Undefined when unknown.
 */
export function activeTime(
  endedMs: number | null | undefined,
  sessionStartedAt: number | null | undefined,
  lastAt: number | null | undefined,
): number | undefined {
  if (endedMs === null || endedMs === undefined) return undefined;
  if (sessionStartedAt === null || sessionStartedAt === undefined) return endedMs;
  return endedMs + Math.max(0, (lastAt ?? sessionStartedAt) - sessionStartedAt);
}
