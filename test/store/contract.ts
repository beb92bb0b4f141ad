/**
 * The Store contract: one suite, run against every implementation (test/store/memory.test.ts,
 * test/store/sqlite.test.ts), as undici runs one suite against each of its cache stores.
 */

import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { InvalidOptionError, Run, type RunStatistics } from '../../src/core/index.js';
import {
  type AnswerRecord,
  attachJournal,
  type NewRun,
  type Store,
  StoreError,
} from '../../src/store/index.js';
import {
  cancelledQueued,
  collect,
  fails,
  join,
  queued,
  result,
  retriesThenSucceeds,
  startsRunning,
  stored,
  succeeds,
} from './fixtures.js';
import { admittingTarget } from './helpers.js';

export function newRun(id: string, over: Partial<NewRun> = {}): NewRun {
  return {
    id,
    kind: 'test',
    plan: 'support-bot',
    planHash: 'abc123',
    planJson: '{"workflowId":"support-bot"}',
    optionsJson: '{"concurrency":4}',
    startedAt: 1_700_000_000_000,
    clockOffsetMs: 1_699_999_000_000,
    ...over,
  };
}

const STATISTICS: RunStatistics = {
  totalTasks: 3,
  byStatus: {
    pending: 0,
    queued: 0,
    running: 0,
    succeeded: 2,
    failed: 1,
    timeout: 0,
    cancelled: 0,
    error: 0,
  },
  succeededTasks: 2,
  failedTasks: 1,
  timeoutTasks: 0,
  errorTasks: 0,
  cancelledTasks: 0,
  attempts: 4,
  retries: 1,
  refused: 0,
  interrupted: 0,
  zombies: 0,
  tokens: 12,
  cost: 0.5,
  wallTimeMs: 40,
  latencyMs: { count: 4, mean: 8, p50: 8, p90: 12, p95: 12, p99: 12, max: 14 },
  successRate: 2 / 3,
};

/**
 * Runs the contract against a store implementation. `open` gives a fresh, empty store for each
 * test; the suite closes it.
 */
export function storeContract(name: string, open: () => Store | Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    test('a created run is listed and shown, running, with zero counts', async () => {
      await store.createRun(newRun('r1', { parentId: 'r0' }));
      const run = await store.getRun('r1');
      expect(run).toEqual({
        id: 'r1',
        parentId: 'r0',
        kind: 'test',
        plan: 'support-bot',
        planHash: 'abc123',
        status: 'running',
        startedAt: 1_700_000_000_000,
        finishedAt: undefined,
        stoppedBy: undefined,
        resumes: 0,
        activeMs: 0,
        counts: {
          total: 0,
          succeeded: 0,
          failed: 0,
          timeout: 0,
          cancelled: 0,
          error: 0,
          attempts: 0,
          tokens: 0,
          cost: 0,
          costUnknown: 0,
        },
        planJson: '{"workflowId":"support-bot"}',
        optionsJson: '{"concurrency":4}',
        clockOffsetMs: 1_699_999_000_000,
        statistics: undefined,
      });
      const { planJson: _p, optionsJson: _o, clockOffsetMs: _c, statistics: _s, ...summary } = run!;
      expect(await store.listRuns()).toEqual([summary]);
      expect(await store.getRun('nope')).toBeUndefined();
      expect(await store.loadRun('nope')).toBeUndefined();
    });

    test('a duplicate run id is refused; a malformed run names its bad field', async () => {
      await store.createRun(newRun('r1'));
      const dup = await store.createRun(newRun('r1')).catch((e: unknown) => e);
      expect(dup).toBeInstanceOf(StoreError);
      expect(dup).toMatchObject({ failure: 'duplicate_run' });
      expect((dup as Error).message).toContain('r1');
      await expect(store.createRun(newRun(''))).rejects.toThrow(InvalidOptionError);
      await expect(store.createRun(newRun('x', { kind: 'other' as 'test' }))).rejects.toThrow(
        /run\.kind/,
      );
      expect(await store.listRuns()).toHaveLength(1);
    });

    test('appending to an unknown run throws unknown_run', async () => {
      expect(() => store.append('ghost', succeeds('a', 0))).toThrow(
        expect.objectContaining({ failure: 'unknown_run' }),
      );
      await expect(collect(store.results('ghost'))).rejects.toMatchObject({
        failure: 'unknown_run',
      });
    });

    test('results come back equal to what was appended, in completion order across batches', async () => {
      await store.createRun(newRun('r1'));
      const a = succeeds('a', 0, { input: { query: 'héllo ✓ 𝄞', n: [1, 2.5, null] } });
      const b = retriesThenSucceeds('b', 100);
      const c = fails('c', 200);
      const d = cancelledQueued('d', 300);
      store.append('r1', a);
      store.append('r1', join(b, c));
      store.append('r1', d);
      const expected = [a, b, c, d].flatMap((x) =>
        x.transitions.flatMap((t) => ('result' in t ? [t.result] : [])),
      );
      expect(await collect(store.results('r1'))).toEqual(expected);
      expect(await collect(store.results('r1', { status: ['failed', 'cancelled'] }))).toEqual([
        expected[2],
        expected[3],
      ]);
      expect(await collect(store.results('r1', { status: [] }))).toEqual([]);
    });

    test('results page by offset and limit after the status and id filters (the case table)', async () => {
      await store.createRun(newRun('r1'));
      const all = Array.from({ length: 7 }, (_, i) =>
        i % 3 === 2 ? fails(`case-${i}`, i * 10) : succeeds(`case-${i}`, i * 10),
      );
      for (const b of all) store.append('r1', b);
      const ids = async (o: Parameters<Store['results']>[1]) =>
        (await collect(store.results('r1', o))).map((r) => r.id);
      expect(await ids({ offset: 2, limit: 3 })).toEqual(['case-2', 'case-3', 'case-4']);
      expect(await ids({ offset: 5 })).toEqual(['case-5', 'case-6']);
      expect(await ids({ limit: 0 })).toEqual([]);
      expect(await ids({ status: ['succeeded'], offset: 1, limit: 2 })).toEqual([
        'case-1',
        'case-3',
      ]);
      expect(await ids({ status: ['failed'], offset: 1 })).toEqual(['case-5']);
      expect(await ids({ idContains: '-1' })).toEqual(['case-1']);
      expect(await ids({ idContains: 'case', status: ['failed'], limit: 1 })).toEqual(['case-2']);
      expect(await ids({ offset: 99, limit: 10 })).toEqual([]);
      await expect(collect(store.results('r1', { offset: -1 }))).rejects.toThrow(/results\.offset/);
      await expect(collect(store.results('r1', { limit: 1.5 }))).rejects.toThrow(/results\.limit/);
    });

    test('pages of several statuses keep completion order and stay within their run', async () => {
      await store.createRun(newRun('r1'));
      await store.createRun(newRun('r2'));
      // Interleaved appends of two runs: a page of r1 must never show r2's rows.
      for (let i = 0; i < 12; i++) {
        const kind = i % 3;
        const make = kind === 0 ? succeeds : kind === 1 ? fails : cancelledQueued;
        store.append('r1', make(`a-${i}`, i * 10));
        store.append('r2', make(`b-${i}`, i * 10));
      }
      const ids = async (o: Parameters<Store['results']>[1]) =>
        (await collect(store.results('r1', o))).map((r) => r.id);
      expect(await ids({ status: ['failed', 'succeeded'], offset: 3, limit: 4 })).toEqual([
        'a-4',
        'a-6',
        'a-7',
        'a-9',
      ]);
      // The order of the statuses asked and a repeated one change nothing.
      expect(
        await ids({ status: ['succeeded', 'failed', 'succeeded'], offset: 3, limit: 4 }),
      ).toEqual(['a-4', 'a-6', 'a-7', 'a-9']);
      expect(await ids({ status: ['cancelled'], offset: 2 })).toEqual(['a-8', 'a-11']);
      expect(await ids({ offset: 10 })).toEqual(['a-10', 'a-11']);
      expect(await ids({ limit: 2 })).toEqual(['a-0', 'a-1']);
      expect(await ids({ status: [], offset: 1, limit: 1 })).toEqual([]);
    });

    test('results filter by dataset and by tag (the case table), with the other filters and pages', async () => {
      await store.createRun(newRun('r1'));
      const tagged = (id: string, dataset: string | undefined, tags: string[] | undefined) => ({
        id,
        inputs: { q: id },
        ...(dataset === undefined ? {} : { dataset }),
        ...(tags === undefined ? {} : { tags }),
      });
      store.append('r1', succeeds('c1', 0, { input: tagged('c1', 'refunds', ['smoke']) }));
      store.append('r1', fails('c2', 10, { input: tagged('c2', 'refunds', ['smoke', 'slow']) }));
      store.append('r1', succeeds('c3', 20, { input: tagged('c3', 'billing', ['slow']) }));
      store.append('r1', succeeds('c4', 30, { input: tagged('c4', undefined, undefined) }));
      store.append('r1', succeeds('c5', 40, { input: 'a bare string input' }));
      const ids = async (o: Parameters<Store['results']>[1]) =>
        (await collect(store.results('r1', o))).map((r) => r.id);
      expect(await ids({ dataset: 'refunds' })).toEqual(['c1', 'c2']);
      expect(await ids({ tag: 'slow' })).toEqual(['c2', 'c3']);
      expect(await ids({ dataset: 'refunds', tag: 'slow' })).toEqual(['c2']);
      expect(await ids({ tag: 'slow', status: ['succeeded'] })).toEqual(['c3']);
      expect(await ids({ dataset: 'refunds', offset: 1, limit: 5 })).toEqual(['c2']);
      expect(await ids({ dataset: 'nope' })).toEqual([]);
      // A tag is matched whole, not as a part of another tag.
      expect(await ids({ tag: 'smo' })).toEqual([]);
    });

    test('latest: a case cancelled by one session and finished by a resume comes back once, finished', async () => {
      await store.createRun(newRun('r1'));
      const resultsOf = (b: ReturnType<typeof succeeds>) =>
        b.transitions.flatMap((t) => ('result' in t ? [t.result] : []));
      // session 1: a passes, b and c are cancelled; session 2: b passes, c is cancelled again
      store.append(
        'r1',
        join(succeeds('a', 0), cancelledQueued('b', 10), cancelledQueued('c', 20)),
      );
      store.append('r1', join(succeeds('b', 100), cancelledQueued('c', 110)));
      const all = await collect(store.results('r1'));
      expect(all.map((r) => `${r.id}:${r.status}`)).toEqual([
        'a:succeeded',
        'b:cancelled',
        'c:cancelled',
        'b:succeeded',
        'c:cancelled',
      ]);
      const latest = await collect(store.results('r1', { latest: true }));
      expect(latest).toEqual([all[0], all[3], all[4]]);
      expect(latest[2]).toEqual(resultsOf(cancelledQueued('c', 110))[0]);
      expect(await collect(store.results('r1', { latest: true, status: ['cancelled'] }))).toEqual([
        all[4],
      ]);
    });

    test('errorCodes counts failed, timeout and error results by code, never succeeded or cancelled ones', async () => {
      await store.createRun(newRun('r1'));
      store.append(
        'r1',
        join(succeeds('a', 0), fails('b', 10), fails('c', 20), cancelledQueued('d', 30)),
      );
      const failed = (await collect(store.results('r1', { status: ['failed'] })))[0]!;
      expect(await store.errorCodes('r1')).toEqual({ [failed.error!.code]: 2 });
      await store.createRun(newRun('r2'));
      expect(await store.errorCodes('r2')).toEqual({});
      await expect(store.errorCodes('ghost')).rejects.toMatchObject({ failure: 'unknown_run' });
    });

    test('latest: each case once, its latest result, in completion order (resumed cases)', async () => {
      await store.createRun(newRun('r1'));
      // a cancelled, then (a resume) b fails, a succeeds; c cancelled twice.
      const batches = [
        cancelledQueued('a', 0),
        cancelledQueued('c', 10),
        fails('b', 100),
        succeeds('a', 200),
        cancelledQueued('c', 300),
      ];
      for (const b of batches) store.append('r1', b);
      const all = await collect(store.results('r1'));
      expect(all.map((r) => `${r.id}:${r.status}`)).toEqual([
        'a:cancelled',
        'c:cancelled',
        'b:failed',
        'a:succeeded',
        'c:cancelled',
      ]);
      const latest = await collect(store.results('r1', { latest: true }));
      expect(latest).toEqual([all[2], all[3], all[4]]);
      expect(
        (await collect(store.results('r1', { latest: true, status: ['cancelled'] }))).map(
          (r) => r.id,
        ),
      ).toEqual(['c']);
    });

    test('undefined and null stay apart; error status, cancel reasons and odd ids survive', async () => {
      await store.createRun(newRun('r1'));
      const weird = 'case "1"\t#2 🚀';
      store.append(
        'r1',
        join(
          succeeds(weird, 0, { input: null, output: undefined }),
          succeeds('n', 50, { input: undefined, output: null, priority: -3 }),
          cancelledQueued('u', 60),
        ),
      );
      const got = await collect(store.results('r1'));
      expect(got[0]).toMatchObject({ id: weird, input: null, output: undefined });
      expect(got[1]).toMatchObject({ id: 'n', input: undefined, output: null, priority: -3 });
      expect(got[2]?.reason).toEqual({ kind: 'stop_rule', rule: 'max_failures' });
      expect(got[2]?.startedAt).toBeUndefined();
    });

    test('every transition is kept, in order, without its result', async () => {
      await store.createRun(newRun('r1'));
      const batches = [succeeds('a', 0), retriesThenSucceeds('b', 100), cancelledQueued('c', 5)];
      for (const b of batches) store.append('r1', b);
      const all = batches.flatMap((b) => b.transitions);
      expect(await collect(store.transitions('r1'))).toEqual(stored(all));
    });

    test('attempts: every attempt, by case then number, with errors, usage and upstream ids', async () => {
      await store.createRun(newRun('r1'));
      store.append(
        'r1',
        join(retriesThenSucceeds('b', 100), fails('a', 0), cancelledQueued('c', 5)),
      );
      const attempts = await collect(store.attempts('r1'));
      expect(attempts.map((a) => [a.caseId, a.number, a.state])).toEqual([
        ['a', 1, 'failed'],
        ['b', 1, 'error'],
        ['b', 2, 'succeeded'],
      ]);
      const [a1, b1, b2] = attempts;
      expect(a1).toEqual(fails('a', 0).attempts[0]);
      expect(b1).toEqual(retriesThenSucceeds('b', 100).attempts[0]);
      expect(b2).toEqual(retriesThenSucceeds('b', 100).attempts[1]);
      expect(await collect(store.attempts('r1', 'b'))).toEqual([b1, b2]);
      expect(await collect(store.attempts('r1', 'c'))).toEqual([]);
    });

    test('counts follow the results and the ended attempts', async () => {
      await store.createRun(newRun('r1'));
      store.append('r1', join(succeeds('a', 0), retriesThenSucceeds('b', 100)));
      store.append('r1', join(fails('c', 200), cancelledQueued('d', 300), queued('e', 400)));
      const run = await store.getRun('r1');
      expect(run?.counts).toEqual({
        total: 4,
        succeeded: 2,
        failed: 1,
        timeout: 0,
        cancelled: 1,
        error: 0,
        attempts: 4,
        tokens: 12,
        cost: 0.5,
        costUnknown: 0,
      });
    });

    test('finishRun records the end; listRuns shows runs newest first', async () => {
      await store.createRun(newRun('old', { startedAt: 1000 }));
      await store.createRun(newRun('new', { startedAt: 3000 }));
      await store.createRun(newRun('mid', { startedAt: 2000 }));
      await store.createRun(newRun('mid2', { startedAt: 2000 }));
      await store.finishRun('mid', {
        status: 'stopped',
        finishedAt: 2500,
        stoppedBy: { rule: 'max_failures', message: '1 failures reached max_failures 1' },
        statistics: STATISTICS,
      });
      expect((await store.listRuns()).map((r) => r.id)).toEqual(['new', 'mid2', 'mid', 'old']);
      expect((await store.listRuns({ limit: 2 })).map((r) => r.id)).toEqual(['new', 'mid2']);
      await expect(store.listRuns({ limit: 1.5 })).rejects.toThrow(/invalid option limit: 1.5/);
      const mid = await store.getRun('mid');
      expect(mid).toMatchObject({
        status: 'stopped',
        finishedAt: 2500,
        stoppedBy: { rule: 'max_failures', message: '1 failures reached max_failures 1' },
        statistics: STATISTICS,
      });
      await expect(
        store.finishRun('ghost', { status: 'completed', finishedAt: 1 }),
      ).rejects.toThrow(StoreError);
      await expect(
        store.finishRun('old', { status: 'running' as 'completed', finishedAt: 1 }),
      ).rejects.toThrow(InvalidOptionError);
    });

    test('loadRun lists the cases that are not terminal, with attempts and maybe-sent', async () => {
      await store.createRun(newRun('r1'));
      store.append('r1', join(succeeds('done', 0), queued('q', 1), queued('r', 2), queued('p', 3)));
      store.append(
        'r1',
        join(startsRunning('r', 10, 1), startsRunning('p', 11, 1), {
          transitions: [
            {
              taskId: 'p',
              from: 'running',
              to: 'pending',
              at: 12,
              attempt: 1,
              retryInMs: 100,
              error: { code: 'NETWORK_ERROR', name: 'Error', message: 'socket hang up' },
            },
            // A start withdrawn by a pause before anything was sent gives its attempt back.
            { taskId: 'w', from: 'pending', to: 'queued', at: 13, attempt: 0, retry: false },
            { taskId: 'w', from: 'queued', to: 'running', at: 14, attempt: 1 },
            { taskId: 'w', from: 'running', to: 'queued', at: 14, attempt: 0, retry: true },
          ],
          attempts: [],
        }),
      );
      const state = await store.loadRun('r1');
      expect(state?.run.id).toBe('r1');
      expect(state?.unfinished).toEqual([
        { caseId: 'q', status: 'queued', attempts: 0, maybeSent: false, since: 1 },
        { caseId: 'r', status: 'running', attempts: 1, maybeSent: true, since: 10 },
        { caseId: 'p', status: 'pending', attempts: 1, maybeSent: false, since: 12 },
        { caseId: 'w', status: 'queued', attempts: 0, maybeSent: false, since: 14 },
      ]);
    });

    test('loadRun counts, per case without a verdict, the attempts a pause or a cancel aborted', async () => {
      await store.createRun(newRun('r1'));
      const reason = { kind: 'user' } as const;
      const cancelled = (id: string, attempts: number) =>
        result(id, { status: 'cancelled', reason, attempts, output: undefined });
      store.append('r1', {
        transitions: [
          // i: interrupted by a pause, then running again (maybe sent at the end).
          { taskId: 'i', from: 'pending', to: 'queued', at: 1, attempt: 0, retry: false },
          { taskId: 'i', from: 'queued', to: 'running', at: 2, attempt: 1 },
          { taskId: 'i', from: 'running', to: 'queued', at: 3, attempt: 1, retry: true },
          { taskId: 'i', from: 'queued', to: 'running', at: 4, attempt: 2 },
          // x: aborted in flight by a cancel (a stored cancelled result, run again by a resume).
          { taskId: 'x', from: 'pending', to: 'queued', at: 1, attempt: 0, retry: false },
          { taskId: 'x', from: 'queued', to: 'running', at: 2, attempt: 1 },
          {
            taskId: 'x',
            from: 'running',
            to: 'cancelled',
            at: 3,
            attempt: 1,
            reason,
            result: cancelled('x', 1),
          },
          // v: interrupted, then a verdict: nothing left to count.
          { taskId: 'v', from: 'pending', to: 'queued', at: 1, attempt: 0, retry: false },
          { taskId: 'v', from: 'queued', to: 'running', at: 2, attempt: 1 },
          { taskId: 'v', from: 'running', to: 'queued', at: 3, attempt: 1, retry: true },
          { taskId: 'v', from: 'queued', to: 'running', at: 4, attempt: 2 },
          { taskId: 'v', from: 'running', to: 'succeeded', at: 5, attempt: 2, result: result('v') },
          // w, z: starts withdrawn before anything was sent (a lower count): no attempt.
          { taskId: 'w', from: 'pending', to: 'queued', at: 1, attempt: 0, retry: false },
          { taskId: 'w', from: 'queued', to: 'running', at: 2, attempt: 1 },
          { taskId: 'w', from: 'running', to: 'queued', at: 2, attempt: 0, retry: true },
          { taskId: 'z', from: 'pending', to: 'queued', at: 1, attempt: 0, retry: false },
          { taskId: 'z', from: 'queued', to: 'running', at: 2, attempt: 1 },
          {
            taskId: 'z',
            from: 'running',
            to: 'cancelled',
            at: 2,
            attempt: 0,
            reason,
            result: cancelled('z', 0),
          },
        ],
        attempts: [],
      });
      const state = await store.loadRun('r1');
      expect(state?.unspent).toEqual(
        new Map([
          ['i', 1],
          ['x', 1],
        ]),
      );
      expect(state?.unfinished.map((u) => [u.caseId, u.attempts, u.maybeSent])).toEqual([
        ['i', 2, true],
        ['w', 0, false],
      ]);
    });

    test('a reopened run continues: resumes counted, end cleared, results appended after', async () => {
      await store.createRun(newRun('r1'));
      store.append('r1', join(succeeds('a', 0), queued('b', 1)));
      await store.finishRun('r1', { status: 'cancelled', finishedAt: 5 });
      await store.reopenRun('r1');
      let run = await store.getRun('r1');
      expect(run).toMatchObject({ status: 'running', resumes: 1, finishedAt: undefined });
      store.append('r1', succeeds('b', 100));
      await store.finishRun('r1', { status: 'completed', finishedAt: 200 });
      await store.reopenRun('r1');
      await store.finishRun('r1', { status: 'completed', finishedAt: 300 });
      run = await store.getRun('r1');
      expect(run).toMatchObject({ status: 'completed', resumes: 2, finishedAt: 300 });
      expect(run?.counts.succeeded).toBe(2);
      expect((await collect(store.results('r1'))).map((r) => r.id)).toEqual(['a', 'b']);
      expect((await store.loadRun('r1'))?.unfinished).toEqual([]);
      await expect(store.reopenRun('ghost')).rejects.toMatchObject({ failure: 'unknown_run' });
    });

    test('active time sums the sessions; wall time keeps the gap between them (#18)', async () => {
      const t0 = 1_700_000_000_000;
      await store.createRun(newRun('r1', { startedAt: t0 }));
      await store.finishRun('r1', { status: 'interrupted', finishedAt: t0 + 1_000 });
      expect((await store.getRun('r1'))?.activeMs).toBe(1_000);
      // resumed an hour later, for two seconds
      await store.reopenRun('r1', t0 + 3_600_000);
      await store.finishRun('r1', { status: 'completed', finishedAt: t0 + 3_602_000 });
      const run = await store.getRun('r1');
      expect(run?.activeMs).toBe(3_000);
      expect(run!.finishedAt! - run!.startedAt).toBe(3_602_000);
      const [listed] = await store.listRuns();
      expect(listed?.activeMs).toBe(3_000);
    });

    test('a session that died without finishing counts up to its last journal write', async () => {
      const before = Date.now();
      await store.createRun(newRun('r1', { startedAt: before - 10_000 }));
      store.append('r1', succeeds('a', 0));
      await store.flush();
      const after = Date.now();
      // no finishRun: the process died; resumed an hour later, for half a second
      await store.reopenRun('r1', after + 3_600_000);
      await store.finishRun('r1', { status: 'completed', finishedAt: after + 3_600_500 });
      const active = (await store.getRun('r1'))!.activeMs!;
      expect(active).toBeGreaterThanOrEqual(10_000 + 500);
      expect(active).toBeLessThanOrEqual(10_000 + (after - before) + 500);
    });

    test('cases of unknown cost are counted apart from the known costs', async () => {
      await store.createRun(newRun('r1'));
      store.append(
        'r1',
        join(
          succeeds('a', 0, { usage: { tokens: 5, cost: 0.5 } }),
          succeeds('b', 10, { usage: { tokens: 7, cost: 0, costUnknown: true } }),
        ),
      );
      const run = await store.getRun('r1');
      expect(run?.counts).toMatchObject({ total: 2, cost: 0.5, costUnknown: 1, tokens: 12 });
    });

    test('results stream: stopping early is clean, and appends during a read are not blocked', async () => {
      await store.createRun(newRun('r1'));
      for (let i = 0; i < 50; i++) store.append('r1', succeeds(`c${i}`, i * 20));
      const seen: string[] = [];
      for await (const r of store.results('r1')) {
        seen.push(r.id);
        if (seen.length === 3) {
          store.append('r1', succeeds('late', 5000));
          await store.flush();
        }
        if (seen.length === 10) break;
      }
      expect(seen).toHaveLength(10);
      const all = await collect(store.results('r1'));
      expect(all).toHaveLength(51);
      expect(all.at(-1)?.id).toBe('late');
    });

    test('prune deletes runs by age and by count, and nothing else', async () => {
      for (let i = 0; i < 5; i++) {
        await store.createRun(newRun(`r${i}`, { startedAt: 1000 * i }));
        store.append(`r${i}`, succeeds('a', 0));
      }
      expect(await store.prune({ maxAgeMs: 2500, now: 5000 })).toBe(3); // r0 r1 r2
      expect((await store.listRuns()).map((r) => r.id)).toEqual(['r4', 'r3']);
      expect(await store.prune({ maxRuns: 1 })).toBe(1);
      expect((await store.listRuns()).map((r) => r.id)).toEqual(['r4']);
      expect(await collect(store.results('r4'))).toHaveLength(1);
      await expect(collect(store.results('r3'))).rejects.toMatchObject({
        failure: 'unknown_run',
      });
      expect(await store.prune({})).toBe(0);
      await expect(store.prune({ maxRuns: -1 })).rejects.toThrow(/retention\.maxRuns/);
      // A pruned id can be used again.
      await store.createRun(newRun('r0'));
    });

    test('a closed store refuses every call', async () => {
      await store.createRun(newRun('r1'));
      await store.close();
      await expect(store.getRun('r1')).rejects.toMatchObject({ failure: 'closed' });
      expect(() => store.append('r1', succeeds('a', 0))).toThrow(StoreError);
      await store.close(); // twice is fine
      store = await open(); // for afterEach
    });

    test('the journal of a run is independent of other runs', async () => {
      await store.createRun(newRun('x'));
      await store.createRun(newRun('y'));
      store.append('x', succeeds('a', 0));
      store.append('y', join(succeeds('a', 0), succeeds('b', 1)));
      expect((await collect(store.results('x'))).map((r) => r.id)).toEqual(['a']);
      expect((await collect(store.results('y'))).map((r) => r.id)).toEqual(['a', 'b']);
      expect((await store.getRun('x'))?.counts.total).toBe(1);
      expect(await collect(store.transitions('x'))).toEqual(stored(succeeds('a', 0).transitions));
    });

    test('one session holds a run: a second lock is refused naming the holder, until released', async () => {
      expect(await store.runLock('r1')).toBeUndefined();
      const lease = await store.lockRun('r1'); // before the run exists: a new run is locked first
      expect(lease.holder).toMatchObject({ pid: process.pid, host: hostname() });
      expect(await store.runLock('r1')).toEqual(lease.holder);
      const refused = await store.lockRun('r1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toMatchObject({ code: 'RUN_LOCKED' });
      expect((refused as Error).message).toContain('run "r1" is being driven by');
      expect((refused as Error).message).toContain(`pid ${process.pid}`);
      // Other runs are not affected.
      const other = await store.lockRun('r2');
      await lease.release();
      await lease.release(); // twice is fine
      expect(await store.runLock('r1')).toBeUndefined();
      const again = await store.lockRun('r1');
      expect(again.holder.pid).toBe(process.pid);
      await again.release();
      await other.release();
    });

    test("graded cases' answers (issue #20): the latest per case, per run, as JSON, pruned with their run", async () => {
      await store.createRun(newRun('a1'));
      await store.createRun(newRun('a2'));
      const first = {
        caseId: 'c1',
        attempt: 1,
        output: { text: 'hi', n: [1, 2] },
        latencyMs: 12.5,
      };
      const again = {
        caseId: 'c1',
        attempt: 2,
        output: 'again',
        latencyMs: 3,
        tokens: 7,
        cost: 0.01,
      };
      const other = { caseId: 'c2', attempt: 1, output: null, latencyMs: 1 };
      store.appendAnswer('a1', first);
      store.appendAnswer('a1', other);
      store.appendAnswer('a1', again);
      expect(await store.answers('a1')).toEqual(
        new Map<string, AnswerRecord>([
          ['c1', again],
          ['c2', other],
        ]),
      );
      expect(await store.answers('a2')).toEqual(new Map());
      expect(() => store.appendAnswer('nope', first)).toThrow(/nope/);
      await store.finishRun('a1', { status: 'completed', finishedAt: Date.now() });
      await store.prune({ maxRuns: 1, now: Date.now() });
      const left = (await store.listRuns()).map((r) => r.id);
      for (const id of ['a1', 'a2'].filter((x) => !left.includes(x)))
        await expect(store.answers(id)).rejects.toThrow(new RegExp(id));
    });

    test('pace changes: kept in order per run, written by the journal on paceChanged, pruned with their run', async () => {
      await store.createRun(newRun('p1'));
      await store.createRun(newRun('p2'));
      const down = {
        at: 12.5,
        concurrency: 4,
        ratePerMinute: undefined,
        reason: 'rate_limited' as const,
        message: 'concurrency 20 → 4: target answered 429 without Retry-After',
      };
      const rate = { ...down, at: 40, ratePerMinute: 540.5, message: 'rate unlimited → 540/min' };
      store.appendPace('p1', down);
      store.appendPace('p1', rate);
      expect(await store.paceChanges('p1')).toEqual([down, rate]);
      expect(await store.paceChanges('p2')).toEqual([]);
      expect(() => store.appendPace('nope', down)).toThrow(/nope/);

      // Through a journal: a target admitting 2 of 6 at once.
      const run = new Run(
        Array.from({ length: 12 }, (_, i) => ({ id: `c${i}`, input: i })),
        admittingTarget(2),
        { concurrency: 6 },
      );
      const seen: number[] = [];
      run.on('paceChanged', (c) => seen.push(c.concurrency.to));
      const journal = await attachJournal(run, store, { runId: 'pj' });
      await run.start();
      await journal.closed;
      const kept = await store.paceChanges('pj');
      expect(kept.map((c) => c.concurrency)).toEqual(seen);
      expect(kept[0]).toMatchObject({ reason: 'rate_limited', concurrency: 2 });

      await store.prune({ maxRuns: 0 });
      await expect(store.paceChanges('p1')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    });

    test('a journal takes the lock for its session and gives it back when the run ends', async () => {
      const run = new Run(
        [{ id: 'a', input: 1 }],
        { execute: async () => 'ok' },
        { concurrency: 1 },
      );
      const journal = await attachJournal(run, store, { runId: 'j' });
      expect((await store.runLock('j'))?.pid).toBe(process.pid);
      const second = new Run(
        [{ id: 'a', input: 1 }],
        { execute: async () => 'ok' },
        { concurrency: 1 },
      );
      await expect(
        attachJournal(second, store, { runId: 'j', resume: true }),
      ).rejects.toMatchObject({ code: 'RUN_LOCKED' });
      // The refused session wrote nothing: the run was not re-opened.
      expect((await store.getRun('j'))?.resumes).toBe(0);
      await run.start();
      await journal.closed;
      expect(await store.runLock('j')).toBeUndefined();
      const resumed = await attachJournal(second, store, { runId: 'j', resume: true });
      await second.start();
      await resumed.closed;
      expect((await store.getRun('j'))?.resumes).toBe(1);
    });
  });
}
