/**
 * A Stride worker: takes attempt jobs from BullMQ, takes a token from the shared Redis bucket of
 * the target's key right before each attempt starts, executes it with the built-in targets
 * (secrets from this process's environment), and adds its outcome to the run's stream. Cancels
 * published by the coordinator abort the attempt's signal here.
 *
 * Jobs are fetched by hand (BullMQ's manual processing) rather than by BullMQ's own loop, because
 * the worker's concurrency counts attempts, not jobs: a job carries one or more attempts. A
 * worker with a free slot fetches a job; a second fetch in flight needs room for as many
 * attempts as the last job carried. Attempts that do not fit are given back at once, never
 * started (`Reply.returned`).
 */

import { hostname } from 'node:os';
import { Job, type JobJson, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { AttemptContext, RateLimitSnapshot, Target, Usage } from '../core/index.js';
import { CancelledError, classifyError, StrideError } from '../core/index.js';
import type { TargetConfig, TestCase } from '../plans/index.js';
import { RedisBuckets } from './bucket.js';
import {
  type AttemptEntry,
  type AttemptJob,
  type AttemptOutcome,
  cancelChannel,
  cancelledKey,
  DEFAULT_QUEUE,
  type Reply,
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
  /** Attempts this worker runs at once (whatever jobs they came in). @default 16 */
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
  /**
   * Awaited between an attempt's token take and its request: where a test stalls a worker, as a
   * machine that does not schedule it would (issue #16 item 7). Not for production use.
   * @internal
   */
  readonly afterTake?: (attemptId: string, takenAt: number) => Promise<void>;
}

/** A running worker. */
export interface StrideWorker {
  readonly name: string;
  /**
   * What this worker did: attempts executed (by outcome), jobs taken, attempts given back
   * to the coordinator unstarted or after a lost worker, and shared tokens dropped as stale
   * (taken, then not sent within `staleAfterMs` of their take: another was taken instead).
   */
  readonly stats: {
    executed: number;
    succeeded: number;
    failed: number;
    cancelled: number;
    jobs: number;
    returned: number;
    stale: number;
  };
  /** Stops taking jobs, lets the attempts it holds finish, and closes its connections. */
  close(): Promise<void>;
}

/** Jobs fetched at once while the queue has some (each fetch is a round trip). */
const FETCHES = 4;

/** How long a cancelled attempt id is remembered (as long as the set in Redis keeps it). */
const CANCEL_MEMORY_MS = 3_600_000;

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
  const lockMs = options.lockDurationMs ?? 10_000;
  const env = options.env ?? process.env;
  const name = `${hostname()}:${process.pid}`;
  // Auto-pipelining: commands issued in the same tick by concurrent attempts share one write.
  const redis = new Redis({ ...connection, enableAutoPipelining: true });
  const subscriber = new Redis(connection);
  const buckets = new RedisBuckets(redis);
  const targets = new Map<string, Promise<Target<TestCase, unknown>>>();
  // When each outcome stream last had its expiry pushed back (once a minute is enough).
  const expiresSet = new Map<string, number>();
  const stats = {
    executed: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    jobs: 0,
    returned: 0,
    stale: 0,
  };
  // Attempts running here, by attempt id, so a cancel published by the coordinator finds them.
  const running = new Map<string, () => AbortController>();
  // Attempt ids cancelled by a coordinator (channel and set), with when: never started here.
  const cancelled = new Map<string, number>();
  let outage = false;
  const say =
    options.onRedisError ?? ((m: string) => process.stderr.write(`stride worker: ${m}\n`));
  // A lost connection is said once per outage; any other error (a job that could not be
  // finished, an outcome Redis refused) each time, as what it is.
  const report = (err: Error) => {
    if (!isConnectionError(err)) return say(err.message);
    if (outage) return;
    outage = true;
    say(`Redis is unreachable (${err.message}); waiting for it to come back`);
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

  // Replies that ended in the same tick go out together: one XADD per stream per tick.
  const outbox = new Map<string, { items: string[]; sent: Promise<void>; send(): void }>();
  const reply = (stream: string, r: Reply): Promise<void> => {
    let box = outbox.get(stream);
    if (box === undefined) {
      let send!: () => void;
      const sent = new Promise<void>((resolve, reject) => {
        send = () => {
          outbox.delete(stream);
          const now = Date.now();
          const refresh = (expiresSet.get(stream) ?? 0) < now - 60_000;
          if (refresh) expiresSet.set(stream, now);
          const items = box!.items;
          // The outcome stream expires a day after its last use: a coordinator that died
          // leaves nothing behind forever.
          const multi = redis.multi().xadd(stream, '*', 'r', `[${items.join(',')}]`);
          if (refresh) multi.expire(stream, 86_400);
          multi.exec().then((results) => {
            // EXEC succeeds even when a command inside it failed (a key of another type).
            const failed = results?.find(([err]) => err !== null)?.[0];
            if (failed) reject(failed);
            else resolve();
          }, reject);
        };
      });
      box = { items: [], sent, send };
      outbox.set(stream, box);
      setImmediate(send);
    }
    box.items.push(JSON.stringify(r));
    return box.sent;
  };

  // One parameter only: the signal is made lazily, only when the target reads `ctx.signal`.
  const execute = async (data: AttemptJob, a: AttemptEntry): Promise<AttemptOutcome> => {
    let controller: AbortController | undefined;
    const control = (): AbortController => {
      controller ??= new AbortController();
      return controller;
    };
    running.set(a.id, control);
    const usage: Usage = { tokens: 0, cost: 0 };
    let takenAt: number | undefined;
    let sentAt: number | undefined;
    const stamp = () => ({
      ...(takenAt === undefined ? {} : { takenAt }),
      ...(sentAt === undefined ? {} : { sentAt }),
    });
    try {
      const target = await targetFor(data);
      if (data.rate !== undefined) {
        // A wait for the shared token is not the attempt's (in process, an attempt starts only
        // once it has its token): the coordinator holds its timeout from `waiting: true` to
        // `waiting: false`. Announced only when the bucket is empty, so most attempts send
        // nothing more than their outcome. A lost announcement costs only that hold.
        let waited = false;
        const announce = (waiting: boolean) => {
          reply(data.replyTo, { id: a.id, sender: data.sender, waiting }).catch(() => {});
        };
        const onWait = () => {
          if (waited) return;
          waited = true;
          announce(true);
        };
        // A token is sent only while fresh: one this worker got to late (it was not scheduled
        // between the take and here) is dropped and another taken, or its request would leave
        // together with those of workers that took theirs later, and a provider would count
        // more in a window than the bucket handed out (issue #16 item 7). The dropped token
        // stays spent.
        for (;;) {
          takenAt = await buckets.take(data.rate.key, data.rate, control().signal, 1, onWait);
          await options.afterTake?.(a.id, takenAt);
          if (!buckets.isStale(takenAt, data.rate)) break;
          stats.stale++;
        }
        if (waited) announce(false);
      }
      const ctx: AttemptContext = {
        get signal() {
          return control().signal;
        },
        attempt: a.attempt,
        taskId: a.taskId,
        reportUsage: (u) => {
          usage.tokens += u.tokens ?? 0;
          usage.cost += u.cost ?? 0;
          // Passed on, so the coordinator's engine knows the cost is unknown, not 0.
          if (u.cost === undefined || u.costUnknown === true) usage.costUnknown = true;
        },
        reportLimits: (_l: RateLimitSnapshot) => {},
      };
      stats.executed++;
      sentAt = Date.now();
      const output = await target.execute(
        { id: a.taskId, input: a.testCase, priority: 0, rateKey: data.rate?.key ?? 'default' },
        ctx,
      );
      stats.succeeded++;
      return { ok: true, output, usage, worker: name, ...stamp() };
    } catch (err) {
      if (controller?.signal.aborted === true) stats.cancelled++;
      else stats.failed++;
      const cls = classifyError(err);
      // A 429 with a Retry-After cools the shared bucket down for every worker and run: the
      // target said how long. A bare 429 is the coordinator's to price, as in process (its run
      // cools its own bucket for the backoff delay, or lowers its pace): a fixed cooldown here
      // on top of that starved the bucket (issue #16 item 3: 10 failing cases of 120 took the
      // run from 17 s to 34 s).
      if (cls.rateLimited && cls.retryAfterMs !== undefined && data.rate !== undefined) {
        await buckets.coolDown(data.rate.key, cls.retryAfterMs).catch(() => {});
      }
      // Returned, never thrown: a failed attempt is a result for the scheduler to classify and
      // retry; BullMQ must not retry it on its own.
      return { ok: false, error: serializeError(err), usage, worker: name, ...stamp() };
    } finally {
      running.delete(a.id);
    }
  };

  const worker = new Worker<AttemptJob>(queueName, null, {
    connection,
    lockDuration: lockMs,
    stalledInterval: Math.max(1_000, Math.floor(lockMs / 2)),
    maxStalledCount: 10,
    // Kept a minute: an add that Redis executed but whose reply was lost in a reconnect is sent
    // again by ioredis, and must find the job there (a no-op) rather than run it twice.
    removeOnComplete: { age: 60 },
    removeOnFail: { age: 86_400 },
    // An idle worker waits for a job at most a second at a time: `close` waits for that wait.
    drainDelay: 1,
  });
  worker.on('error', report);

  // Attempt slots. `hint`: how many attempts the last job carried.
  let free = concurrency;
  let hint = 1;
  let closing = false;
  // Whether another fetch may start. One fetch needs a single free slot, so a worker never idles
  // while jobs wait (what does not fit is given back); each further fetch in flight counts as
  // `hint` attempts, so a burst of full jobs is not fetched only to be given back.
  const room = (): boolean => (fetching === 0 ? free >= 1 : free - fetching * hint >= hint);
  const release = () => {
    free++;
    pump();
  };
  // Jobs held here (id → lock token), their locks renewed until they are finished.
  const held = new Map<string, string>();
  const jobsDone = new Set<Promise<unknown>>();

  const take = (job: Job<AttemptJob>, token: string): void => {
    const data = job.data;
    const id = job.id!;
    stats.jobs++;
    if (!Array.isArray(data?.attempts)) {
      // Not a job of this Stride version (another producer on the queue, or an older Stride):
      // failed with a reason that says so, never guessed at.
      const reason = new Error(`job ${id} is not a Stride attempt job (no attempts list)`);
      const failing = job
        .moveToFailed(reason, token, false)
        .catch((err: unknown) => worker.emit('error', err as Error))
        .finally(() => jobsDone.delete(failing));
      jobsDone.add(failing);
      return;
    }
    held.set(id, token);
    // Back after its worker was lost: that worker may have sent any attempt that has no outcome
    // yet, and only the coordinator knows which have one: all are given back to it.
    const lost = job.stalledCounter > 0 || job.attemptsStarted > 1;
    if (!lost) hint = Math.max(1, Math.min(concurrency, data.attempts.length));
    const replies: Promise<unknown>[] = [];
    for (const a of data.attempts) {
      if (!lost && cancelled.has(a.id)) {
        replies.push(reply(data.replyTo, { id: a.id, sender: data.sender, outcome: CANCELLED }));
      } else if (lost || free === 0) {
        stats.returned++;
        replies.push(
          reply(data.replyTo, {
            id: a.id,
            sender: data.sender,
            returned: true,
            maybeSent: lost,
            job: id,
          }),
        );
      } else {
        free--;
        replies.push(
          execute(data, a).then((outcome) => {
            release();
            return reply(data.replyTo, { id: a.id, sender: data.sender, outcome });
          }),
        );
      }
    }
    // A job is finished once every outcome it produced is in the stream: a coordinator that
    // finds the job gone therefore finds its outcomes.
    const done = Promise.allSettled(replies)
      .then(async (sent) => {
        if (sent.some((r) => r.status === 'rejected')) {
          // An outcome that could not be written: the job is left to stall (its lock is no
          // longer renewed), and its attempts come back to the coordinator through another
          // worker, as after a lost worker.
          held.delete(id);
          const failed = sent.find((r) => r.status === 'rejected') as PromiseRejectedResult;
          worker.emit('error', failed.reason as Error);
          return;
        }
        // With room for another job, finishing this one takes the next in the same round trip
        // (BullMQ's fetch-next), counted as a fetch until it returns.
        const next = !closing && room();
        if (next) fetching++;
        try {
          const [json, nextId] = ((await job.moveToCompleted('', token, next)) ?? []) as [
            JobJson | null | undefined,
            string | undefined,
          ];
          if (next) {
            idle = json == null;
            if (json != null) take(Job.fromJSON(worker, json, nextId) as Job<AttemptJob>, token);
          }
        } catch (err) {
          // A lost lock (this worker stalled past its lock duration) means another worker has
          // the job and has given its attempts back already: nothing to report as an outage.
          // Or the job already gone: finished by the worker that got it, and removed since.
          if (!/lock|missing key/i.test((err as Error).message)) worker.emit('error', err as Error);
        } finally {
          held.delete(id);
          if (next) {
            fetching--;
            pump();
          }
        }
      })
      .finally(() => jobsDone.delete(done));
    jobsDone.add(done);
  };

  // Fetches: up to FETCHES at once while jobs are there (one round trip each); a single one,
  // blocking, once the queue is empty.
  let fetching = 0;
  let idle = false;
  let tokens = 0;
  let stopped: (() => void) | undefined;
  const pump = (): void => {
    while (!closing && (fetching === 0 || (!idle && fetching < FETCHES)) && room()) {
      fetching++;
      const token = `${worker.id}:${tokens++}`;
      worker.getNextJob(token, { block: true }).then(
        (job) => {
          fetching--;
          idle = job === undefined;
          if (job !== undefined) take(job as Job<AttemptJob>, token);
          pump();
        },
        (err: unknown) => {
          fetching--;
          if (!closing) report(err as Error);
          setTimeout(pump, closing ? 0 : 200);
        },
      );
    }
    if (closing && fetching === 0) stopped?.();
  };

  // Locks of held jobs renewed together, three times per lock duration.
  const renew = setInterval(
    () => {
      if (held.size === 0) return;
      worker.extendJobLocks([...held.keys()], [...held.values()], lockMs).catch(report);
    },
    Math.max(200, Math.floor(lockMs / 3)),
  );
  renew.unref();

  subscriber.on('message', (_channel, id: string) => {
    cancelled.set(id, Date.now());
    running.get(id)?.().abort(new CancelledError('cancelled by the coordinator'));
  });
  // Subscribed before the set is read: a cancel is then either in the set or heard.
  await subscriber.subscribe(cancelChannel(queueName));
  const now = Date.now();
  for (const id of await redis.smembers(cancelledKey(queueName))) cancelled.set(id, now);
  const prune = setInterval(() => {
    const old = Date.now() - CANCEL_MEMORY_MS;
    for (const [id, at] of cancelled) if (at < old) cancelled.delete(id);
  }, 60_000);
  prune.unref();

  await worker.waitUntilReady();
  await worker.startStalledCheckTimer();
  pump();

  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    closing = true;
    // Fetches end after their current wait for a job (a job one then takes is run too).
    await new Promise<void>((r) => {
      stopped = r;
      pump();
    });
    await Promise.all([...jobsDone]);
    clearInterval(renew);
    clearInterval(prune);
    await worker.close();
    subscriber.disconnect();
    redis.disconnect();
    for (const t of targets.values()) {
      const target = await t.catch(() => undefined);
      await (target as { close?: () => Promise<void> } | undefined)?.close?.();
    }
  };
  return {
    name,
    stats,
    close: () => {
      closed ??= close();
      return closed;
    },
  };
}

/** A connection that broke or could not be made (as opposed to an error Redis answered). */
function isConnectionError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    (typeof code === 'string' && /^E[A-Z]+$/.test(code)) ||
    /connection|connect|socket|closed|ECONN/i.test(err.message)
  );
}

const CANCELLED: AttemptOutcome = {
  ok: false,
  error: {
    code: 'CANCELLED',
    name: 'CancelledError',
    message: 'cancelled before a worker started it',
    retryable: false,
  },
  usage: { tokens: 0, cost: 0 },
  worker: '',
};
