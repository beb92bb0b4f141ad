/**
 * Pipelined grading through the ExecutorService (issue #20): a graded case gives its app slot
 * back once the app answered, so gradings of early cases overlap app calls of later ones. On the
 * VirtualClock: an app call and a grading of 50 ms each, 10 cases, app concurrency 2, grader
 * concurrency 2 (so at most 4 cases graded off-slot): 300 ms instead of 500 held.
 */

import { describe, expect, test } from 'vitest';
import { VirtualClock } from '../../src/core/index.js';
import { type Grade, type GradeRequest, type Grader, parsePlan } from '../../src/plans/index.js';
import { ExecutorService } from '../../src/runner/executor-service.js';

function plan(cases: number, graded: boolean): string {
  return [
    'workflow_id: pipeline',
    'target: { type: function, name: app }',
    'execution_policy: { concurrency: 2, retry_policy: { max_attempts: 1 } }',
    'grader: { base_url: "http://127.0.0.1:1/v1", model: stride-grader, concurrency: 2 }',
    'cases:',
    ...Array.from({ length: cases }, (_, i) =>
      graded
        ? `  - { id: c${i}, inputs: { q: refund ${i} }, expected: { llm_rubric: mentions the refund } }`
        : `  - { id: c${i}, inputs: { q: refund ${i} }, expected: { contains: refund } }`,
    ),
    '',
  ].join('\n');
}

async function measure(graded: boolean) {
  const clock = new VirtualClock();
  let app = 0;
  let maxApp = 0;
  let gradings = 0;
  const grader: Grader = {
    async grade(r: GradeRequest, signal?: AbortSignal): Promise<Grade> {
      gradings++;
      await clock.sleep(50, signal);
      return { pass: r.output.includes('refund'), score: 1, reason: 'ok', usage: { attempts: 1 } };
    },
  };
  const service = new ExecutorService({
    clock,
    grader,
    functions: {
      app: async (testCase, ctx) => {
        maxApp = Math.max(maxApp, ++app);
        await clock.sleep(50, ctx.signal);
        app--;
        return String((testCase.inputs as { q: string }).q);
      },
    },
  });
  const { run } = await service.runTestPlan(parsePlan(plan(10, graded)));
  return { end: clock.now(), maxApp, gradings, passed: run.statistics.succeededTasks };
}

describe('pipelined grading through the service', () => {
  test('graded cases release their app slot: 300 ms, app concurrency held, every case counted', async () => {
    const piped = await measure(true);
    expect(piped).toEqual({ end: 300, maxApp: 2, gradings: 10, passed: 10 });
  });

  test('a case without a rubric keeps the old shape (no grading, slot held to the end)', async () => {
    expect(await measure(false)).toEqual({ end: 250, maxApp: 2, gradings: 0, passed: 10 });
  });
});
