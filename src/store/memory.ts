/**
 * The Store in memory: for tests, `simulate`, and library users who want run history without a
 * file. It keeps exactly what the SQLite store keeps (the same rows, through the same codec), so
 * the one contract suite holds for both. Nothing survives the process.
 */

import { hostname } from 'node:os';
import type { TaskResult, TerminalStatus } from '../core/model.js';
import {
  type AttemptRow,
  activeTime,
  compareAttempts,
  decodeTransitions,
  emptyTally,
  encodeBatch,
  finalAttemptOf,
  foldBatch,
  fromAttemptRow,
  fromResultRow,
  pageOf,
  type ResultRow,
  type Tally,
  tallyAttempt,
  tallyResult,
  toAttemptRow,
  toResultRow,
  toRunCounts,
  UnfinishedTracker,
  validateLimit,
  validateNewRun,
  validateRetention,
  validateRunEnd,
} from './codec.js';
import { StoreError } from './errors.js';
import type { ControlAction, ControlRequest, LiveRecord, LiveState } from './live.js';
import { type LockHolder, type RunLease, runLockedError } from './lock.js';
import type {
  AnswerRecord,
  AttemptRecord,
  JournalBatch,
  ListRunsOptions,
  NewRun,
  PaceRecord,
  ResultsOptions,
  ResumeState,
  Retention,
  RunEnd,
  RunRecord,
  RunSummary,
  Store,
  StoredRunStatus,
  StoredTransition,
} from './port.js';

const FILE = 'memory';

interface MemoryRun {
  readonly key: number;
  readonly run: NewRun;
  status: StoredRunStatus;
  end: RunEnd | undefined;
  resumes: number;
  /** Active time as SqliteStore keeps it (migration 8): ended sessions, open session, last write. */
  activeMs: number;
  sessionStartedAt: number | undefined;
  lastAt: number | undefined;
  readonly tally: Tally;
  /** One encoded row per append, as the SQLite journal table holds them. */
  readonly journal: { baseAt: number; entries: string }[];
  readonly results: ResultRow[];
  readonly attempts: AttemptRow[];
  /** Changes of the adaptive pace, oldest first. */
  readonly pace: PaceRecord[];
  readonly answers: Map<string, AnswerRecord>;
}

/**
 * A Store held in memory.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * const journal = await attachJournal(run, store);
 * await run.start();
 * await journal.closed;
 * console.log((await store.getRun(run.runId))?.counts);
 * ```
 */
export class MemoryStore implements Store {
  private readonly runs = new Map<string, MemoryRun>();
  private nextKey = 1;
  private closed = false;
  private readonly locks = new Map<string, LockHolder>();
  private readonly live = new Map<string, LiveRecord>();
  private readonly control: ControlRequest[] = [];

  async createRun(run: NewRun): Promise<void> {
    this.open();
    validateNewRun(run);
    if (this.runs.has(run.id)) {
      throw new StoreError('duplicate_run', FILE, `run ${run.id} already exists in the store`);
    }
    this.runs.set(run.id, {
      key: this.nextKey++,
      run: { ...run },
      status: 'running',
      end: undefined,
      resumes: 0,
      activeMs: 0,
      sessionStartedAt: run.startedAt,
      lastAt: undefined,
      tally: emptyTally(),
      journal: [],
      results: [],
      attempts: [],
      pace: [],
      answers: new Map(),
    });
  }

  async reopenRun(runId: string, at: number = Date.now()): Promise<void> {
    const r = this.get(runId);
    r.status = 'running';
    r.end = undefined;
    r.resumes++;
    r.activeMs = activeTime(r.activeMs, r.sessionStartedAt, r.lastAt)!;
    r.sessionStartedAt = at;
    r.lastAt = undefined;
  }

  append(runId: string, batch: JournalBatch): void {
    const r = this.get(runId);
    if (batch.transitions.length > 0) r.journal.push(encodeBatch(batch.transitions));
    foldBatch(
      batch,
      (result, final) => {
        r.results.push(toResultRow(result, final));
        tallyResult(r.tally, result.status as TerminalStatus, result.usage.costUnknown === true);
        if (final !== undefined) tallyAttempt(r.tally, final);
      },
      (attempt) => {
        r.attempts.push(toAttemptRow(attempt));
        tallyAttempt(r.tally, attempt);
      },
    );
    r.lastAt = Date.now();
  }

  async finishRun(runId: string, end: RunEnd): Promise<void> {
    const r = this.get(runId);
    validateRunEnd(end);
    r.status = end.status;
    r.end = { ...end };
    if (r.sessionStartedAt !== undefined) {
      r.activeMs += Math.max(0, end.finishedAt - r.sessionStartedAt);
    }
    r.sessionStartedAt = undefined;
    r.lastAt = undefined;
  }

  async loadRun(runId: string): Promise<ResumeState | undefined> {
    this.open();
    const r = this.runs.get(runId);
    if (r === undefined) return undefined;
    const tracker = new UnfinishedTracker();
    for (const row of r.journal) {
      for (const t of decodeTransitions(row.entries, row.baseAt)) tracker.add(t);
    }
    return { run: this.record(r), ...tracker.result() };
  }

  async listRuns(options: ListRunsOptions = {}): Promise<RunSummary[]> {
    this.open();
    validateLimit(options.limit);
    const list = this.newestFirst().map((r) => this.summary(r));
    return options.limit === undefined ? list : list.slice(0, options.limit);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    this.open();
    const r = this.runs.get(runId);
    return r === undefined ? undefined : this.record(r);
  }

  async *results(runId: string, options: ResultsOptions = {}): AsyncIterableIterator<TaskResult> {
    const r = this.get(runId);
    const wanted = options.status === undefined ? undefined : new Set<string>(options.status);
    const text = options.idContains ?? '';
    const { offset, limit } = pageOf(options);
    let skip = offset;
    let left = limit ?? Number.POSITIVE_INFINITY;
    // A snapshot as of the first read, as a database read transaction gives.
    const end = r.results.length;
    let last: Map<string, number> | undefined;
    if (options.latest === true) {
      last = new Map();
      for (let i = 0; i < end; i++) last.set(r.results[i]!.case_id, i);
    }
    for (let i = 0; i < end && left > 0; i++) {
      const row = r.results[i]!;
      if (last !== undefined && row.status === 'cancelled' && last.get(row.case_id) !== i) continue;
      if (wanted !== undefined && !wanted.has(row.status)) continue;
      if (text !== '' && !row.case_id.includes(text)) continue;
      if (!caseMatches(row, options)) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      left--;
      yield fromResultRow(row);
    }
  }

  async *attempts(runId: string, caseId?: string): AsyncIterableIterator<AttemptRecord> {
    const r = this.get(runId);
    const all: AttemptRecord[] = [];
    for (const row of r.attempts) {
      if (caseId === undefined || row.case_id === caseId) all.push(fromAttemptRow(row));
    }
    for (const row of r.results) {
      if (caseId !== undefined && row.case_id !== caseId) continue;
      const final = finalAttemptOf(row);
      if (final !== undefined) all.push(final);
    }
    all.sort(compareAttempts);
    yield* all;
  }

  async *transitions(runId: string): AsyncIterableIterator<StoredTransition> {
    const r = this.get(runId);
    const end = r.journal.length;
    for (let i = 0; i < end; i++) {
      const row = r.journal[i]!;
      yield* decodeTransitions(row.entries, row.baseAt);
    }
  }

  async prune(retention: Retention): Promise<number> {
    this.open();
    validateRetention(retention);
    const now = retention.now ?? Date.now();
    const doomed = this.newestFirst().filter(
      (r, index) =>
        (retention.maxAgeMs !== undefined && r.run.startedAt < now - retention.maxAgeMs) ||
        (retention.maxRuns !== undefined && index >= retention.maxRuns),
    );
    for (const r of doomed) this.runs.delete(r.run.id);
    return doomed.length;
  }

  async lockRun(runId: string): Promise<RunLease> {
    this.open();
    // A memory store lives in one process: the only other holder is another session of it.
    const current = this.locks.get(runId);
    if (current !== undefined) throw runLockedError(runId, current);
    const now = Date.now();
    const holder: LockHolder = { pid: process.pid, host: hostname(), since: now, heartbeatAt: now };
    this.locks.set(runId, holder);
    return {
      runId,
      holder,
      release: async () => {
        if (this.locks.get(runId) === holder) this.locks.delete(runId);
      },
    };
  }

  async runLock(runId: string): Promise<LockHolder | undefined> {
    this.open();
    return this.locks.get(runId);
  }

  appendPace(runId: string, change: PaceRecord): void {
    this.open();
    this.get(runId).pace.push({ ...change });
  }

  async errorCodes(runId: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const row of this.get(runId).results) {
      if (row.status !== 'failed' && row.status !== 'timeout' && row.status !== 'error') continue;
      const code = row.error_code ?? row.status.toUpperCase();
      out[code] = (out[code] ?? 0) + 1;
    }
    return out;
  }

  async paceChanges(runId: string): Promise<PaceRecord[]> {
    this.open();
    return this.get(runId).pace.map((c) => ({ ...c }));
  }

  appendAnswer(runId: string, answer: AnswerRecord): void {
    this.open();
    // A copy through JSON, as the SQLite store keeps it.
    const output: unknown = JSON.parse(JSON.stringify(answer.output ?? null));
    this.get(runId).answers.set(answer.caseId, { ...answer, output });
  }

  async answers(runId: string): Promise<Map<string, AnswerRecord>> {
    this.open();
    return new Map(this.get(runId).answers);
  }

  writeLive(runId: string, state: LiveState): void {
    this.open();
    // A copy through JSON, as the SQLite store keeps it.
    this.live.set(runId, {
      runId,
      updatedAt: Date.now(),
      state: JSON.parse(JSON.stringify(state)) as LiveState,
    });
  }

  async readLive(runId: string): Promise<LiveRecord | undefined> {
    this.open();
    return this.live.get(runId);
  }

  async requestControl(runId: string, action: ControlAction, by: string): Promise<ControlRequest> {
    this.open();
    const request: ControlRequest = {
      id: this.control.length + 1,
      runId,
      action,
      by,
      at: Date.now(),
      takenAt: undefined,
      outcome: undefined,
    };
    this.control.push(request);
    return request;
  }

  takeControl(runId: string, apply: (request: ControlRequest) => string): number {
    this.open();
    let taken = 0;
    this.control.forEach((r, i) => {
      if (r.runId !== runId || r.takenAt !== undefined) return;
      const outcome = apply(r);
      this.control[i] = { ...r, takenAt: Date.now(), outcome };
      taken++;
    });
    return taken;
  }

  async controlRequests(runId: string): Promise<ControlRequest[]> {
    this.open();
    return this.control.filter((r) => r.runId === runId);
  }

  async flush(): Promise<void> {
    this.open();
  }

  /** Appends are kept at once: nothing waits to be written. */
  commit(): void {
    this.open();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.locks.clear();
  }

  private open(): void {
    if (this.closed) throw new StoreError('closed', FILE, 'the memory store is closed');
  }

  private get(runId: string): MemoryRun {
    this.open();
    const r = this.runs.get(runId);
    if (r === undefined) {
      throw new StoreError('unknown_run', FILE, `no run ${JSON.stringify(runId)} in the store`);
    }
    return r;
  }

  private newestFirst(): MemoryRun[] {
    return [...this.runs.values()].sort(
      (a, b) => b.run.startedAt - a.run.startedAt || b.key - a.key,
    );
  }

  private summary(r: MemoryRun): RunSummary {
    return {
      id: r.run.id,
      parentId: r.run.parentId,
      kind: r.run.kind,
      plan: r.run.plan,
      planHash: r.run.planHash,
      status: r.status,
      startedAt: r.run.startedAt,
      finishedAt: r.end?.finishedAt,
      stoppedBy: r.end?.stoppedBy === undefined ? undefined : { ...r.end.stoppedBy },
      resumes: r.resumes,
      activeMs: activeTime(r.activeMs, r.sessionStartedAt, r.lastAt),
      counts: toRunCounts(r.tally),
    };
  }

  private record(r: MemoryRun): RunRecord {
    return {
      ...this.summary(r),
      planJson: r.run.planJson,
      optionsJson: r.run.optionsJson,
      clockOffsetMs: r.run.clockOffsetMs ?? 0,
      // A copy, as a database would give: the caller cannot change what is stored.
      statistics: r.end?.statistics === undefined ? undefined : structuredClone(r.end.statistics),
    };
  }
}

/** The dataset and tag filters of `results`, on the stored input (a test plan's case). */
function caseMatches(row: ResultRow, options: ResultsOptions): boolean {
  if (options.dataset === undefined && options.tag === undefined) return true;
  const input = (row.input === null ? null : JSON.parse(row.input)) as {
    dataset?: unknown;
    tags?: unknown;
  } | null;
  if (options.dataset !== undefined && input?.dataset !== options.dataset) return false;
  if (options.tag !== undefined) {
    const tags = input?.tags;
    if (!Array.isArray(tags) || !tags.includes(options.tag)) return false;
  }
  return true;
}
