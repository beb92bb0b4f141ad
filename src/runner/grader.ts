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
  type Embedding,
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

interface EmbedWaiter {
  readonly resolve: (e: Embedding) => void;
  readonly reject: (error: unknown) => void;
}

/** What marks an embeddings task among the grader run's tasks (its inputs are `{ text }`). */
const EMBED = '__embed';

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
  private readonly embedWaiters = new Map<string, EmbedWaiter>();
  /** Each distinct text's embedding, once per run (`similar`'s expected values are shared). */
  private readonly embedded = new Map<string, Promise<Embedding>>();
  private wake: (() => void) | undefined;
  private closed = false;
  private seq = 0;
  private readonly run: Run<GradeTask, unknown>;
  private readonly finished: Promise<unknown>;

  private constructor(
    config: GraderConfig,
    target: Target<GradeTask, unknown> & { close?: () => Promise<void> },
    options: {
      clock?: Clock;
      limiters?: RateLimiterRegistry;
      embedTarget?: Target<GradeTask, unknown> & { close?: () => Promise<void> };
    },
  ) {
    // The grader's own bucket: the app's rate limit is keyed by the app target's key. Chat
    // gradings and `similar`'s embeddings calls share it, and the grader's retry policy.
    const embeds = options.embedTarget;
    const keyed: Target<GradeTask, unknown> = {
      key: config.key,
      execute: (task, ctx) =>
        embeds !== undefined && task.input.inputs[EMBED] === true
          ? embeds.execute(task, ctx)
          : target.execute(task, ctx),
    };
    this.run = new Run(this.source(), keyed, {
      ...runOptionsFor({ executionPolicy: config.policy } as Parameters<typeof runOptionsFor>[0]),
      // A grading is not paced down by the app's refusals, and its results are not kept.
      retainResults: false,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.limiters === undefined ? {} : { limiters: options.limiters }),
    });
    this.run.on('transition', (t) => this.settle(t));
    this.finished = this.run
      .start()
      .finally(() => Promise.all([target.close?.(), embeds?.close?.()]));
  }

  /** Builds the grader's target (undici, pooled to its concurrency) and starts its run. */
  static async start(
    config: GraderConfig,
    options: {
      clock?: Clock;
      limiters?: RateLimiterRegistry;
      target?: Target<GradeTask, unknown>;
      /** The `/v1/embeddings` target. Default: built from the grader's target config. */
      embedTarget?: Target<GradeTask, unknown>;
    } = {},
  ): Promise<EngineGrader> {
    let target = options.target;
    let embedTarget = options.embedTarget;
    if (target === undefined) {
      const { builtInTarget } = await import('./targets.js');
      target = await builtInTarget(config.target, config.policy.concurrency);
      embedTarget ??= await embeddingsTarget(config);
    }
    return new EngineGrader(config, target, {
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.limiters === undefined ? {} : { limiters: options.limiters }),
      ...(embedTarget === undefined ? {} : { embedTarget }),
    });
  }

  /**
   * The embedding of `text` through the grader's run (its bucket, concurrency and retries). Each
   * distinct text is sent once per run: a later asker shares the first call (usage
   * `{ attempts: 0 }`); a call that failed is forgotten, so the next asker tries again.
   */
  embed(text: string, signal?: AbortSignal): Promise<Embedding> {
    if (this.closed) return Promise.reject(new Error('the grader is closed'));
    const known = this.embedded.get(text);
    const shared =
      known === undefined
        ? undefined
        : known.then((e): Embedding => ({ vector: e.vector, usage: { attempts: 0 } }));
    const result = shared ?? this.queueEmbedding(text);
    if (signal === undefined) return result;
    // The case ending stops its wait; the shared call runs on for the other cases.
    return new Promise<Embedding>((resolve, reject) => {
      const abort = () => reject(signal.reason);
      if (signal.aborted) abort();
      signal.addEventListener('abort', abort, { once: true });
      result.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
    });
  }

  private queueEmbedding(text: string): Promise<Embedding> {
    const id = `embed-${++this.seq}`;
    const task: TaskSpec<GradeTask> = {
      id,
      input: {
        id,
        inputs: { text, [EMBED]: true },
        expected: [],
        tags: [],
        priority: 0,
        metadata: {},
      } as unknown as GradeTask,
    };
    const p = new Promise<Embedding>((resolve, reject) => {
      this.embedWaiters.set(id, { resolve, reject });
      this.inbox.push(task);
      this.wake?.();
    });
    this.embedded.set(text, p);
    p.catch(() => {
      if (this.embedded.get(text) === p) this.embedded.delete(text);
    });
    return p;
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
    if (this.embedWaiters.has(t.taskId)) {
      this.settleEmbedding(t);
      return;
    }
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

  private settleEmbedding(
    t: Extract<TaskTransition, { to: 'succeeded' | 'failed' | 'timeout' | 'error' | 'cancelled' }>,
  ): void {
    const w = this.embedWaiters.get(t.taskId)!;
    this.embedWaiters.delete(t.taskId);
    const result = (t as { result: { attempts: number; usage: { tokens: number } } }).result;
    const usage = {
      attempts: result.attempts,
      ...(result.usage.tokens > 0 ? { tokens: result.usage.tokens } : {}),
    };
    if (t.to === 'succeeded') {
      const vector = (t.result.output as { output?: unknown } | null)?.output;
      if (Array.isArray(vector) && vector.length > 0 && vector.every((x) => typeof x === 'number'))
        w.resolve({ vector, usage });
      else
        w.reject(
          Object.assign(new Error('the embeddings answer has no data[0].embedding of numbers'), {
            code: 'GRADE_UNPARSABLE',
            usage,
          }),
        );
      return;
    }
    const err =
      t.to === 'cancelled'
        ? new Error(`embedding cancelled: ${t.reason}`)
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

/**
 * `POST {base_url}/embeddings` with the grader's key and headers, as an HTTP target: its
 * statuses are classified like every target's (429 with Retry-After, 5xx retried), and the
 * grader's run retries them. No price is known for embeddings, so their cost stays unknown.
 */
async function embeddingsTarget(
  config: GraderConfig,
): Promise<Target<GradeTask, unknown> & { close: () => Promise<void> }> {
  const { createTarget } = await import('../targets/index.js');
  const t = config.target;
  const inner = createTarget(
    {
      type: 'http',
      url: `${t.baseUrl.replace(/\/+$/, '')}/embeddings`,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(t.apiKey === undefined ? {} : { authorization: `Bearer ${t.apiKey}` }),
        ...t.headers,
      },
      body: { model: config.embeddingModel, input: '{{ text }}' },
      outputPath: '$.data[0].embedding',
      tokensPath: '$.usage.total_tokens',
    },
    { concurrency: config.policy.concurrency },
  );
  return {
    key: config.key,
    execute: (task, ctx) => inner.execute({ ...task, input: task.input.inputs }, ctx),
    close: () => inner.close(),
  };
}
