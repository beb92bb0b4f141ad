/**
 * The run's life in the store (runner/run-life.ts), opened by the run session for both plan
 * kinds: one resume path (the state loaded once, maybe-sent attempts journaled by the session),
 * the same PLAN_CHANGED message for a test plan and an action plan, and the `redis` hold of a
 * dispatcher whose queue is unreachable, seen in `holders()` and in the live state.
 *
 * A crash is a journal detached while a case is in flight (the journal stops writing without
 * recording an end, as a killed process leaves it); the real kill -9 is in durable-crash.test.ts.
 * No timer races: targets block on promises the test resolves, waits are on events.
 */

import { describe, expect, test } from 'vitest';
import { type ActionPlan, actionPlan, Executor, ToolRegistry } from '../../src/actions/index.js';
import type { Tool } from '../../src/actions/tool.js';
import type { Target } from '../../src/core/index.js';
import { parsePlan, type RunManifest, type TestCase } from '../../src/plans/index.js';
import type { Dispatcher } from '../../src/runner/dispatcher.js';
import { resume, runDurable } from '../../src/runner/durable.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { RunSession, type StartedRun, testPlan } from '../../src/runner/session.js';
import { MemoryStore } from '../../src/store/index.js';
import type { AttemptRecord, Store } from '../../src/store/port.js';

function manifest(n: number, workflow = 'life'): RunManifest {
  const cases = Array.from({ length: n }, (_, i) => `  - { id: c${i}, inputs: { q: q${i} } }`);
  return parsePlan(
    [
      `workflow_id: ${workflow}`,
      'target: { type: function, name: bot }',
      'execution_policy: { concurrency: 1 }',
      'cases:',
      ...cases,
      '',
    ].join('\n'),
  );
}

const chain = (n: number): ActionPlan => ({
  id: 'a1',
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    tool: 'step',
    arguments: { key: `s${i}` },
    ...(i === 0 ? {} : { dependencies: [`s${i - 1}`] }),
  })),
});

async function attemptsOf(store: Store, runId: string, caseId: string): Promise<AttemptRecord[]> {
  const out: AttemptRecord[] = [];
  for await (const a of store.attempts(runId, caseId)) out.push(a);
  return out;
}

/** A gate the target waits on, and a promise that says the target reached it. */
function gate() {
  let open!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  const arrived = new Promise<void>((r) => {
    reached = r;
  });
  return { open, opened, reached, arrived };
}

describe('run life through the session', () => {
  test('both plan kinds are resumed through the one path: the session loads the state and journals the maybe-sent attempt', async () => {
    // A test plan: case c1 is in flight when its journal ends.
    const store = new MemoryStore();
    const calls: string[] = [];
    const crash = gate();
    let crashing = true;
    const service = new ExecutorService({
      functions: {
        bot: async (c: TestCase) => {
          calls.push(c.id);
          if (crashing && c.id === 'c1') {
            crash.reached();
            await crash.opened;
          }
          return 'ok';
        },
      },
    });
    let dying: Pick<StartedRun, 'run' | 'journal'> | undefined;
    const first = runDurable(service, manifest(3), store, {
      runId: 't1',
      onStart: (s) => {
        dying = s;
      },
    });
    await crash.arrived;
    await dying!.journal.detach(); // the process "dies" with c1 running: nothing more is written
    dying!.run.cancel();
    crashing = false;
    crash.open();
    await first;

    const testSession = new RunSession(
      testPlan((hooks) => resume(service, manifest(3), store, 't1', hooks)),
      { store, signals: false },
    );
    await testSession.drive();
    expect(testSession.life?.prior?.done).toEqual(new Set(['c0']));
    // Only the case in flight may have been sent (cases the engine had merely read ahead are
    // unfinished too, but never maybe-sent).
    expect(
      testSession.life?.prior?.unfinished.filter((u) => u.maybeSent).map((u) => u.caseId),
    ).toEqual(['c1']);
    expect((await attemptsOf(store, 't1', 'c1')).map((a) => [a.number, a.state])).toEqual([
      [1, 'maybe_sent'],
      [2, 'succeeded'],
    ]);
    expect((await store.getRun('t1'))?.status).toBe('completed');

    // An action plan: step s1 is in flight when its journal ends. The same path: the session
    // loads the state, journals the maybe-sent attempt, the executor builds the steps from it.
    const stepCalls: string[] = [];
    const stepCrash = gate();
    let stepCrashing = true;
    const step: Tool<{ key: string }, { key: string }> = {
      name: 'step',
      async execute(args) {
        stepCalls.push(args.key);
        if (stepCrashing && args.key === 's1') {
          stepCrash.reached();
          await stepCrash.opened;
        }
        return { key: args.key };
      },
    };
    const tools = new ToolRegistry([step] as Tool<never, unknown>[]);
    let actionJournal: StartedRun['journal'] | undefined;
    const dead = new Executor({ toolRegistry: tools, store });
    const running = dead.executePlan(chain(3), {
      onStart: (s) => {
        actionJournal = s.journal;
      },
    });
    await stepCrash.arrived;
    await actionJournal!.detach();
    const cancelled = dead.cancelExecution('a1');
    stepCrashing = false;
    stepCrash.open();
    await cancelled;
    await running;

    const actionSession = new RunSession(
      actionPlan(new Executor({ toolRegistry: tools, store }), chain(3), { resume: true }),
      { store, signals: false },
    );
    const { result } = await actionSession.drive();
    expect(result.status).toBe('completed');
    expect(actionSession.life?.prior?.done).toEqual(new Set(['s0']));
    // Only the case in flight may have been sent (cases the engine had merely read ahead are
    // unfinished too, but never maybe-sent).
    expect(
      actionSession.life?.prior?.unfinished.filter((u) => u.maybeSent).map((u) => u.caseId),
    ).toEqual(['s1']);
    expect((await attemptsOf(store, 'a1', 's1')).map((a) => [a.number, a.state])).toEqual([
      [1, 'maybe_sent'],
      [2, 'succeeded'],
    ]);
    expect(stepCalls).toEqual(['s0', 's1', 's1', 's2']);
    expect(calls).toEqual(['c0', 'c1', 'c1', 'c2']);
  });

  test('a changed plan is refused with the same PLAN_CHANGED message for both plan kinds, nothing written', async () => {
    const store = new MemoryStore();
    const service = new ExecutorService({ functions: { bot: async () => 'ok' } });
    await runDurable(service, manifest(2), store, { runId: 'same' });
    const ok: Tool<{ key: string }, { key: string }> = {
      name: 'step',
      execute: async (args) => ({ key: args.key }),
    };
    const tools = new ToolRegistry([ok] as Tool<never, unknown>[]);
    const plan = { ...chain(2), id: 'same-a' };
    await new Executor({ toolRegistry: tools, store }).executePlan(plan);
    const attemptsBefore = (await attemptsOf(store, 'same', 'c0')).length;

    const testRefusal = await new RunSession(
      testPlan((hooks) => resume(service, manifest(3), store, 'same', hooks)),
      { store, signals: false },
    )
      .drive()
      .catch((e: unknown) => e as Error & { code: string });
    const actionRefusal = await new RunSession(
      actionPlan(
        new Executor({ toolRegistry: tools, store }),
        { ...chain(3), id: 'same-a' },
        {
          resume: true,
        },
      ),
      { store, signals: false },
    )
      .drive()
      .catch((e: unknown) => e as Error & { code: string });

    const shape = (e: unknown, id: string) =>
      String((e as Error).message)
        .replace(id, 'ID')
        .replace(/[0-9a-f]{12}/g, 'HASH');
    expect(testRefusal).toMatchObject({ code: 'PLAN_CHANGED' });
    expect(actionRefusal).toMatchObject({ code: 'PLAN_CHANGED' });
    expect(shape(testRefusal, 'same')).toBe(shape(actionRefusal, 'same-a'));
    expect(shape(testRefusal, 'same')).toBe(
      'the plan changed since run "ID" started (plan hash HASH, now HASH): resuming it would mix results of two plans; run the original plan, or pass force to resume anyway',
    );
    // Nothing written, and both runs are free again (the lock taken for the read was given back).
    expect((await attemptsOf(store, 'same', 'c0')).length).toBe(attemptsBefore);
    expect((await store.getRun('same'))?.resumes).toBe(0);
    expect(await store.runLock('same')).toBeUndefined();
    expect(await store.runLock('same-a')).toBeUndefined();
  });

  test("a dispatcher's Redis outage is a counted hold named redis: holders() and the live state show it, released when Redis is back", async () => {
    const store = new MemoryStore();
    const outage = new Set<{ down(): void; up(): void }>();
    const calls: string[] = [];
    const target: Target<TestCase, unknown> = {
      key: 'fake',
      execute: async (c) => {
        calls.push(c.id);
        return 'ok';
      },
    };
    // A dispatcher whose queue the test takes down and brings back (the BullMQ one does this on
    // its connections' error and ready events: BullmqDispatcher.watchOutages).
    const dispatcher: Dispatcher = {
      targetFor: async () => target,
      watchOutages: (listener) => {
        outage.add(listener);
        return () => outage.delete(listener);
      },
      close: async () => {},
    };
    const service = new ExecutorService({
      dispatcher,
      functions: { bot: async () => 'unused' },
    });
    let started!: (s: StartedRun) => void;
    const start = new Promise<StartedRun>((r) => {
      started = r;
    });
    const session = new RunSession(
      testPlan((hooks) => runDurable(service, manifest(4), store, { ...hooks, runId: 'r1' })),
      { store, signals: false, onStart: started },
    );
    const user = session.hold('user', 'me');
    const driving = session.drive();
    const { run, journal } = await start;
    for (const l of outage) l.down();
    expect(session.holders().map((h) => [h.reason, h.by])).toEqual([
      ['user', 'me'],
      ['redis', 'the dispatcher (Redis unreachable)'],
    ]);
    await journal.flush();
    await expect
      .poll(async () => (await store.readLive('r1'))?.state.holds.map((h) => h.reason), {
        timeout: 20_000,
        interval: 20,
      })
      .toEqual(['user', 'redis']);
    user.release();
    // Still held by the outage: nothing starts while Redis is unreachable.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([]);
    expect(run.holds().map((h) => h.reason)).toEqual(['redis']);
    for (const l of outage) l.up();
    const { result } = await driving;
    expect(result.run.statistics.succeededTasks).toBe(4);
    expect(calls).toHaveLength(4);
    expect(session.holders()).toEqual([]);
    expect(outage.size).toBe(0); // unsubscribed when the run's end was durable
  });
});
