/**
 * compareRuns over real journaled runs (ExecutorService, a function target on the virtual
 * clock, MemoryStore and SqliteStore): every case lands in the right list, the figures agree
 * with each run's own report, repeats and several runs per side give per-case verdicts, a
 * resumed run counts each case's latest result, and bad references are named.
 */

import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { compareRuns } from '../../src/compare/compare.js';
import { mcnemar } from '../../src/compare/stats.js';
import { type AttemptContext, CancellationToken, VirtualClock } from '../../src/core/index.js';
import { parsePlan, type TestCase } from '../../src/plans/index.js';
import { summarize } from '../../src/report/index.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { RunHistory } from '../../src/runner/history.js';
import { MemoryStore, SqliteStore, type Store } from '../../src/store/index.js';

type Behaviour = 'ok' | 'fail' | 'error' | `ok:${string}`;

/** A history whose bot answers each case as `behaviour` says (per repeat, a list). */
function setup(store: Store = new MemoryStore()) {
  const clock = new VirtualClock();
  let behaviour: Record<string, Behaviour | Behaviour[]> = {};
  let token: CancellationToken | undefined;
  let cancelAfter = Number.POSITIVE_INFINITY;
  let calls = 0;
  const bot = async (c: TestCase, ctx: AttemptContext) => {
    if (++calls === cancelAfter) token?.cancel('interrupted by the test');
    await clock.sleep(10 + (c.repeatIndex ?? 0), ctx.signal);
    const id = c.id.replace(/#\d+$/, '');
    const b = behaviour[id] ?? 'ok';
    const now = Array.isArray(b) ? b[(c.repeatIndex ?? 1) - 1]! : b;
    if (now === 'error') throw Object.assign(new Error(`bad ${id}`), { status: 400 });
    if (now === 'fail') return `nope for ${id}`;
    return now === 'ok' ? `ok answer for ${id}` : `ok ${now.slice(3)}`;
  };
  const history = new RunHistory({
    store,
    service: new ExecutorService({ functions: { bot }, clock }),
    clock,
  });
  const run = async (
    ids: readonly string[],
    b: Record<string, Behaviour | Behaviour[]>,
    runId: string,
    extra: { repeat?: number; cancelAfter?: number; plan?: string } = {},
  ) => {
    behaviour = b;
    calls = 0;
    cancelAfter = extra.cancelAfter ?? Number.POSITIVE_INFINITY;
    token = new CancellationToken();
    const manifest = plan(ids, extra.repeat ?? 1, extra.plan ?? 'bot-plan');
    return history.run(manifest, { runId, token });
  };
  const resume = async (runId: string, ids: readonly string[], b: Record<string, Behaviour>) => {
    behaviour = b;
    calls = 0;
    cancelAfter = Number.POSITIVE_INFINITY;
    token = new CancellationToken();
    return history.resume(runId, { manifest: plan(ids, 1, 'bot-plan'), token });
  };
  return { history, run, resume };
}

function plan(ids: readonly string[], repeat: number, name: string) {
  const cases = ids.map(
    (id) =>
      `      - { id: ${id}, inputs: { query: "question ${id}" }, expected: { contains: ok } }`,
  );
  return parsePlan(
    [
      `workflow_id: ${name}`,
      'target: { type: function, name: bot }',
      'execution_policy: { concurrency: 3, retry_policy: { max_attempts: 1 } }',
      ...(repeat > 1 ? [`select: { repeat: ${repeat} }`] : []),
      'datasets:',
      '  - name: main',
      '    cases:',
      ...cases,
      '',
    ].join('\n'),
  );
}

const ids = (list: readonly { id: string }[]) => list.map((c) => c.id);

describe('compareRuns', () => {
  it('sorts every case into its list, with details, and the figures of each run (SQLite, both readers)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stride-compare-'));
    const { history, run } = setup(new SqliteStore({ path: join(dir, 'stride.db') }));
    const baseIds = ['keep', 'regress', 'fix', 'gone', 'stuck', 'reworded', 'crash'];
    const headIds = ['keep', 'regress', 'fix', 'stuck', 'reworded', 'crash', 'new'];
    await run(baseIds, { fix: 'fail', stuck: 'fail', reworded: 'ok:first wording' }, 'r1');
    await run(
      headIds,
      { regress: 'fail', stuck: 'error', reworded: 'ok:second wording', crash: 'error' },
      'r2',
    );
    const cmp = await compareRuns(history, 'r1', 'r2');
    expect(ids(cmp.regressions)).toEqual(['crash', 'regress']);
    expect(ids(cmp.fixes)).toEqual(['fix']);
    expect(ids(cmp.added)).toEqual(['new']);
    expect(ids(cmp.removed)).toEqual(['gone']);
    expect(ids(cmp.still_failing)).toEqual(['stuck']);
    expect(ids(cmp.changed)).toEqual(['reworded']);
    expect(cmp.flaky).toEqual([]);
    expect(cmp.unjudged).toEqual([]);
    const s = cmp.summary;
    expect(s.matched).toBe(6);
    expect(s.counts).toMatchObject({ regressions: 2, fixes: 1, unchanged: 1 });

    // A regression carries what a reviewer needs: inputs, both outputs and verdicts, the
    // assertion that broke, the diff.
    const reg = cmp.regressions.find((c) => c.id === 'regress')!;
    expect(reg).toMatchObject({
      dataset: 'main',
      verdict: 'regressed',
      detailed: true,
      inputs: { query: 'question regress' },
      base: { status: 'success', samples: 1, passed: 1, output: 'ok answer for regress' },
      head: { status: 'failed', samples: 1, passed: 0, output: 'nope for regress' },
      assertion: { type: 'contains', passed: false },
    });
    expect(reg.diff).toBe('- ok answer for regress\n+ nope for regress');
    expect(reg.similarity).toBeCloseTo((2 * 2) / 7, 12); // "for regress" shared, of 4 + 3 words
    expect(cmp.regressions.find((c) => c.id === 'crash')!.head).toMatchObject({
      status: 'error',
      error: 'bad crash',
    });
    const changed = cmp.changed[0]!;
    expect(changed.diff).toBe('- ok first wording\n+ ok second wording');
    expect(changed.similarity).toBeCloseTo(4 / 6, 12);

    // Pass rates, latency, tokens and cost are each run's own report's numbers.
    for (const [side, id] of [
      [s.base, 'r1'],
      [s.head, 'r2'],
    ] as const) {
      const rec = await history.getRun(id);
      const report = await summarize(() => history.results(id), {
        runId: id,
        plan: rec.plan,
        startedAt: rec.startedAt,
        finishedAt: rec.finishedAt,
      });
      expect(side.total).toBe(report.total);
      expect(side.passed).toBe(report.counts.success);
      expect(side.pass_rate).toBe(report.passRate);
      expect(side.latency).toEqual({ p50: report.latency.p50, p90: report.latency.p90 });
      expect(side.tokens).toBe(report.tokens);
      expect(side.cost).toBe(report.cost);
      expect(side.runs.map((r) => r.id)).toEqual([id]);
    }
    expect(s.base.pass_rate).toBeCloseTo(5 / 7, 12);
    expect(s.head.pass_rate).toBeCloseTo(4 / 7, 12);
    expect(s.delta.pass_rate).toBeCloseTo(4 / 7 - 5 / 7, 12);
    expect(s.base.ci95!.low).toBeLessThan(5 / 7);
    expect(s.datasets).toEqual([
      expect.objectContaining({ name: 'main', delta_pass_rate: s.delta.pass_rate }),
    ]);
    expect(s.test).toEqual(mcnemar(2, 1));
    expect(s.p_value).toBe(1);
    expect(s.significant).toBe(false);
    expect(s.warnings).toEqual([]);
    // The direct read of the SQLite file and the Store port agree on everything.
    expect(await compareRuns(history, 'r1', 'r2', { direct: false })).toEqual(cmp);
    await history.store.close();
  });

  it('cuts details past the limit but lists every id; calls many regressions significant', async () => {
    const { history, run } = setup();
    const all = Array.from({ length: 12 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    await run(all, {}, 'r1');
    const broken = Object.fromEntries(all.slice(0, 8).map((id) => [id, 'fail' as const]));
    await run(all, broken, 'r2');
    const cmp = await compareRuns(history, 'r1', 'r2', { details: 3 });
    expect(ids(cmp.regressions)).toEqual(all.slice(0, 8));
    expect(cmp.regressions.map((c) => c.detailed)).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(cmp.regressions[5]).not.toHaveProperty('diff');
    expect(cmp.regressions[5]!.head).toEqual({
      status: 'failed',
      samples: 1,
      passed: 0,
      pass_rate: 0,
      score: 0,
    });
    expect(cmp.summary.details).toEqual({ limit: 3, left_out: 5 });
    expect(cmp.summary.p_value).toBeCloseTo(2 / 256, 15);
    expect(cmp.summary.significant).toBe(true);
    // the reverse direction is as unlikely by chance, but it is no regression
    const back = await compareRuns(history, 'r2', 'r1');
    expect(back.summary.p_value).toBeCloseTo(2 / 256, 15);
    expect(back.summary.significant).toBe(false);
    expect(ids(back.fixes)).toEqual(all.slice(0, 8));
  });

  it('with repeats, a case that varies within a run is flaky, not a regression', async () => {
    const { history, run } = setup();
    const cases = ['steady', 'down', 'up', 'wobbly', 'wobbly-before'];
    await run(cases, { up: 'fail', 'wobbly-before': ['ok', 'fail', 'ok'] }, 'r1', { repeat: 3 });
    await run(cases, { down: 'fail', wobbly: ['ok', 'ok', 'fail'] }, 'r2', { repeat: 3 });
    const cmp = await compareRuns(history, 'r1', 'r2');
    expect(ids(cmp.regressions)).toEqual(['down']);
    expect(ids(cmp.fixes)).toEqual(['up']);
    expect(ids(cmp.flaky)).toEqual(['wobbly', 'wobbly-before']);
    expect(cmp.flaky.find((c) => c.id === 'wobbly')).toMatchObject({
      verdict: 'flaky',
      base: { samples: 3, passed: 3, pass_rate: 1 },
      head: { samples: 3, passed: 2, status: 'failed' },
    });
    expect(cmp.regressions[0]).toMatchObject({
      base: { samples: 3, passed: 3 },
      head: { samples: 3, passed: 0 },
    });
    expect(cmp.summary.repeated).toBe(true);
    expect(cmp.summary.matched).toBe(5);
    expect(cmp.summary.base.total).toBe(15);
    expect(cmp.summary.test).toMatchObject({ regressed: 1, fixed: 1 });
  });

  it('pools several runs per side: a case that passed in one base run only is flaky', async () => {
    const { history, run } = setup();
    const cases = ['a', 'b', 'c'];
    await run(cases, { c: 'fail' }, 'r1');
    await run(cases, {}, 'r2');
    await run(cases, { a: 'fail', c: 'fail' }, 'r3');
    const cmp = await compareRuns(history, 'r1,r2', ['r3']);
    expect(ids(cmp.flaky)).toEqual(['c']);
    expect(ids(cmp.regressions)).toEqual(['a']);
    expect(cmp.flaky[0]).toMatchObject({ base: { samples: 2, passed: 1, pass_rate: 0.5 } });
    expect(cmp.summary.base.runs.map((r) => r.id)).toEqual(['r1', 'r2']);
    expect(cmp.summary.base.total).toBe(6);
  });

  it('resolves latest and latest~N among the completed runs of a plan', async () => {
    const { history, run } = setup();
    await run(['a', 'b'], {}, 'r1');
    await run(['a', 'b'], { a: 'fail' }, 'r2');
    await run(['a', 'b'], {}, 'other', { plan: 'another-plan' });
    const cmp = await compareRuns(history, 'latest~1', 'latest', { plan: 'bot-plan' });
    expect(cmp.summary.base.runs[0]!.id).toBe('r1');
    expect(cmp.summary.head.runs[0]!.id).toBe('r2');
    expect(ids(cmp.regressions)).toEqual(['a']);
    // the plan of a run named by id stands for --plan; runs of two plans compare fine
    const mixed = await compareRuns(history, 'other', 'latest');
    expect(mixed.summary.head.runs[0]!.id).toBe('other');
    const cross = await compareRuns(history, 'r2', 'other');
    expect(ids(cross.fixes)).toEqual(['a']);
    await expect(compareRuns(history, 'latest~2', 'latest', { plan: 'bot-plan' })).rejects.toThrow(
      /base latest~2: plan "bot-plan" has only 2 completed run\(s\) \(newest: r2, r1\)/,
    );
    await expect(compareRuns(history, 'latest', 'latest', { plan: 'nope' })).rejects.toMatchObject({
      code: 'RUN_NOT_FOUND',
      message: expect.stringContaining('"nope" has no completed run'),
    });
  });

  it('names the bad input: unknown run, malformed reference, disjoint runs, bad options', async () => {
    const { history, run } = setup();
    await run(['a'], {}, 'r1');
    await run(['z'], {}, 'r2');
    await expect(compareRuns(history, 'r1', 'missing')).rejects.toMatchObject({
      code: 'RUN_NOT_FOUND',
      message: expect.stringMatching(/^head: no run "missing"/),
    });
    await expect(compareRuns(history, 'latest', 'latest')).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('--plan NAME'),
    });
    await expect(compareRuns(history, 'latest~x', 'r1', { plan: 'p' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('"latest~x"'),
    });
    await expect(compareRuns(history, 'r1,r1', 'r2')).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(compareRuns(history, 'r1', 'r2')).rejects.toMatchObject({
      code: 'NOTHING_TO_COMPARE',
      message: expect.stringMatching(/runs r1 \(1 cases\) and r2 \(1 cases\) share no case id/),
    });
    await expect(compareRuns(history, 'r1', 'r1', { details: -1 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(compareRuns(history, 'r1', 'r1', { alpha: 2 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
  });

  it('a run that was cancelled is compared as far as it got, and after its resume by its latest results (SQLite)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stride-compare-'));
    const store = new SqliteStore({ path: join(dir, 'stride.db') });
    const { history, run, resume } = setup(store);
    try {
      const cases = Array.from({ length: 10 }, (_, i) => `c${i}`);
      await run(cases, {}, 'r1');
      const cut = await run(cases, { c1: 'fail' }, 'r2', { cancelAfter: 4 });
      expect(cut.run.status).toBe('cancelled');
      const partial = await compareRuns(history, 'r1', 'r2');
      expect(partial.summary.warnings.join('\n')).toMatch(
        /head run r2 is cancelled, not completed/,
      );
      expect(partial.summary.head.cancelled).toBeGreaterThan(0);
      expect(partial.unjudged.length).toBe(partial.summary.head.cancelled);
      await resume('r2', cases, { c1: 'fail' });
      const full = await compareRuns(history, 'r1', 'r2');
      expect(full.summary.warnings).toEqual([]);
      expect(full.unjudged).toEqual([]);
      expect(full.summary.head.total).toBe(10); // the cancelled rows a resume finished do not count
      expect(ids(full.regressions)).toEqual(['c1']);
      expect(full.summary.counts.unchanged).toBe(9);
      // The direct read of the SQLite file and the Store port give the same comparison.
      expect(await compareRuns(history, 'r1', 'r2', { direct: false })).toEqual(full);
      expect(await compareRuns(history, 'r1', 'r2', { direct: false })).toEqual(
        await compareRuns(history, 'r1', 'r2'),
      );
      // A damaged row is STORE_CORRUPT naming the file, whichever way the file is read.
      const Driver = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      const raw = new Driver(join(dir, 'stride.db'));
      raw.prepare("UPDATE results SET output = '{\"output\": \"ok' WHERE case_id = 'c3'").run();
      raw.close();
      for (const direct of [true, false]) {
        await expect(compareRuns(history, 'r1', 'r2', { direct })).rejects.toMatchObject({
          code: 'STORE_CORRUPT',
          message: expect.stringContaining(join(dir, 'stride.db')),
        });
      }
    } finally {
      await store.close();
    }
  });
});
