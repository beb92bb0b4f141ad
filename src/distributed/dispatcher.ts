/**
 * The BullMQ dispatcher: the run's scheduler (concurrency, retries, timeouts, stop rules, the
 * journal) stays in the coordinator; each attempt it starts becomes a BullMQ job that a worker
 * executes (`stride worker`). The engine does not know: it sees a Target whose `execute` adds the
 * job and waits for its outcome. Rate limits move to where attempts start, the workers, through
 * a token bucket in Redis shared by every run and worker on that Redis.
 */

import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { AttemptContext, Target, TaskView } from '../core/index.js';
import { StrideError } from '../core/index.js';
import type { RunManifest, TestCase } from '../plans/index.js';
import type { Dispatcher } from '../runner/dispatcher.js';
import {
  type AttemptJob,
  type AttemptOutcome,
  cancelChannel,
  DEFAULT_QUEUE,
  deserializeError,
  jobId,
  parseJobId,
  targetOf,
} from './protocol.js';
import { connectionOptions } from './redis.js';

/** Options of `BullmqDispatcher`. */
export interface BullmqDispatcherOptions {
  /** `redis://host:port/db`. */
  readonly redis: string;
  /** @default 'stride' */
  readonly queue?: string;
  /** Completed jobs kept in Redis this long for a coordinator that restarts, in seconds. @default 86_400 */
  readonly keepCompletedSeconds?: number;
  /** Called when a job was delivered again after its worker was lost (BullMQ's stalled check). */
  readonly onRedelivered?: (e: { runId: string; taskId: string; attempt: number }) => void;
  /** Called on Redis connection errors, once per outage. @default a line on stderr */
  readonly onRedisError?: (message: string) => void;
}

interface Waiter {
  resolve(outcome: AttemptOutcome): void;
  reject(err: unknown): void;
}

/**
 * Dispatches attempts to BullMQ workers.
 *
 * @example
 * ```ts
 * const dispatcher = new BullmqDispatcher({ redis: 'redis://127.0.0.1:6379' });
 * const service = new ExecutorService({ dispatcher });
 * await service.executeTestPlan(manifest); // attempts run on `stride worker` processes
 * await dispatcher.close();
 * ```
 */
export class BullmqDispatcher implements Dispatcher {
  readonly sharesRateLimits = true;
  readonly queueName: string;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly publisher: Redis;
  private readonly waiters = new Map<string, Waiter>();
  private readonly ready: Promise<void>;
  private outage = false;

  constructor(options: BullmqDispatcherOptions) {
    this.queueName = options.queue ?? DEFAULT_QUEUE;
    const connection = connectionOptions(options.redis);
    const keep = options.keepCompletedSeconds ?? 86_400;
    this.queue = new Queue(this.queueName, {
      connection,
      defaultJobOptions: {
        // Retries are the scheduler's (one retry layer): BullMQ delivers each attempt once,
        // or again only when its worker was lost.
        attempts: 1,
        removeOnComplete: { age: keep },
        removeOnFail: { age: keep },
      },
    });
    this.events = new QueueEvents(this.queueName, { connection });
    this.publisher = new Redis(connection);
    const report = (err: Error) => {
      if (this.outage) return;
      this.outage = true;
      (options.onRedisError ?? ((m) => process.stderr.write(`stride: ${m}\n`)))(
        `Redis at ${safeUrl(options.redis)} is unreachable (${err.message}); waiting for it to come back`,
      );
    };
    this.queue.on('error', report);
    this.events.on('error', report);
    this.publisher.on('error', report);
    this.publisher.on('ready', () => {
      this.outage = false;
    });
    this.events.on('completed', ({ jobId: id, returnvalue }) => this.settle(id, returnvalue));
    this.events.on('failed', ({ jobId: id, failedReason }) => {
      const w = this.waiters.get(id);
      if (w === undefined) return;
      this.waiters.delete(id);
      w.reject(new StrideError('UNKNOWN_ERROR', `worker failed the job: ${failedReason}`));
    });
    this.events.on('stalled', ({ jobId: id }) => {
      const parts = parseJobId(id);
      if (parts !== undefined) options.onRedelivered?.(parts);
    });
    this.ready = this.events.waitUntilReady().then(() => undefined);
  }

  private settle(id: string, value: unknown): void {
    const w = this.waiters.get(id);
    if (w === undefined || value === null || value === undefined) return;
    this.waiters.delete(id);
    // Consumed: removed at once. Unconsumed results (a coordinator that died) stay for
    // `keepCompletedSeconds`, for its resume to reconcile with.
    this.queue.remove(id).catch(() => {});
    w.resolve((typeof value === 'string' ? JSON.parse(value) : value) as AttemptOutcome);
  }

  /** A Target whose attempts run on the workers. */
  async targetFor(manifest: RunManifest, runId: string): Promise<Target<TestCase, unknown>> {
    const { target, secrets } = targetOf(manifest);
    const rate = manifest.executionPolicy.rateControl;
    const rateKey = `${target.type}:${'baseUrl' in target ? target.baseUrl : ''}:${secrets.find((s) => s.path[1] === 'apiKey')?.template ?? ''}`;
    await this.ready;
    return {
      key: rateKey,
      execute: (task: TaskView<TestCase>, ctx: AttemptContext) =>
        this.execute(runId, task, ctx, {
          target,
          secrets,
          ...(rate === undefined
            ? {}
            : { rate: { key: rateKey, perMinute: rate.perMinute, burst: rate.burst } }),
        }),
    };
  }

  private async execute(
    runId: string,
    task: TaskView<TestCase>,
    ctx: AttemptContext,
    spec: Pick<AttemptJob, 'target' | 'secrets' | 'rate'>,
  ): Promise<unknown> {
    ctx.signal.throwIfAborted();
    // After a coordinator crash, the previous attempt's job may still be in Redis: its result
    // arrived, or it is still running. Reconcile with it instead of sending the case again.
    const previous =
      ctx.attempt > 1
        ? await this.reconcile(jobId(runId, task.id, ctx.attempt - 1), ctx)
        : undefined;
    const outcome =
      previous ??
      (await this.send(
        jobId(runId, task.id, ctx.attempt),
        { runId, taskId: task.id, attempt: ctx.attempt, testCase: task.input, ...spec },
        ctx,
      ));
    ctx.reportUsage(outcome.usage);
    if (outcome.ok) return outcome.output;
    throw deserializeError(outcome.error);
  }

  /** The outcome of an earlier job of this case still in Redis, if there is one. */
  private async reconcile(id: string, ctx: AttemptContext): Promise<AttemptOutcome | undefined> {
    const state = await this.queue.getJobState(id);
    const job = state === 'unknown' ? undefined : await this.queue.getJob(id);
    if (job === undefined) return undefined;
    if (state === 'completed' && job.returnvalue !== undefined && job.returnvalue !== null) {
      await job.remove().catch(() => {});
      return (
        typeof job.returnvalue === 'string' ? JSON.parse(job.returnvalue) : job.returnvalue
      ) as AttemptOutcome;
    }
    if (
      state === 'active' ||
      state === 'waiting' ||
      state === 'delayed' ||
      state === 'prioritized'
    ) {
      return this.wait(id, ctx, async () => {});
    }
    return undefined;
  }

  private async send(id: string, data: AttemptJob, ctx: AttemptContext): Promise<AttemptOutcome> {
    return this.wait(id, ctx, async () => {
      await this.queue.add('attempt', data, { jobId: id });
    });
  }

  /** Registers the waiter first, then adds (a fast worker cannot answer before we listen). */
  private wait(id: string, ctx: AttemptContext, add: () => Promise<void>): Promise<AttemptOutcome> {
    return new Promise<AttemptOutcome>((resolve, reject) => {
      const onAbort = () => {
        // The worker aborts the attempt (its signal fires there, a Dify run gets its stop call);
        // its outcome then arrives as a failure, which the engine already treats as cancelled.
        this.publisher.publish(cancelChannel(this.queueName), id).catch(() => {});
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      const done = () => ctx.signal.removeEventListener('abort', onAbort);
      this.waiters.set(id, {
        resolve: (o) => {
          done();
          resolve(o);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      add()
        .then(async () => {
          // It may have finished before the listener saw it (a very fast worker): check once.
          // The state first: a job read before its state says completed may lack its value.
          if ((await this.queue.getJobState(id)) === 'completed') {
            this.settle(id, (await this.queue.getJob(id))?.returnvalue);
          }
        })
        .catch((err: unknown) => {
          this.waiters.delete(id);
          done();
          reject(err);
        });
    });
  }

  /** Jobs of this queue now: waiting, active, completed, failed. */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
  }

  async close(): Promise<void> {
    for (const [id, w] of this.waiters)
      w.reject(new StrideError('CANCELLED', `dispatcher closed while ${id} was in flight`));
    this.waiters.clear();
    await Promise.allSettled([this.queue.close(), this.events.close()]);
    this.publisher.disconnect();
  }
}

function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.username = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
