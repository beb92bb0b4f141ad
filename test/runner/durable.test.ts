/**
 * Durable runs on the VirtualClock: a run interrupted half-way (cancelled) and resumed must end
 * with the verdicts of an uninterrupted run, without executing a stored verdict again.
 */

import { describe, expect, test } from 'vitest';
import {
  type AttemptContext,
  CancellationToken,
  NonRetryableError,
  RetryableError,
  VirtualClock,
} from '../../src/core/index.js';
import { parsePlan, type RunManifest, type TestCase } from '../../src/plans/index.js';
import { rerun, resume, runDurable } from '../../src/runner/durable.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { snapshotPlan } from '../../src/runner/snapshot.js';
import { attachJournal, MemoryStore, SqliteStore, type Store } from '../../src/store/index.js';
import { tempDb } from '../store/helpers.js';

const CASES = 60;

function planText(concurrency = 4): string {
  const cases = Array.from({ length: CASES }, (_, i) => `  - { id: c${i}, inputs: { n: ${i} } }`);
  return [
    'workflow_id: durable',
    'target: { type: function, name: bot }',
    'execution_policy:',
    `  concurrency: ${concurrency}`,
    '  retry_policy: { max_attempts: 3, backoff_seconds: 1 }',
    'cases:',
    ...cases,
    '',
  ].join('\n');
}

/**
 * n % 6: 0-2 succeed, 3 fails its assertion, 4 is an error, 5 fails once (retryable) then
 * succeeds. Counts calls per case; cancels the session's token after `cancelAfter` calls.
 */
class Bot {
  readonly calls = new Map<string, number>();
  token = new CancellationToken();
  cancelAfter = Number.POSITIVE_INFINITY;
  private sessionCalls = 0;

  constructor(private readonly clock: VirtualClock) {}

  session(cancelAfter = Number.POSITIVE_INFINITY): CancellationToken {
    this.token = new CancellationToken();
    this.cancelAfter = cancelAfter;
    this.sessionCalls = 0;
    return this.token;
  }

  readonly fn = async (c: TestCase, ctx: AttemptContext): Promise<unknown> => {
    this.calls.set(c.id, (this.calls.get(c.id) ?? 0) + 1);
    this.sessionCalls += 1;
    if (this.sessionCalls === this.cancelAfter) this.token.cancel('interrupted by the test');
    await this.clock.sleep(10 + (Number((c.inputs as { n: number }).n) % 7), ctx.signal);
    const n = Number((c.inputs as { n: number }).n);
    switch (n % 6) {
      case 3:
        return 'nope';
      case 4:
        throw new NonRetryableError(`bad request ${n}`);
      case 5:
        if (ctx.attempt === 1) throw new RetryableError(`flaky ${n}`);
        return 'ok';
      default:
        return 'ok';
    }
  };
}

/** The plan, with an assertion: `nope` fails it. */
function manifestOf(concurrency = 4): RunManifest {
  const text = planText(concurrency).replace(
    /inputs: \{ n: (\d+) \} \}/g,
    'inputs: { n: $1 }, expected: { contains: ok } }',
  );
  return parsePlan(text);
}

function setup(): { clock: VirtualClock; bot: Bot; service: ExecutorService } {
  const clock = new VirtualClock();
  const bot = new Bot(clock);
  const service = new ExecutorService({ clock, functions: { bot: bot.fn } });
  return { clock, bot, service };
}

function verdicts(results: readonly { executionId: string; status: string }[]) {
  return Object.fromEntries(
    [...results]
      .sort((a, b) => a.executionId.localeCompare(b.executionId))
      .map((r) => [r.executionId, r.status]),
  );
}

async function storedVerdicts(store: Store, runId: string): Promise<Map<string, string[]>> {
  const byCase = new Map<string, string[]>();
  for await (const r of store.results(runId))
    byCase.set(r.id, [...(byCase.get(r.id) ?? []), r.status]);
  return byCase;
}

async function baseline(): Promise<Record<string, string>> {
  const { clock, service } = setup();
  const { results } = await runDurable(service, manifestOf(), new MemoryStore(), { clock });
  return verdicts(results);
}

const STORES: [string, () => Store][] = [
  ['memory', () => new MemoryStore()],
  ['sqlite', () => new SqliteStore({ path: tempDb() })],
];

describe.each(STORES)('resume and rerun (%s store)', (_name, makeStore) => {
  test('a run cancelled half-way, resumed twice, ends like an uninterrupted run', async () => {
    const expected = await baseline();
    expect(Object.keys(expected)).toHaveLength(CASES);
    const store = makeStore();
    try {
      const { clock, bot, service } = setup();
      const first = await runDurable(service, manifestOf(), store, {
        clock,
        token: bot.session(15),
        runId: 'r1',
      });
      expect(first.runId).toBe('r1');
      expect(first.run.status).toBe('cancelled');
      const afterFirst = await storedVerdicts(store, 'r1');
      const verdictsFirst = [...afterFirst].filter(([, s]) => s.at(-1) !== 'cancelled');
      expect(verdictsFirst.length).toBeGreaterThan(0);
      expect(verdictsFirst.length).toBeLessThan(CASES);
      const callsAfterFirst = new Map(bot.calls);

      // Resume 1: interrupted again.
      const second = await resume(service, manifestOf(), store, 'r1', {
        clock,
        token: bot.session(15),
      });
      expect(second.runId).toBe('r1');
      const afterSecond = await storedVerdicts(store, 'r1');
      // No stored verdict was executed again.
      for (const [id] of verdictsFirst) expect(bot.calls.get(id)).toBe(callsAfterFirst.get(id));
      const verdictsSecond = [...afterSecond].filter(([, s]) => s.at(-1) !== 'cancelled');
      expect(verdictsSecond.length).toBeGreaterThan(verdictsFirst.length);
      const callsAfterSecond = new Map(bot.calls);

      // Resume 2: to the end.
      const third = await resume(service, manifestOf(), store, 'r1', {
        clock,
        token: bot.session(),
      });
      expect(third.run.status).toBe('completed');
      for (const [id] of verdictsSecond) expect(bot.calls.get(id)).toBe(callsAfterSecond.get(id));

      // One result per case, equal to the uninterrupted run's verdicts.
      expect(third.results).toHaveLength(CASES);
      expect(new Set(third.results.map((r) => r.executionId)).size).toBe(CASES);
      expect(verdicts(third.results)).toEqual(expected);
      // In the store: every case ends with exactly one verdict (a cancelled result before it
      // is the interrupted session's).
      const finalStored = await storedVerdicts(store, 'r1');
      expect(finalStored.size).toBe(CASES);
      for (const [id, statuses] of finalStored) {
        expect(statuses.filter((s) => s !== 'cancelled')).toHaveLength(1);
        expect(statuses.at(-1), id).not.toBe('cancelled');
      }
      // Each case ran as often as it needed (twice for the flaky ones), plus at most once per
      // session that was cancelled around it.
      for (let i = 0; i < CASES; i++) {
        const needed = i % 6 === 5 ? 2 : 1;
        const cancelled = finalStored.get(`c${i}`)!.filter((s) => s === 'cancelled').length;
        expect(bot.calls.get(`c${i}`), `c${i}`).toBeGreaterThanOrEqual(needed);
        expect(bot.calls.get(`c${i}`), `c${i}`).toBeLessThanOrEqual(needed + cancelled);
      }
      const run = await store.getRun('r1');
      expect(run?.resumes).toBe(2);
      expect(run?.status).toBe('completed');
      expect(run?.counts.succeeded).toBe(
        Object.values(expected).filter((s) => s === 'success').length,
      );
    } finally {
      await store.close();
    }
  });

  test('a crash (the journal stops mid-run): running cases are maybe-sent, resumed with their attempts', async () => {
    const store = makeStore();
    try {
      const { clock, bot } = setup();
      const attemptsSeen = new Map<string, number[]>();
      const inner = bot.fn;
      const traced = new ExecutorService({
        clock,
        functions: {
          bot: (c, ctx) => {
            attemptsSeen.set(c.id, [...(attemptsSeen.get(c.id) ?? []), ctx.attempt]);
            return inner(c, ctx);
          },
        },
      });
      // The "crash": after 20 calls the journal detaches (nothing more reaches the store), then
      // the run is cancelled; the stored run stays `running`, as after kill -9.
      const prepared = await traced.prepare(manifestOf());
      const journal = await attachJournal(prepared.run, store, {
        runId: 'c',
        plan: snapshotPlan(manifestOf()),
        clock,
      });
      let calls = 0;
      let detached: Promise<void> | undefined;
      prepared.run.on('transition', (t) => {
        if (t.to === 'running' && ++calls === 20) {
          detached = journal.detach().then(() => prepared.run.cancel());
        }
      });
      await prepared.run.start();
      await detached;
      const state = await store.loadRun('c');
      expect(state?.run.status).toBe('running');
      const maybe = state?.unfinished.filter((u) => u.maybeSent) ?? [];
      expect(maybe.length).toBeGreaterThan(0);
      const storedIds = new Set<string>();
      for await (const r of store.results('c')) storedIds.add(r.id);
      const callsBefore = new Map(bot.calls);

      const resumed = await resume(traced, manifestOf(), store, 'c', { clock });
      expect(resumed.results).toHaveLength(CASES);
      expect(verdicts(resumed.results)).toEqual(await baseline());
      for (const id of storedIds) expect(bot.calls.get(id)).toBe(callsBefore.get(id));
      for (const u of maybe) {
        // re-sent (at least once), numbered after the attempts already spent
        expect(attemptsSeen.get(u.caseId)?.at(-1)).toBeGreaterThan(u.attempts);
        const attempts = [];
        for await (const a of store.attempts('c', u.caseId)) attempts.push(a);
        expect(attempts.find((a) => a.state === 'maybe_sent')?.number).toBe(u.attempts);
      }
      const run = await store.getRun('c');
      expect(run?.status).toBe('completed');
      expect(run?.counts.total).toBe(CASES);
    } finally {
      await store.close();
    }
  });

  test('a case whose last allowed attempt was in flight at the crash is not sent again', async () => {
    // Issue 16, item 5: an always-429 case had attempts 1 and 2 journaled and attempt 3 (of 3)
    // in flight at the kill; the resume sent attempt 4. A maybe-sent attempt counts as spent.
    // (A 503 now: a 429 is a refusal, which does not spend max_attempts; see the next test.)
    const store = makeStore();
    try {
      const clock = new VirtualClock();
      const calls = new Map<string, number>();
      const limited = async (c: TestCase, ctx: AttemptContext): Promise<unknown> => {
        calls.set(c.id, (calls.get(c.id) ?? 0) + 1);
        await clock.sleep(10, ctx.signal);
        if (c.id === 'c0') throw Object.assign(new Error('unavailable'), { status: 503 });
        return 'ok';
      };
      const service = new ExecutorService({ clock, functions: { bot: limited } });
      const manifest = manifestOf();
      const prepared = await service.prepare(manifest);
      const journal = await attachJournal(prepared.run, store, {
        runId: 'x',
        plan: snapshotPlan(manifest),
        clock,
      });
      // The "crash" as attempt 3 of c0 starts: nothing after it reaches the store.
      let detached: Promise<void> | undefined;
      prepared.run.on('transition', (t) => {
        if (t.taskId === 'c0' && t.to === 'running' && t.attempt === 3)
          detached = journal.detach().then(() => prepared.run.cancel());
      });
      await prepared.run.start();
      await detached;
      expect(calls.get('c0')).toBe(3);
      const state = await store.loadRun('x');
      expect(state?.unfinished.find((u) => u.caseId === 'c0')).toMatchObject({
        attempts: 3,
        maybeSent: true,
      });

      const resumed = await resume(service, manifest, store, 'x', { clock });
      expect(calls.get('c0')).toBe(3); // no attempt 4
      const c0 = resumed.results.find((r) => r.executionId === 'c0');
      expect(c0).toMatchObject({
        status: 'error',
        metadata: { errorCode: 'ATTEMPTS_EXHAUSTED', attemptCount: 3 },
      });
      const attempts = [];
      for await (const a of store.attempts('x', 'c0')) attempts.push([a.number, a.state]);
      expect(attempts).toEqual([
        [1, 'error'],
        [2, 'error'],
        [3, 'maybe_sent'],
      ]);
      // Every other case got its verdict, each sent as often as it needed.
      expect(resumed.results).toHaveLength(CASES);
      expect(
        resumed.results.filter((r) => r.status !== 'success').map((r) => r.executionId),
      ).toEqual(['c0']);
      expect((await store.getRun('x'))?.status).toBe('completed');
    } finally {
      await store.close();
    }
  });

  test('refusals (429s) before the crash do not spend max_attempts after the resume either', async () => {
    // Issue 17, item 3: a 429 was turned away before any work. c0 is refused 4 times, then
    // answers; the session ends after its 3rd refusal. With max_attempts 3, the resumed case
    // must still be sent (its 3 journaled attempts are refusals), and answer on attempt 5.
    const store = makeStore();
    try {
      const clock = new VirtualClock();
      const calls = new Map<string, number>();
      const refusing = async (c: TestCase, ctx: AttemptContext): Promise<unknown> => {
        const n = (calls.get(c.id) ?? 0) + 1;
        calls.set(c.id, n);
        await clock.sleep(10, ctx.signal);
        if (c.id === 'c0' && n <= 4)
          throw Object.assign(new Error('too many requests'), { status: 429 });
        return 'ok';
      };
      const service = new ExecutorService({ clock, functions: { bot: refusing } });
      const manifest = manifestOf();
      const token = new CancellationToken();
      await runDurable(service, manifest, store, {
        clock,
        runId: 'refused',
        token,
        onStart: (session) =>
          session.run.on('transition', (t) => {
            if (t.taskId === 'c0' && t.to === 'pending' && t.attempt === 3) token.cancel('stop');
          }),
      });
      expect(calls.get('c0')).toBe(3);
      const state = await store.loadRun('refused');
      expect(state?.unspent.get('c0')).toBe(3);

      const resumed = await resume(service, manifest, store, 'refused', { clock });
      expect(calls.get('c0')).toBe(5);
      expect(resumed.results.find((r) => r.executionId === 'c0')).toMatchObject({
        status: 'success',
        metadata: { attemptCount: 5 },
      });
      const attempts = [];
      for await (const a of store.attempts('refused', 'c0'))
        attempts.push([a.number, a.state, a.error?.code]);
      expect(attempts.map((a) => a[2])).toEqual([
        'RATE_LIMITED',
        'RATE_LIMITED',
        'RATE_LIMITED',
        'RATE_LIMITED',
        undefined,
      ]);
    } finally {
      await store.close();
    }
  });

  test('a resume relearns the pace: it starts at the plan concurrency, and the journal keeps both sessions', async () => {
    // Issue 17: the capacity the target had when the session stopped is no evidence of today's.
    // A target admitting 2 at a time under the plan's 4: each session goes 4 -> 2 on its own.
    const store = makeStore();
    try {
      const clock = new VirtualClock();
      let admitted = 0;
      const two = async (_c: TestCase, ctx: AttemptContext): Promise<unknown> => {
        if (admitted >= 2) throw Object.assign(new Error('too many requests'), { status: 429 });
        admitted++;
        try {
          await clock.sleep(10, ctx.signal);
        } finally {
          admitted--;
        }
        return 'ok';
      };
      const service = new ExecutorService({ clock, functions: { bot: two } });
      const manifest = manifestOf();
      const token = new CancellationToken();
      let settled = 0;
      await runDurable(service, manifest, store, {
        clock,
        runId: 'relearn',
        token,
        onStart: (session) =>
          session.run.on('transition', (t) => {
            if (t.to === 'succeeded' && ++settled === 20) token.cancel('stop');
          }),
      });
      let started: number | undefined;
      const resumed = await resume(service, manifest, store, 'relearn', {
        clock,
        onStart: (session) => {
          started = session.run.concurrency;
        },
      });
      expect(started).toBe(4);
      expect(resumed.results.filter((r) => r.status === 'success')).toHaveLength(CASES);
      const decreases = (await store.paceChanges('relearn')).filter((c) =>
        c.message.startsWith('concurrency 4 → '),
      );
      expect(decreases).toHaveLength(2);
    } finally {
      await store.close();
    }
  });

  test('a changed plan is refused unless forced', async () => {
    const store = makeStore();
    try {
      const { clock, bot, service } = setup();
      await runDurable(service, manifestOf(), store, { clock, token: bot.session(10), runId: 'r' });
      const changed = manifestOf(5);
      await expect(resume(service, changed, store, 'r', { clock })).rejects.toMatchObject({
        code: 'PLAN_CHANGED',
        message: expect.stringContaining('the plan changed since run "r" started'),
      });
      expect((await store.getRun('r'))?.resumes).toBe(0);
      const forced = await resume(service, changed, store, 'r', { clock, force: true });
      expect(forced.results).toHaveLength(CASES);
      expect((await store.getRun('r'))?.status).toBe('completed');
      await expect(resume(service, manifestOf(), store, 'nope', { clock })).rejects.toMatchObject({
        code: 'RUN_NOT_FOUND',
      });
    } finally {
      await store.close();
    }
  });

  test('rerun of errors only: a new run, linked to its parent, with the error cases only', async () => {
    const store = makeStore();
    try {
      const { clock, service, bot } = setup();
      const first = await runDurable(service, manifestOf(), store, { clock, runId: 'p' });
      const errors = first.results.filter((r) => r.status === 'error').map((r) => r.executionId);
      expect(errors.length).toBe(CASES / 6);
      const before = new Map(bot.calls);
      const again = await rerun(service, manifestOf(), store, 'p', {
        statuses: ['error'],
        runId: 'child',
        clock,
      });
      expect(again.runId).toBe('child');
      expect(again.results.map((r) => r.executionId).sort()).toEqual([...errors].sort());
      for (const [id, n] of bot.calls) {
        expect(n - (before.get(id) ?? 0)).toBe(errors.includes(id) ? 1 : 0);
      }
      const child = await store.getRun('child');
      expect(child?.parentId).toBe('p');
      expect(child?.counts.total).toBe(errors.length);
      await expect(
        rerun(service, manifestOf(), store, 'p', { statuses: ['timeout'], clock }),
      ).rejects.toMatchObject({ code: 'EMPTY_PLAN' });
    } finally {
      await store.close();
    }
  });
});
