/**
 * The journal on real runs (the engine on a VirtualClock): what the store holds afterwards must
 * be exactly what the run produced, for both stores.
 */

import { describe, expect, test } from 'vitest';
import {
  type AttemptContext,
  RateLimitedError,
  Run,
  type RunExecutionResult,
  type Target,
  TaskFailedError,
  type TaskResult,
  type TaskTransition,
  type TaskView,
  ValidationError,
  VirtualClock,
} from '../../src/core/index.js';
import {
  attachJournal,
  type Journal,
  type JournalBatch,
  MemoryStore,
  SqliteStore,
  type Store,
} from '../../src/store/index.js';
import { collect, stored } from './fixtures.js';
import { tempDb } from './helpers.js';

const RESULT_KEYS = [
  'id',
  'status',
  'input',
  'priority',
  'attempts',
  'output',
  'error',
  'reason',
  'usage',
  'startedAt',
  'finishedAt',
  'executionTimeMs',
] as const;

/** The TaskResult fields of the engine's live record (it carries scheduling fields too). */
function project(r: TaskResult): TaskResult {
  const out: Record<string, unknown> = {};
  for (const k of RESULT_KEYS) out[k] = r[k];
  return out as unknown as TaskResult;
}

function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Six kinds of case, by input modulo 6: success, retry then success, failure, timeout, error, slow. */
function mixedTarget(clock: VirtualClock): Target<number, unknown> {
  return {
    key: 'mixed',
    async execute(task: TaskView<number>, ctx: AttemptContext) {
      const i = task.input;
      switch (i % 6) {
        case 0:
          ctx.reportUsage({ tokens: 10, cost: 0.01 });
          return { text: `answer ${i}`, workflowRunId: `wr-${i}`, taskId: `tk-${i}` };
        case 1:
          ctx.reportUsage({ tokens: 3 });
          if (ctx.attempt === 1) throw new RateLimitedError('slow down');
          return { text: `retried ${i}` };
        case 2:
          throw new TaskFailedError('answer does not mention refund', {
            output: { output: { text: 'no', workflow_run_id: `wr-${i}` }, assertions: [] },
          });
        case 3:
          await clock.sleep(5_000, ctx.signal);
          return 'never';
        case 4:
          throw new ValidationError(`input ${i} is missing "query"`);
        default:
          await clock.sleep(50, ctx.signal);
          return { text: `slow ${i}` };
      }
    },
  };
}

const stores: [string, () => Store][] = [
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore', () => new SqliteStore({ path: tempDb() })],
];

describe.each(stores)('journal into %s', (_name, open) => {
  test('a run with retries, failures, timeouts and a pause is stored exactly, every transition in order', async () => {
    const store = open();
    const clock = new VirtualClock();
    const run = new Run(
      Array.from({ length: 60 }, (_, i) => ({ id: `case-${i}`, input: i })),
      mixedTarget(clock),
      {
        clock,
        concurrency: 4,
        // The pause must find attempts in flight: a fixed concurrency (its 429 would lower it).
        adaptive: false,
        timeoutMs: 1_000,
        retry: { maxAttempts: 2, backoffMs: 100 },
        stop: { maxConsecutiveAuthErrors: 0 },
      },
    );
    const events: TaskTransition[] = [];
    run.on('transition', (t) => events.push(t));
    let succeeded = 0;
    run.on('transition', (t) => {
      // A pause that aborts in-flight work, half-way: its attempts are "interrupted".
      if (t.to === 'succeeded' && ++succeeded === 10) {
        run.pause({ abortInFlight: true });
        clock.schedule(500, () => run.resume());
      }
    });
    const journal = await attachJournal(run, store, {
      clock,
      options: { concurrency: 4, clock, signal: new AbortController().signal },
    });
    const result = await run.start();
    await journal.closed;

    expect(result.statistics.interrupted).toBeGreaterThan(0);
    expect(result.statistics.retries).toBeGreaterThan(0);
    expect(await collect(store.results(run.runId))).toEqual(result.tasks.map(project));
    expect(await collect(store.transitions(run.runId))).toEqual(stored(events));

    const saved = await store.getRun(run.runId);
    const s = result.statistics;
    expect(saved).toMatchObject({
      status: 'completed',
      startedAt: clock.wallTime() - s.wallTimeMs,
      finishedAt: clock.wallTime(),
      optionsJson: '{"concurrency":4}',
      statistics: s,
      counts: {
        total: s.totalTasks,
        succeeded: s.succeededTasks,
        failed: s.failedTasks,
        timeout: s.timeoutTasks,
        cancelled: s.cancelledTasks,
        error: s.errorTasks,
        attempts: s.attempts,
        tokens: s.tokens,
      },
    });
    expect(saved?.counts.cost).toBeCloseTo(s.cost, 10);

    const attempts = await collect(store.attempts(run.runId));
    expect(attempts).toHaveLength(s.attempts);
    expect(attempts.filter((a) => a.state === 'interrupted')).toHaveLength(s.interrupted);
    for (const r of result.tasks) {
      const mine = attempts.filter((a) => a.caseId === r.id);
      expect(mine.map((a) => a.number)).toEqual(mine.map((_, i) => i + 1));
      expect(mine.length).toBe(r.attempts);
      if (mine.length > 0) expect(mine.at(-1)?.state).toBe(r.status);
      const usage = mine.reduce((sum, a) => sum + a.usage.tokens, 0);
      expect(usage).toBe(r.usage.tokens);
    }
    expect((await collect(store.attempts(run.runId, 'case-0')))[0]?.upstream).toEqual({
      workflow_run_id: 'wr-0',
      task_id: 'tk-0',
    });
    expect((await collect(store.attempts(run.runId, 'case-2')))[0]?.upstream).toEqual({
      workflow_run_id: 'wr-2',
    });
    const retried = await collect(store.attempts(run.runId, 'case-1'));
    expect(retried.map((a) => [a.state, a.error?.code])).toEqual([
      ['error', 'RATE_LIMITED'],
      ['succeeded', undefined],
    ]);
    expect((await store.loadRun(run.runId))?.unfinished).toEqual([]);
    await store.close();
  });

  test('what a crash would leave: running cases are maybe-sent with their attempt counts', async () => {
    const store = open();
    const clock = new VirtualClock();
    const run = new Run(
      Array.from({ length: 13 }, (_, i) => ({ id: `c${i}`, input: i })),
      {
        async execute(task, ctx) {
          // c9 is rate limited once; its retry then waits for a slot that c10..c12 never free.
          if (task.input === 9 && ctx.attempt === 1) throw new RateLimitedError();
          if (task.input >= 9) return hang(ctx.signal);
          return task.input;
        },
      },
      // A fixed concurrency: c9's bare 429 would lower it, and c12 would never start.
      {
        clock,
        concurrency: 3,
        adaptive: false,
        lookahead: 1,
        retry: { maxAttempts: 3, backoffMs: 10 },
      },
    );
    const journal = await attachJournal(run, store, { clock });
    const done = run.start();
    await run.waitFor(() => run.progress.settled === 9 && run.progress.byStatus.queued === 1);
    await journal.flush();
    const state = await store.loadRun(run.runId);
    expect(state?.run.status).toBe('running');
    expect(state?.unfinished).toEqual([
      { caseId: 'c9', status: 'queued', attempts: 1, maybeSent: false, since: expect.any(Number) },
      { caseId: 'c10', status: 'running', attempts: 1, maybeSent: true, since: expect.any(Number) },
      { caseId: 'c11', status: 'running', attempts: 1, maybeSent: true, since: expect.any(Number) },
      { caseId: 'c12', status: 'running', attempts: 1, maybeSent: true, since: expect.any(Number) },
    ]);
    expect((await collect(store.results(run.runId))).map((r) => r.id)).toEqual(
      Array.from({ length: 9 }, (_, i) => `c${i}`),
    );
    expect(await collect(store.attempts(run.runId, 'c9'))).toMatchObject([
      { number: 1, state: 'error', error: { code: 'RATE_LIMITED' } },
    ]);
    run.cancel();
    const result = await done;
    await journal.closed;
    expect((await store.getRun(run.runId))?.status).toBe('cancelled');
    expect((await store.getRun(run.runId))?.counts.cancelled).toBe(
      result.statistics.cancelledTasks,
    );
    expect((await store.loadRun(run.runId))?.unfinished).toEqual([]);
    await store.close();
  });

  test('a start withdrawn by a pause (nothing sent) is not an attempt', async () => {
    const store = open();
    const clock = new VirtualClock();
    const run = new Run(
      Array.from({ length: 4 }, (_, i) => ({ id: `w${i}`, input: i })),
      { execute: async (task) => task.input },
      { clock, concurrency: 1 },
    );
    let paused = false;
    run.on('transition', (t) => {
      if (t.to === 'running' && t.taskId === 'w2' && !paused) {
        paused = true;
        run.pause();
        clock.schedule(100, () => run.resume());
      }
    });
    const events: TaskTransition[] = [];
    run.on('transition', (t) => events.push(t));
    const journal = await attachJournal(run, store, { clock });
    const result = await run.start();
    await journal.closed;
    expect(events.some((t) => t.taskId === 'w2' && t.from === 'running' && t.to === 'queued')).toBe(
      true,
    );
    expect(result.statistics.attempts).toBe(4);
    const attempts = await collect(store.attempts(run.runId));
    expect(attempts.map((a) => [a.caseId, a.number, a.state])).toEqual([
      ['w0', 1, 'succeeded'],
      ['w1', 1, 'succeeded'],
      ['w2', 1, 'succeeded'],
      ['w3', 1, 'succeeded'],
    ]);
    expect((await store.getRun(run.runId))?.counts.attempts).toBe(4);
    expect(await collect(store.transitions(run.runId))).toEqual(stored(events));
    await store.close();
  });

  test('a resumed run continues the same stored run', async () => {
    const store = open();
    const clock = new VirtualClock();
    const first = new Run([{ id: 'a', input: 1 }], { execute: async () => 'ok' }, { clock });
    const j1 = await attachJournal(first, store, { clock });
    await first.start();
    await j1.closed;
    const second = new Run(
      [{ id: 'b', input: 2, attemptsBefore: 1 }],
      { execute: async () => 'ok' },
      { clock, runId: first.runId },
    );
    const j2 = await attachJournal(second, store, { clock, resume: true });
    await second.start();
    await j2.closed;
    const run = await store.getRun(first.runId);
    expect(run).toMatchObject({ resumes: 1, status: 'completed', counts: { succeeded: 2 } });
    expect((await collect(store.results(first.runId))).map((r) => [r.id, r.attempts])).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    await store.close();
  });
});

describe('journal failures', () => {
  class FailingStore extends MemoryStore {
    appends = 0;
    override append(runId: string, batch: JournalBatch): void {
      if (++this.appends > 2) throw new Error('disk full');
      super.append(runId, batch);
    }
  }

  test('a store that fails cancels the run by default; closed rejects; the run stays resumable', async () => {
    const store = new FailingStore();
    const clock = new VirtualClock();
    const run = new Run(
      Array.from({ length: 200 }, (_, i) => ({ input: i })),
      {
        async execute(task, ctx) {
          await clock.sleep(10 + (task.input % 7), ctx.signal);
          return task.input;
        },
      },
      { clock, concurrency: 8 },
    );
    const journal = await attachJournal(run, store, { clock });
    const result: RunExecutionResult = await run.start();
    await expect(journal.closed).rejects.toThrow('disk full');
    expect(result.status).toBe('cancelled');
    expect(result.statistics.succeededTasks).toBeLessThan(200);
    const saved = await store.getRun(run.runId);
    expect(saved?.status).toBe('running');
    const state = await store.loadRun(run.runId);
    expect(state!.unfinished.length + saved!.counts.total).toBeGreaterThan(0);
  });

  test('onError replaces the default', async () => {
    const store = new FailingStore();
    const clock = new VirtualClock();
    const errors: unknown[] = [];
    const run = new Run(
      Array.from({ length: 100 }, (_, i) => ({ input: i })),
      {
        async execute(task, ctx) {
          await clock.sleep(5 + (task.input % 3), ctx.signal);
          return task.input;
        },
      },
      { clock, concurrency: 4 },
    );
    // This caller carries on without a journal: detaching gives the journal's hold back.
    const journal = await attachJournal(run, store, {
      clock,
      onError: (e) => {
        errors.push(e);
        journal.detach().catch(() => {});
      },
    });
    const result = await run.start();
    expect(result.status).toBe('completed');
    expect(errors).toHaveLength(1);
    expect(journal.error).toBe(errors[0]);
    await expect(journal.closed).rejects.toThrow('disk full');
  });

  /**
   * A store that fails from its `breakAt`-th write on (append, commit, flush), until `mend()`:
   * the store boundary of a disk that fills up and is freed again.
   */
  class BrokenStore extends MemoryStore {
    writes = 0;
    broken = false;
    constructor(private readonly breakAt: number) {
      super();
    }
    private check(): void {
      if (++this.writes >= this.breakAt) this.broken = true;
      if (this.broken) throw new Error('disk full');
    }
    mend(): void {
      this.broken = false;
      this.writes = Number.NEGATIVE_INFINITY;
    }
    override append(runId: string, batch: JournalBatch): void {
      this.check();
      super.append(runId, batch);
    }
    override commit(): void {
      this.check();
      super.commit();
    }
    override async flush(): Promise<void> {
      this.check();
      await super.flush();
    }
  }

  /** 120 cases at concurrency 8 over a store that breaks mid-run; what the target saw. */
  async function runOverBrokenStore(mendWhenStopped: boolean) {
    const store = new BrokenStore(40);
    const clock = new VirtualClock();
    const sent: string[] = [];
    const sentAfterFailure: string[] = [];
    let answeredAfterFailure = 0;
    let journal: Journal | undefined;
    const run = new Run(
      Array.from({ length: 120 }, (_, i) => ({ id: `c${i}`, input: i })),
      {
        async execute(task, ctx) {
          sent.push(`${task.id}#${ctx.attempt}`);
          if (journal?.error !== undefined) sentAfterFailure.push(task.id);
          await clock.sleep(10 + (task.input % 7) * 3, ctx.signal);
          if (journal?.error !== undefined) answeredAfterFailure++;
          return task.input;
        },
      },
      { clock, concurrency: 8 },
    );
    if (mendWhenStopped) run.on('stopping', () => store.mend());
    journal = await attachJournal(run, store, { clock, live: false });
    const result = await run.start();
    await expect(journal.closed).rejects.toThrow('disk full');
    store.mend();
    const kept = new Map((await collect(store.results(run.runId))).map((r) => [r.id, r]));
    const attempts = await collect(store.attempts(run.runId));
    return {
      store,
      run,
      result,
      journal,
      sent,
      sentAfterFailure,
      answeredAfterFailure,
      kept,
      attempts,
    };
  }

  test('a store that fails mid-run: nothing more is sent, the requests in flight finish (not aborted), and once the disk has room their answers are in the journal', async () => {
    const r = await runOverBrokenStore(true);
    // It failed mid-run with requests in flight, and nothing was sent after.
    expect(r.answeredAfterFailure).toBeGreaterThan(0);
    expect(r.sentAfterFailure).toEqual([]);
    expect(r.sent.length).toBeGreaterThan(8);
    expect(r.sent.length).toBeLessThan(120);
    expect(r.result.status).toBe('cancelled');
    // Every request that left got its answer, and every answer is in the journal: nothing paid
    // for was lost, nothing was aborted.
    expect(new Set(r.sent).size).toBe(r.sent.length);
    const answered = r.result.tasks.filter((t) => t.status === 'succeeded').map((t) => `${t.id}#1`);
    expect(answered.sort()).toEqual([...r.sent].sort());
    for (const id of answered) expect(r.kept.get(id.split('#')[0]!)?.status).toBe('succeeded');
    // The cases never sent are cancelled (a resume runs them), and no attempt is recorded
    // for them; every request has its attempt record.
    const cancelled = r.result.tasks.filter((t) => t.status === 'cancelled');
    expect(cancelled.length).toBe(120 - r.sent.length);
    for (const t of cancelled) expect(t.attempts).toBe(0);
    expect(r.attempts.map((a) => `${a.caseId}#${a.number}`).sort()).toEqual([...r.sent].sort());
    expect(r.journal.failure).toMatchObject({
      written: true,
      unwritten: [],
      inFlight: r.answeredAfterFailure,
    });
    expect((await r.store.getRun(r.run.runId))?.status).toBe('interrupted');
  });

  test('a store that stays broken: the journal names exactly the answered cases it may be missing, and no other', async () => {
    const r = await runOverBrokenStore(false);
    expect(r.result.status).toBe('cancelled');
    expect(r.sentAfterFailure).toEqual([]);
    expect(r.answeredAfterFailure).toBeGreaterThan(0);
    const failure = r.journal.failure!;
    expect(failure.written).toBe(false);
    expect(failure.unwritten.length).toBeGreaterThan(0);
    const answered = r.result.tasks.filter((t) => t.status === 'succeeded').map((t) => t.id);
    expect(answered.length).toBe(r.sent.length);
    // Every answer is either in the journal or named; only answered cases are named.
    const named = new Set(failure.unwritten);
    for (const id of answered) expect(r.kept.has(id) || named.has(id), id).toBe(true);
    for (const id of named) expect(answered).toContain(id);
    // The next flush, once the disk has room again, writes what the journal kept.
    r.store.mend();
    await r.journal.flush();
    const after = new Set((await collect(r.store.results(r.run.runId))).map((x) => x.id));
    for (const id of answered) expect(after.has(id), id).toBe(true);
  });
});
