/**
 * The seeds' `ExecutorService`: a test plan (RunManifest) in, TestResults out, on the one engine.
 * It maps the manifest's policy to run options, streams the plan's cases into the engine as
 * tasks, wraps the target so every answer is checked against the case's assertions, and converts
 * results with ResultConverter.
 */

import { randomUUID } from 'node:crypto';
import {
  type AttemptContext,
  type CancellationToken,
  type Clock,
  type ErrorCode,
  type Hold,
  InvalidOptionError,
  type RateLimiterRegistry,
  RealClock,
  Run,
  type RunExecutionResult,
  type RunOptions,
  StrideError,
  StubExecutor,
  type Target,
  TaskFailedError,
  type TaskSpec,
  type TaskView,
  withSeedUsage,
} from '../core/index.js';
import {
  caseVerdict,
  evaluateAssertionsAsync,
  type Grader,
  iterateCases,
  type RunManifest,
  type TargetConfig,
  type TestCase,
} from '../plans/index.js';
import { type CaseOutcome, ResultConverter, type TestResult } from '../report/convert.js';
import type { AnswerRecord } from '../store/port.js';
import type { Dispatcher, ResumeContext } from './dispatcher.js';

/** A plain async function that executes one case; the seeds' `task_execution_func`. */
export type CaseFunction = (testCase: TestCase, ctx: AttemptContext) => Promise<unknown>;

/** Builds a Target for a plan's `target:` section (dify, openai, http); supplied by the targets layer. */
export type TargetFactory = (
  config: TargetConfig,
  context: { concurrency: number },
) => Target<TestCase, unknown>;

export interface ExecutorServiceOptions {
  /** Executes every case, whatever the plan's `target:` says. */
  target?: Target<TestCase, unknown> | CaseFunction;
  /** Functions a plan can name with `target: { type: function, name }`. */
  functions?: Readonly<Record<string, CaseFunction>>;
  /** Builds targets of type dify / openai / http. @default the built-in targets (undici) */
  targetFactory?: TargetFactory;
  /** @default new RealClock() */
  clock?: Clock;
  /** Share rate buckets with other runs against the same provider. */
  limiters?: RateLimiterRegistry;
  /** Extra engine options (events aside), merged over the manifest's. */
  runOptions?: RunOptions;
  /**
   * Where attempts run: in this process by default; a `BullmqDispatcher` (stride/distributed)
   * runs them on workers. The target given or named by the plan is then the workers'.
   */
  dispatcher?: Dispatcher;
  /**
   * Grades `llm_rubric` assertions. Default: built from the plan's `grader:` (an engine run of
   * its own, runner/grader.ts); a plan without one has no grader.
   */
  grader?: Grader;
}

/** One prepared run of a plan: attach listeners to `run`, then `start()` it. */
export interface PreparedTestRun {
  readonly run: Run<TestCase, CaseOutcome>;
  readonly manifest: RunManifest;
  /** Converts one of this run's task results. */
  toTestResult(result: Parameters<typeof ResultConverter.convert>[0]): TestResult;
  /** The error that ended the case stream, if any (a PlanError from a bad case file). */
  readonly sourceError: () => unknown;
  /** Releases what the service built for this run (the target's connection pool). */
  close(): Promise<void>;
  /** Where the attempts run: the service's dispatcher, or undefined in process. */
  readonly dispatcher: Dispatcher | undefined;
  /**
   * Listens for the app's answers of graded cases, given before they are graded (the durable
   * session journals them: `Store.appendAnswer`). One listener; a second replaces the first.
   */
  onAnswer(listener: (answer: AnswerRecord) => void): void;
}

function missing(what: string): StrideError {
  return new StrideError('MISSING_ARGUMENT', `${what} is required`);
}

/** The engine options a manifest's `execution_policy` means. */
export function runOptionsFor(manifest: RunManifest): RunOptions {
  const p = manifest.executionPolicy;
  return {
    concurrency: p.concurrency,
    adaptive:
      p.adaptive && p.minConcurrency !== undefined
        ? { minConcurrency: p.minConcurrency }
        : p.adaptive,
    retry: p.retryPolicy,
    stop: p.stopConditions,
    ...(p.timeoutMs === undefined ? {} : { timeoutMs: p.timeoutMs }),
    ...(p.rateControl === undefined ? {} : { rate: p.rateControl }),
    ...(p.tokensPerMinute === undefined ? {} : { tokens: { perMinute: p.tokensPerMinute } }),
    ...(p.batchSize === undefined ? {} : { batch: { size: p.batchSize, backoffMs: p.backoffMs } }),
  };
}

/** A TestCase as an engine task: its id, priority and timeout become the task's. */
export function taskFor(testCase: TestCase): TaskSpec<TestCase> {
  return {
    id: testCase.id,
    input: testCase,
    ...(testCase.priority === 0 ? {} : { priority: testCase.priority }),
    ...(testCase.timeoutMs === undefined ? {} : { timeoutMs: testCase.timeoutMs }),
  };
}

/** What `judgedTarget` needs besides the target (all optional). */
export interface JudgeOptions {
  /** The plan's folder: `assert_module` paths are relative to it. */
  readonly baseDir?: string;
  /** Grades `llm_rubric` assertions. */
  readonly grader?: Grader;
  /**
   * Pipelining (issue #20): at most this many cases are graded at once after giving their app
   * slot back (`AttemptContext.releaseSlot`), so grading early cases overlaps the app calls of
   * later ones; past it a case keeps its slot while graded. @default 0 (never released)
   */
  readonly pipeline?: number;
  /**
   * The app answered a case that is graded, before its gradings start: the durable session
   * journals it (`Store.appendAnswer`), so a resume grades it from this answer instead of
   * calling the app again.
   */
  readonly onAnswer?: (answer: AnswerRecord) => void;
  /** An answer an earlier session journaled for the case: used instead of calling the app. */
  readonly answered?: (caseId: string) => AnswerRecord | undefined;
}

/**
 * Wraps a target so each answer is judged: every assertion passes -> the task succeeds with a
 * CaseOutcome; one fails -> TaskFailedError (state `failed`, not retried) carrying the outcome,
 * so reports still show what the target answered.
 */
export function judgedTarget(
  inner: Target<TestCase, unknown>,
  clock: Clock,
  options: JudgeOptions = {},
): Target<TestCase, CaseOutcome> {
  // Cases graded off their app slot right now (pipelining, issue #20): bounded, so a grader
  // slower than the app holds app slots again (back-pressure) instead of queueing without end.
  let offSlot = 0;
  const maxOffSlot = options.pipeline ?? 0;
  return {
    ...(inner.key === undefined ? {} : { key: inner.key }),
    async execute(task: TaskView<TestCase>, ctx: AttemptContext): Promise<CaseOutcome> {
      // Undefined until reported: `cost_below` on a target that never priced the answer fails
      // ("cost unknown: no price is known ...") instead of passing on a made-up 0.
      let tokens: number | undefined;
      let cost: number | undefined;
      const counted: AttemptContext = {
        get signal() {
          return ctx.signal;
        },
        attempt: ctx.attempt,
        taskId: ctx.taskId,
        reportUsage(usage) {
          if (usage.tokens !== undefined) tokens = (tokens ?? 0) + usage.tokens;
          if (usage.cost !== undefined) cost = (cost ?? 0) + usage.cost;
          ctx.reportUsage(usage);
        },
        reportLimits: (limits) => ctx.reportLimits(limits),
        ...(ctx.holdTimeout === undefined ? {} : { holdTimeout: () => ctx.holdTimeout!() }),
      };
      const testCase = task.input;
      const graded = options.grader !== undefined && isGraded(testCase);
      // An answer an earlier session journaled before the process died while grading it: the
      // app is not called again; its usage is this attempt's (the earlier one was not ended).
      const stored = graded ? options.answered?.(task.id) : undefined;
      let output: unknown;
      let latencyMs: number;
      if (stored !== undefined) {
        output = stored.output;
        latencyMs = stored.latencyMs;
        if (stored.tokens !== undefined || stored.cost !== undefined)
          counted.reportUsage({
            ...(stored.tokens === undefined ? {} : { tokens: stored.tokens }),
            ...(stored.cost === undefined ? {} : { cost: stored.cost }),
          });
      } else {
        const started = clock.now();
        output = await inner.execute(task, counted);
        latencyMs = clock.now() - started;
        if (graded)
          options.onAnswer?.({
            caseId: task.id,
            attempt: ctx.attempt,
            output,
            latencyMs,
            ...(tokens === undefined ? {} : { tokens }),
            ...(cost === undefined ? {} : { cost }),
          });
      }
      let released = false;
      if (graded && offSlot < maxOffSlot && ctx.releaseSlot !== undefined) {
        released = true;
        offSlot++;
        ctx.releaseSlot();
      }
      try {
        return await judge(output, latencyMs);
      } finally {
        if (released) offSlot--;
      }

      async function judge(output: unknown, latencyMs: number): Promise<CaseOutcome> {
        const assertions =
          testCase.expected.length === 0
            ? []
            : await evaluateAssertionsAsync(
                testCase.expected,
                {
                  output,
                  latencyMs,
                  ...(tokens === undefined ? {} : { tokens }),
                  ...(cost === undefined ? {} : { cost }),
                  testCase,
                },
                // Read only when a regex match goes to the pattern worker: the attempt's timeout
                // or a cancel ends it there (issue #16). A getter, because reading ctx.signal
                // creates the attempt's AbortController.
                {
                  get signal() {
                    return ctx.signal;
                  },
                  ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }),
                  ...(options.grader === undefined ? {} : { grader: options.grader }),
                },
              );
        const verdict = caseVerdict(assertions, testCase.threshold);
        const outcome: CaseOutcome = {
          output,
          assertions,
          latencyMs,
          ...(verdict.score === undefined ? {} : { score: verdict.score }),
        };
        const unjudged = assertions.find((a) => a.errorCode !== undefined);
        if (unjudged !== undefined) {
          // The grading failed, not the app: the case ends `error` (never retried, so the app
          // call is not sent again), its output and the other verdicts kept.
          throw Object.assign(
            new StrideError(unjudged.errorCode as ErrorCode, unjudged.message, {
              retryable: false,
            }),
            { output: outcome },
          );
        }
        if (!verdict.passed) {
          const failed = assertions.filter((a) => !a.passed).map((a) => a.message);
          // With a threshold, every assertion may pass but one marked required, or none fail
          // and the score still falls short (weights): say which.
          const below =
            testCase.threshold !== undefined && verdict.score !== undefined
              ? [
                  `score ${Math.round(verdict.score * 1000) / 1000} (threshold ${testCase.threshold})`,
                ]
              : [];
          throw new TaskFailedError([...below, ...failed].join('; '), { output: outcome });
        }
        return outcome;
      }
    },
  };
}

/** A case with an assertion that asks the grader (its gradings can run off the app slot). */
function isGraded(testCase: TestCase): boolean {
  // `similar` asks the grader too (its embeddings calls), so it is pipelined and durable alike.
  return testCase.expected.some((a) => a.type === 'llm_rubric' || a.type === 'similar');
}

/**
 * Runs test plans.
 *
 * @example
 * ```ts
 * const service = new ExecutorService({ functions: { echo: async (c) => c.inputs } });
 * const manifest = await loadPlan('examples/chat-app/plan.yaml');
 * const results = await service.executeTestPlan(manifest);
 * results.filter((r) => r.status !== 'success').forEach((r) => console.log(r.executionId, r.errorMessage));
 *
 * for await (const result of service.streamTestPlan(manifest)) write(result); // large plans
 * ```
 */
export class ExecutorService {
  private readonly options: ExecutorServiceOptions;
  private readonly clock: Clock;

  constructor(options: ExecutorServiceOptions = {}) {
    const t = options.target;
    if (t !== undefined && typeof t !== 'function' && typeof (t as Target).execute !== 'function') {
      throw new InvalidOptionError('target', t, 'a Target or an async function (testCase, ctx)');
    }
    this.options = options;
    this.clock = options.clock ?? new RealClock();
  }

  /** The target the manifest's cases run against. */
  async resolveTarget(manifest: RunManifest): Promise<Target<TestCase, unknown>> {
    const given = this.options.target;
    // A seed-style function may return a TestResult: its tokensUsed and cost are the usage.
    if (typeof given === 'function') {
      const fn = withSeedUsage(given);
      return { execute: (task, ctx) => fn(task.input, ctx) };
    }
    if (given !== undefined) return given;
    const config = manifest.target;
    // The seeds defaulted to a stub execution when no function was given.
    if (config === undefined) return new StubExecutor<TestCase>({ clock: this.clock });
    if (config.type === 'function') {
      const fn = this.options.functions?.[config.name];
      if (fn === undefined) {
        const known = Object.keys(this.options.functions ?? {});
        throw new StrideError(
          'INVALID_OPTION',
          `target function ${JSON.stringify(config.name)} is not registered (registered: ${known.length === 0 ? 'none' : known.join(', ')})`,
        );
      }
      const counted = withSeedUsage(fn);
      return { key: `function:${config.name}`, execute: (task, ctx) => counted(task.input, ctx) };
    }
    const concurrency = manifest.executionPolicy.concurrency;
    if (this.options.targetFactory !== undefined) {
      return this.options.targetFactory(config, { concurrency });
    }
    const { builtInTarget } = await import('./targets.js');
    return builtInTarget(config, concurrency);
  }

  /**
   * Prepares a run of the plan without starting it, so progress listeners can be attached first.
   * Cases stream from the plan's files with a bounded lookahead. `select` maps each case to its
   * task (default `taskFor`), or to undefined to leave it out (resume and re-run use it).
   */
  async prepare(
    manifest: RunManifest | null | undefined,
    token?: CancellationToken,
    extra: RunOptions = {},
    select?: (testCase: TestCase) => TaskSpec<TestCase> | undefined,
    resume?: ResumeContext,
  ): Promise<PreparedTestRun> {
    if (manifest == null) throw missing('manifest');
    if (
      manifest.datasets.length === 0 ||
      manifest.datasets.every((d) => d.cases.kind === 'inline' && d.cases.cases.length === 0)
    ) {
      throw new StrideError('EMPTY_PLAN', 'RunManifest.cases cannot be empty');
    }
    const dispatcher = this.options.dispatcher;
    const runId =
      extra.runId ??
      this.options.runOptions?.runId ??
      (dispatcher === undefined ? undefined : randomUUID());
    const inner =
      dispatcher === undefined
        ? await this.resolveTarget(manifest)
        : await dispatcher.targetFor(manifest, runId!, resume);
    const grader =
      this.options.grader ??
      (manifest.grader === undefined
        ? undefined
        : await (await import('./grader.js')).EngineGrader.start(manifest.grader, {
            clock: this.clock,
            ...(this.options.limiters === undefined ? {} : { limiters: this.options.limiters }),
          }));
    let answerListener: ((a: AnswerRecord) => void) | undefined;
    const target = judgedTarget(inner, this.clock, {
      baseDir: manifest.baseDir,
      ...(grader === undefined ? {} : { grader }),
      // Twice the grader's concurrency: enough queued to keep every grader slot busy while the
      // app answers on; more would only pile answers up in memory.
      pipeline: 2 * (manifest.grader?.policy.concurrency ?? 0),
      onAnswer: (a) => answerListener?.(a),
      ...(resume?.answered === undefined ? {} : { answered: (id) => resume.answered!(id) }),
    });
    let sourceError: unknown;
    async function* tasks(): AsyncGenerator<TaskSpec<TestCase>> {
      try {
        for await (const testCase of iterateCases(manifest!)) {
          // `select` (resume, re-run) skips a case with undefined, or adjusts its task.
          const task = select === undefined ? taskFor(testCase) : select(testCase);
          if (task !== undefined) yield task;
        }
      } catch (err) {
        sourceError = err;
        throw err;
      }
    }
    const options: RunOptions = {
      ...runOptionsFor(manifest),
      clock: this.clock,
      ...(this.options.limiters === undefined ? {} : { limiters: this.options.limiters }),
      ...(token === undefined ? {} : { signal: token.signal }),
      ...this.options.runOptions,
      ...extra,
      ...(runId === undefined ? {} : { runId }),
    };
    // With a dispatcher too, the run paces its own starts with its bucket, as in process: a 429
    // then costs what it costs in process, and waiting for a turn is no part of an attempt's
    // timeout. A dispatcher may enforce the limit again where attempts start (BullMQ workers
    // share a bucket in Redis across runs and machines).
    const run = new Run<TestCase, CaseOutcome>(tasks(), target, options);
    const context = {
      workflowId: manifest.workflowId,
      epochOffsetMs: this.clock.wallTime() - this.clock.now(),
    };
    return {
      run,
      manifest,
      toTestResult: (result) => ResultConverter.convert(result, context),
      sourceError: () => sourceError,
      dispatcher,
      onAnswer: (listener) => {
        answerListener = listener;
      },
      close: async () => {
        // Only what this service built: a target the caller passed in is the caller's to close.
        if (inner !== this.options.target && dispatcher === undefined)
          await (inner as { close?: () => Promise<void> }).close?.();
        if (dispatcher !== undefined && runId !== undefined) await dispatcher.release?.(runId);
        if (grader !== this.options.grader)
          await (grader as { close?: () => Promise<void> }).close?.();
      },
    };
  }

  /**
   * The seeds' `execute_test_plan`: runs every case and resolves with every TestResult, in
   * completion order. Cancelling the token resolves with what finished plus the cancelled cases.
   * A case file that turns out broken before any case ran rejects with its PlanError.
   */
  async executeTestPlan(
    manifest: RunManifest | null | undefined,
    token?: CancellationToken,
  ): Promise<TestResult[]> {
    const { results } = await this.runTestPlan(manifest, token);
    return results;
  }

  /** Like `executeTestPlan`, with the engine's RunExecutionResult (statistics, stop rule) too. */
  async runTestPlan(
    manifest: RunManifest | null | undefined,
    token?: CancellationToken,
  ): Promise<{ results: TestResult[]; run: RunExecutionResult<TestCase, CaseOutcome> }> {
    const prepared = await this.prepare(manifest, token);
    try {
      const run = await prepared.run.start();
      const failure = prepared.sourceError();
      if (failure !== undefined && run.statistics.totalTasks === 0) throw failure;
      return { results: run.tasks.map((r) => prepared.toTestResult(r)), run };
    } finally {
      await prepared.close();
    }
  }

  /**
   * Streams TestResults as cases finish, for plans too large to hold: results are not retained,
   * and the run pauses while the consumer lags `highWaterMark` results behind.
   */
  async *streamTestPlan(
    manifest: RunManifest | null | undefined,
    token?: CancellationToken,
    options: { highWaterMark?: number } = {},
  ): AsyncGenerator<TestResult, RunExecutionResult<TestCase, CaseOutcome>> {
    const prepared = await this.prepare(manifest, token, { retainResults: false });
    const { run } = prepared;
    const high = options.highWaterMark ?? 1024;
    const buffer: TestResult[] = [];
    let wake: (() => void) | undefined;
    // Held while the consumer lags; anyone else's pause or resume is theirs (Run.hold).
    let consumerHold: Hold | undefined;
    const unsubscribe = run.on('transition', (e) => {
      if (
        e.to !== 'succeeded' &&
        e.to !== 'failed' &&
        e.to !== 'timeout' &&
        e.to !== 'error' &&
        e.to !== 'cancelled'
      )
        return;
      buffer.push(prepared.toTestResult(e.result));
      if (buffer.length >= high && consumerHold === undefined) {
        consumerHold = run.hold('backpressure', { by: 'streamTestPlan consumer' });
      }
      wake?.();
    });
    let done = false;
    const finished = run.start().then((r) => {
      done = true;
      wake?.();
      return r;
    });
    try {
      for (;;) {
        while (buffer.length > 0) {
          yield buffer.shift()!;
          if (consumerHold !== undefined && buffer.length <= high / 2) {
            consumerHold.release();
            consumerHold = undefined;
          }
        }
        if (done) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      // The consumer stopped early (break / throw): cancel the rest, never leave a run behind.
      if (!done) {
        // Nobody reads the rest: stop collecting before the cancel turns every unread case of
        // a large file into a buffered result.
        unsubscribe();
        run.cancel();
        await finished;
      }
      await prepared.close();
    }
    const result = await finished;
    const failure = prepared.sourceError();
    if (failure !== undefined && result.statistics.totalTasks === 0) throw failure;
    return result;
  }
}
