/**
 * A Stride worker: takes attempt jobs from BullMQ, takes a token from the shared Redis bucket of
 * the target's key right before it starts, executes the attempt with the built-in targets
 * (secrets from this process's environment), and reports the outcome. Cancels published by the
 * coordinator abort the attempt's signal here.
 */

import { hostname } from 'node:os';
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { AttemptContext, RateLimitSnapshot, Target } from '../core/index.js';
import { CancelledError, classifyError, StrideError } from '../core/index.js';
import type { TargetConfig, TestCase } from '../plans/index.js';
import { RedisBuckets } from './bucket.js';
import {
  type AttemptJob,
  type AttemptOutcome,
  cancelChannel,
  DEFAULT_QUEUE,
  resolveTarget,
  serializeError,
  type TargetSpec,
  targetsKey,
} from './protocol.js';
import { connectionOptions } from './redis.js';

/** Options of `startWorker`. */
export interface WorkerOptions {
  readonly redis: string;
  /** @default 'stride' */
  readonly queue?: string;
  /** Attempts this worker runs at once. @default 16 */
  readonly concurrency?: number;
  /** Where secrets come from. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** How long a lost worker's jobs wait before another worker takes them, in ms. @default 10_000 */
  readonly lockDurationMs?: number;
  /** Builds a target from its configuration. @default the built-in targets */
  readonly targetFactory?: (
    config: TargetConfig,
    concurrency: number,
  ) => Promise<Target<TestCase, unknown>>;
  /** Called on Redis connection errors, once per outage. */
  readonly onRedisError?: (message: string) => void;
}

/** A running worker. */
export interface StrideWorker {
  readonly name: string;
  /** Attempts executed so far (by outcome). */
  readonly stats: { executed: number; succeeded: number; failed: number; cancelled: number };
  close(): Promise<void>;
}

/**
 * Starts a worker.
 *
 * @example
 * ```ts
 * const worker = await startWorker({ redis: 'redis://127.0.0.1:6379', concurrency: 32 });
 * process.on('SIGTERM', () => worker.close());
 * ```
 */
export async function startWorker(options: WorkerOptions): Promise<StrideWorker> {
  const connection = connectionOptions(options.redis);
  const queueName = options.queue ?? DEFAULT_QUEUE;
  const concurrency = options.concurrency ?? 16;
  const env = options.env ?? process.env;
  const name = `${hostname()}:${process.pid}`;
  // Auto-pipelining: replies pushed in the same tick by concurrent attempts share one write.
  const redis = new Redis({ ...connection, enableAutoPipelining: true });
  const subscriber = new Redis(connection);
  const buckets = new RedisBuckets(redis);
  const targets = new Map<string, Promise<Target<TestCase, unknown>>>();
  // When each reply list last had its expiry pushed back (once a minute is enough).
  const expiresSet = new Map<string, number>();
  const stats = { executed: 0, succeeded: 0, failed: 0, cancelled: 0 };
  // Attempts running here, by job id, so a cancel published by the coordinator finds them.
  const running = new Map<string, () => AbortController>();
  let outage = false;
  const report = (err: Error) => {
    if (outage) return;
    outage = true;
    (options.onRedisError ?? ((m: string) => process.stderr.write(`stride worker: ${m}\n`)))(
      `Redis is unreachable (${err.message}); waiting for it to come back`,
    );
  };
  redis.on('error', report);
  subscriber.on('error', report);
  redis.on('ready', () => {
    outage = false;
  });

  // Resolved once per distinct target (its secrets filled from this environment), not per job.
  // A failure is not cached: the next job tries again.
  const targetFor = (data: AttemptJob): Promise<Target<TestCase, unknown>> => {
    const key = data.targetKey;
    let t = targets.get(key);
    if (t === undefined) {
      t = redis.hget(targetsKey(queueName), key).then(async (raw) => {
        if (raw === null) {
          throw new StrideError(
            'NON_RETRYABLE',
            `no target ${key} in Redis: the run that named it is gone`,
            { retryable: false },
          );
        }
        const config = resolveTarget(JSON.parse(raw) as TargetSpec, env);
        if (options.targetFactory !== undefined) return options.targetFactory(config, concurrency);
        const { builtInTarget } = await import('../runner/targets.js');
        return builtInTarget(config as Exclude<TargetConfig, { type: 'function' }>, concurrency);
      });
      targets.set(key, t);
      t.catch(() => targets.delete(key));
    }
    return t;
  };

  // One parameter only: BullMQ then tracks no AbortController per job (cancels come through
  // our own channel), and ours is made only when the target reads `ctx.signal`.
  const processor = async (job: Job<AttemptJob>): Promise<string> => {
    const data = job.data;
    let controller: AbortController | undefined;
    const control = (): AbortController => {
      controller ??= new AbortController();
      return controller;
    };
    const id = job.id!;
    running.set(id, control);
    const usage = { tokens: 0, cost: 0 };
    let outcome: AttemptOutcome;
    try {
      const target = await targetFor(data);
      if (data.rate !== undefined) await buckets.take(data.rate.key, data.rate, control().signal);
      const ctx: AttemptContext = {
        get signal() {
          return control().signal;
        },
        attempt: data.attempt,
        taskId: data.taskId,
        reportUsage: (u) => {
          usage.tokens += u.tokens ?? 0;
          usage.cost += u.cost ?? 0;
        },
        reportLimits: (_l: RateLimitSnapshot) => {},
      };
      stats.executed++;
      const output = await target.execute(
        {
          id: data.taskId,
          input: data.testCase,
          priority: 0,
          rateKey: data.rate?.key ?? 'default',
        },
        ctx,
      );
      stats.succeeded++;
      outcome = { ok: true, output, usage, worker: name };
    } catch (err) {
      if (controller?.signal.aborted === true) stats.cancelled++;
      else stats.failed++;
      const cls = classifyError(err);
      // A 429 with a Retry-After cools the shared bucket down for every worker and run.
      if (cls.rateLimited && data.rate !== undefined) {
        await buckets.coolDown(data.rate.key, cls.retryAfterMs ?? 1000).catch(() => {});
      }
      outcome = { ok: false, error: serializeError(err), usage, worker: name };
    } finally {
      running.delete(id);
    }
    // Returned, never thrown: a failed attempt is a result for the scheduler to classify and
    // retry; BullMQ must not retry it on its own. Also pushed to the coordinator's reply list,
    // which expires a day after its last use (a coordinator that died leaves nothing forever).
    const text = JSON.stringify(outcome);
    const redelivered = job.stalledCounter > 0 || job.attemptsStarted > 1;
    // Built by hand around the outcome's JSON: serialised once (this runs once per attempt).
    const reply = `{"id":${JSON.stringify(id)},"redelivered":${redelivered},"sender":${JSON.stringify(data.sender ?? '')},"outcome":${text}}`;
    await redis.rpush(data.replyTo, reply);
    const now = Date.now();
    if ((expiresSet.get(data.replyTo) ?? 0) < now - 60_000) {
      expiresSet.set(data.replyTo, now);
      await redis.expire(data.replyTo, 86_400);
    }
    return text;
  };

  const worker = new Worker<AttemptJob, string>(queueName, processor, {
    connection,
    concurrency,
    lockDuration: options.lockDurationMs ?? 10_000,
    stalledInterval: Math.max(1_000, Math.floor((options.lockDurationMs ?? 10_000) / 2)),
    maxStalledCount: 10,
    removeOnComplete: { age: 86_400 },
    removeOnFail: { age: 86_400 },
  });
  worker.on('error', report);
  await subscriber.subscribe(cancelChannel(queueName));
  subscriber.on('message', (_channel, id: string) => {
    running.get(id)?.().abort(new CancelledError('cancelled by the coordinator'));
  });
  await worker.waitUntilReady();

  return {
    name,
    stats,
    close: async () => {
      await worker.close();
      subscriber.disconnect();
      redis.disconnect();
      for (const t of targets.values()) {
        const target = await t.catch(() => undefined);
        await (target as { close?: () => Promise<void> } | undefined)?.close?.();
      }
    },
  };
}
