/**
 * The plan's grader (issue #20 item 1): `llm_rubric` gradings are tasks of a second engine `Run`
 * that lives as long as the app's run, so they are rate-limited, retried and costed by the same
 * engine, with the grader's own concurrency, retry policy, rate limit and rate bucket key
 * (`grader.key`): grading never eats the app's limit.
 */

import {
  type Clock,
  type RateLimiterRegistry,
  Run,
  type Target,
  type TaskSpec,
  type TaskTransition,
} from '../core/index.js';
import {
  GRADER_SYSTEM,
  type Grade,
  type GradeRequest,
  type Grader,
  type GraderConfig,
  gradingPrompt,
  parseVerdict,
  type TestCase,
  unparsableGrade,
} from '../plans/index.js';
import { runOptionsFor } from './executor-service.js';

/** A grading as an engine task: a TestCase whose inputs are the grader's chat messages. */
type GradeTask = TestCase;

interface Waiter {
  readonly resolve: (grade: Grade) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Grades through an engine run of its own. `grade()` queues one task and settles when it ends:
 * its answer parsed (`parseVerdict`), or the grader call's error after the grader's retries, or
 * `GRADE_UNPARSABLE`. `close()` ends the run once no grading is pending.
 *
 * @example
 * ```ts
 * const grader = await EngineGrader.start(manifest.grader, { limiters });
 * const g = await grader.grade({ caseId: 'c1', rubric: 'is polite', input: {}, output: 'Hi!' });
 * await grader.close();
 * ```
 */
export class EngineGrader implements Grader {
  private readonly inbox: TaskSpec<GradeTask>[] = [];
  private readonly waiters = new Map<string, Waiter>();
  private wake: (() => void) | undefined;
  private closed = false;
  private seq = 0;
  private readonly run: Run<GradeTask, unknown>;
  private readonly finished: Promise<unknown>;

  private constructor(
    config: GraderConfig,
    target: Target<GradeTask, unknown> & { close?: () => Promise<void> },
    options: { clock?: Clock; limiters?: RateLimiterRegistry },
  ) {
    // The grader's own bucket: the app's rate limit is keyed by the app target's key.
    const keyed: Target<GradeTask, unknown> = { key: config.key, execute: target.execute };
    this.run = new Run(this.source(), keyed, {
      ...runOptionsFor({ executionPolicy: config.policy } as Parameters<typeof runOptionsFor>[0]),
      // A grading is not paced down by the app's refusals, and its results are not kept.
      retainResults: false,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.limiters === undefined ? {} : { limiters: options.limiters }),
    });
    this.run.on('transition', (t) => this.settle(t));
    this.finished = this.run.start().finally(() => target.close?.());
  }

  /** Builds the grader's target (undici, pooled to its concurrency) and starts its run. */
  static async start(
    config: GraderConfig,
    options: {
      clock?: Clock;
      limiters?: RateLimiterRegistry;
      target?: Target<GradeTask, unknown>;
    } = {},
  ): Promise<EngineGrader> {
    let target = options.target;
    if (target === undefined) {
      const { builtInTarget } = await import('./targets.js');
      target = await builtInTarget(config.target, config.policy.concurrency);
    }
    return new EngineGrader(config, target, options);
  }

  private async *source(): AsyncGenerator<TaskSpec<GradeTask>> {
    for (;;) {
      const next = this.inbox.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  grade(request: GradeRequest, signal?: AbortSignal): Promise<Grade> {
    if (this.closed) return Promise.reject(new Error('the grader is closed'));
    const id = `${request.caseId}#grade-${++this.seq}`;
    const messages = [
      { role: 'system', content: GRADER_SYSTEM },
      { role: 'user', content: gradingPrompt(request) },
    ];
    const task: TaskSpec<GradeTask> = {
      id,
      input: {
        id,
        inputs: { messages, ...(request.model === undefined ? {} : { model: request.model }) },
        expected: [],
        tags: [],
        priority: 0,
        metadata: {},
      } as unknown as GradeTask,
    };
    return new Promise<Grade>((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      // The case ending (timeout, cancel) stops waiting; the grading task runs to its end.
      signal?.addEventListener('abort', () => {
        if (this.waiters.delete(id)) reject(signal.reason);
      });
      this.inbox.push(task);
      this.wake?.();
    });
  }

  private settle(t: TaskTransition): void {
    if (t.to !== 'succeeded' && t.to !== 'failed' && t.to !== 'timeout' && t.to !== 'error')
      if (t.to !== 'cancelled') return;
    const w = this.waiters.get(t.taskId);
    if (w === undefined) return;
    this.waiters.delete(t.taskId);
    const result = (t as { result: { attempts: number; usage: { tokens: number; cost: number } } })
      .result;
    const usage = {
      attempts: result.attempts,
      ...(result.usage.tokens > 0 ? { tokens: result.usage.tokens } : {}),
      ...(result.usage.cost > 0 ? { cost: result.usage.cost } : {}),
    };
    if (t.to === 'succeeded') {
      const text = answerText(t.result.output);
      const v = parseVerdict(text);
      if (v === undefined) w.reject(Object.assign(unparsableGrade(text), { usage }));
      else w.resolve({ ...v, usage });
      return;
    }
    const err =
      t.to === 'cancelled'
        ? new Error(`grading cancelled: ${t.reason}`)
        : Object.assign(new Error(t.error.message), { code: t.error.code });
    w.reject(Object.assign(err, { usage }));
  }

  /** Ends the grader's run once the queued gradings are done. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.finished;
  }
}

function answerText(output: unknown): string {
  if (typeof output === 'string') return output;
  const text = (output as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : JSON.stringify(output ?? null);
}
