/**
 * The BullMQ dispatcher: the run's scheduler (concurrency, retries, timeouts, stop rules, the
 * journal) stays in the coordinator; each attempt it starts becomes a BullMQ job that a worker
 * executes (`stride worker`). The engine does not know: it sees a Target whose `execute` adds the
 * job and waits for its outcome. Rate limits move to where attempts start, the workers, through
 * a token bucket in Redis shared by every run and worker on that Redis.
 *
 * Outcomes come back through a Redis list per run (`replyKey`), not BullMQ's event stream: the
 * stream is trimmed (10,000 entries by default), so a coordinator that reads slower than jobs
 * finish would lose completions, while a list keeps each outcome until it is read. A list per
 * run also survives the coordinator: a resumed run reads the outcomes that arrived while it was
 * down, so finished jobs need not stay in Redis (they are removed on completion).
 */

import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
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
  type Reply,
  replyKey,
  targetOf,
  targetsKey,
} from './protocol.js';
import { connectionOptions } from './redis.js';

/** Options of `BullmqDispatcher`. */
export interface BullmqDispatcherOptions {
  /** `redis://host:port/db`. */
  readonly redis: string;
  /** @default 'stride' */
  readonly queue?: string;
  /** Called when a job was delivered again after its worker was lost (BullMQ's stalled check). */
  readonly onRedelivered?: (e: { runId: string; taskId: string; attempt: number }) => void;
  /** Called on Redis connection errors, once per outage. @default a line on stderr */
  readonly onRedisError?: (message: string) => void;
}

interface Waiter {
  resolve(outcome: AttemptOutcome): void;
  reject(err: unknown): void;
}

interface PendingAdd {
  readonly id: string;
  readonly data: AttemptJob;
  resolve(): void;
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
  private readonly publisher: Redis;
  /** A connection of its own: it blocks on the reply lists. */
  private readonly listener: Redis;
  /** Reply lists being read, one per run this dispatcher serves. */
  private readonly lists = new Set<string>();
  private readonly waiters = new Map<string, Waiter>();
  /**
   * Outcomes of jobs an earlier coordinator sent that nobody waits for yet: read before the
   * resumed run asks for them.
   */
  private readonly orphans = new Map<string, AttemptOutcome>();
  /** This dispatcher instance, named in every job it sends (`AttemptJob.sender`). */
  private readonly instance = randomUUID();
  private readonly pending: PendingAdd[] = [];
  private readonly onRedelivered: BullmqDispatcherOptions['onRedelivered'];
  private closed = false;
  private loop: Promise<void> | undefined;
  private reading: Promise<unknown> = Promise.resolve();
  private outage = false;

  constructor(options: BullmqDispatcherOptions) {
    this.queueName = options.queue ?? DEFAULT_QUEUE;
    const connection = connectionOptions(options.redis);
    this.queue = new Queue(this.queueName, {
      connection,
      defaultJobOptions: {
        // Retries are the scheduler's (one retry layer): BullMQ delivers each attempt once,
        // or again only when its worker was lost.
        attempts: 1,
        // The outcome is read from the run's reply list; the finished job is kept an hour so a
        // coordinator that died after reading an outcome, before journaling it, can still
        // recover it on resume (not paid twice). Age only: cheaper than a count to trim.
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 86_400, count: 1_000 },
      },
    });
    this.publisher = new Redis(connection);
    this.listener = new Redis(connection);
    this.onRedelivered = options.onRedelivered;
    const report = (err: Error) => {
      if (this.outage) return;
      this.outage = true;
      (options.onRedisError ?? ((m) => process.stderr.write(`stride: ${m}\n`)))(
        `Redis at ${safeUrl(options.redis)} is unreachable (${err.message}); waiting for it to come back`,
      );
    };
    this.queue.on('error', report);
    this.publisher.on('error', report);
    this.listener.on('error', report);
    this.publisher.on('ready', () => {
      this.outage = false;
    });
  }

  /** Reads replies as workers push them, and settles the attempts waiting for them. */
  private async listen(): Promise<void> {
    while (!this.closed) {
      // `reading` covers a read from the moment Redis may have popped replies until they are
      // handled: `reconcile` waits for it before it decides that an outcome does not exist.
      const read = this.readOnce();
      this.reading = read;
      const ok = await read;
      // An outage: the connection reconnects by itself; try again shortly.
      if (!ok && !this.closed) await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async readOnce(): Promise<boolean> {
    if (this.lists.size === 0) {
      // No run in progress: nothing to block on until one starts.
      await new Promise((r) => setTimeout(r, 100));
      return true;
    }
    try {
      const first = await this.listener.blpop(...this.lists, 1);
      if (first === null) return true;
      this.receive(first[1]);
      for (const raw of (await this.listener.lpop(first[0], 500)) ?? []) this.receive(raw);
      return true;
    } catch {
      return false;
    }
  }

  private receive(raw: string): void {
    const reply = JSON.parse(raw) as Reply;
    if (reply.redelivered) {
      const parts = parseJobId(reply.id);
      if (parts !== undefined) this.onRedelivered?.(parts);
    }
    // Ours with nobody waiting: an attempt already settled (cancelled before a worker took it).
    // Only an earlier coordinator's outcomes are kept for reconciliation.
    if (!this.deliver(reply.id, reply.outcome) && reply.sender !== this.instance) {
      this.orphans.set(reply.id, reply.outcome);
    }
  }

  /** Resolves the attempt waiting for job `id`; false if none waits. */
  private deliver(id: string, outcome: AttemptOutcome): boolean {
    const w = this.waiters.get(id);
    if (w === undefined) return false;
    this.waiters.delete(id);
    w.resolve(outcome);
    return true;
  }

  /** An earlier coordinator's outcome for job `id`, taken (each is used once). */
  private takeOrphan(id: string): AttemptOutcome | undefined {
    const outcome = this.orphans.get(id);
    if (outcome !== undefined) this.orphans.delete(id);
    return outcome;
  }

  /** Reads every reply waiting in a list now (the listener loop reads the rest as they come). */
  private async drain(list: string): Promise<void> {
    const drained = await this.publisher.multi().lrange(list, 0, -1).del(list).exec();
    for (const raw of (drained?.[0]?.[1] as string[] | undefined) ?? []) this.receive(raw);
  }

  /** A Target whose attempts run on the workers. */
  async targetFor(manifest: RunManifest, runId: string): Promise<Target<TestCase, unknown>> {
    const { target, secrets, targetKey } = targetOf(manifest);
    const rate = manifest.executionPolicy.rateControl;
    const rateKey = `${target.type}:${'baseUrl' in target ? target.baseUrl : ''}:${secrets.find((s) => s.path[1] === 'apiKey')?.template ?? ''}`;
    const list = replyKey(this.queueName, runId);
    // The target once, for every job of the run to name by its key (kept a week).
    await this.publisher
      .multi()
      .hset(targetsKey(this.queueName), targetKey, JSON.stringify({ target, secrets }))
      .expire(targetsKey(this.queueName), 7 * 86_400)
      .exec();
    // Outcomes that arrived while no coordinator listened (a resumed run): read them first.
    await this.drain(list);
    this.lists.add(list);
    this.loop ??= this.listen();
    return {
      key: rateKey,
      execute: (task: TaskView<TestCase>, ctx: AttemptContext) =>
        this.execute(runId, task, ctx, {
          targetKey,
          replyTo: list,
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
    spec: Pick<AttemptJob, 'targetKey' | 'rate' | 'replyTo'>,
  ): Promise<unknown> {
    ctx.signal.throwIfAborted();
    // After a coordinator crash, the previous attempt of this case may have been answered while
    // it was down, or still be running: use that instead of sending the case again.
    const previous =
      ctx.attempt > 1
        ? await this.reconcile(jobId(runId, task.id, ctx.attempt - 1), ctx)
        : undefined;
    const id = jobId(runId, task.id, ctx.attempt);
    // This very attempt may have been sent and answered while no coordinator listened (the
    // journal had not recorded it yet): its outcome is then among the orphans.
    const answered = this.takeOrphan(id);
    const outcome =
      previous ??
      answered ??
      (await this.wait(id, ctx, () =>
        this.enqueue(id, {
          runId,
          taskId: task.id,
          attempt: ctx.attempt,
          testCase: task.input,
          sender: this.instance,
          ...spec,
        }),
      ));
    ctx.reportUsage(outcome.usage);
    if (outcome.ok) return outcome.output;
    throw deserializeError(outcome.error);
  }

  /** The outcome of an earlier job of this case, if it was answered or is still running. */
  private async reconcile(id: string, ctx: AttemptContext): Promise<AttemptOutcome | undefined> {
    const known = this.takeOrphan(id);
    if (known !== undefined) return known;
    const state = await this.queue.getJobState(id);
    // A job this dispatcher sent is an ordinary earlier attempt (failed, timed out, cancelled):
    // the scheduler decided to retry, so the retry is sent, never replaced by the old outcome.
    const job = state === 'unknown' ? undefined : await this.queue.getJob(id);
    if ((job?.data as AttemptJob | undefined)?.sender === this.instance) return undefined;
    if (
      state === 'active' ||
      state === 'waiting' ||
      state === 'delayed' ||
      state === 'prioritized'
    ) {
      // Still running: its outcome comes to this run's reply list, which we read.
      return this.wait(id, ctx, async () => {
        // Read between the state check and now: hand it over.
        const late = this.takeOrphan(id);
        if (late !== undefined) this.deliver(id, late);
      });
    }
    if (state === 'completed') {
      // Kept an hour after it finished: its outcome, even if the coordinator that died had read
      // it from the list without journaling it yet.
      const value = job?.returnvalue as string | AttemptOutcome | null | undefined;
      if (value !== undefined && value !== null) {
        return (typeof value === 'string' ? JSON.parse(value) : value) as AttemptOutcome;
      }
    }
    // Gone from the queue: a worker pushes the outcome before its job finishes, so it is in the
    // run's list, not read yet: read the list now.
    await this.drain(replyOf(id, this.queueName));
    await this.reading;
    return this.takeOrphan(id);
  }

  /**
   * Adds a job, batched: the scheduler starts many attempts in one tick, and one `addBulk` per
   * tick costs one round trip instead of one per attempt.
   */
  private enqueue(id: string, data: AttemptJob): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ id, data, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flushAdds());
    });
  }

  private flushAdds(): void {
    const batch = this.pending.splice(0);
    this.queue
      .addBulk(batch.map((p) => ({ name: 'attempt', data: p.data, opts: { jobId: p.id } })))
      .then(
        () => {
          for (const p of batch) p.resolve();
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      );
  }

  /** Registers the waiter, then adds the job (an answer cannot arrive before we listen). */
  private wait(id: string, ctx: AttemptContext, add: () => Promise<void>): Promise<AttemptOutcome> {
    return new Promise<AttemptOutcome>((resolve, reject) => {
      const onAbort = () => {
        // A worker running it aborts it (its signal fires there, a Dify run gets its stop
        // call); its outcome then arrives as a failure the engine already treats as cancelled.
        this.publisher.publish(cancelChannel(this.queueName), id).catch(() => {});
        // Still waiting for a worker: removed, so it never reaches the target, and settled here.
        this.queue.remove(id).then(
          (removed) => {
            if (removed > 0) this.settleCancelled(id);
          },
          () => {}, // active (locked by its worker): the cancel above reaches it
        );
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
      add().catch((err: unknown) => {
        this.waiters.delete(id);
        done();
        reject(err);
      });
    });
  }

  private settleCancelled(id: string): void {
    this.deliver(id, {
      ok: false,
      error: {
        code: 'CANCELLED',
        name: 'CancelledError',
        message: 'cancelled before a worker took it',
        retryable: false,
      },
      usage: { tokens: 0, cost: 0 },
      worker: '',
    });
  }

  /**
   * Stops reading a run's reply list once its session ended. The list itself is left: a resume
   * of an interrupted run reads the outcomes that arrive after this (it expires in a day).
   */
  async release(runId: string): Promise<void> {
    const list = replyKey(this.queueName, runId);
    this.lists.delete(list);
    const prefix = `${encodeURIComponent(runId)}/`;
    for (const id of this.orphans.keys()) if (id.startsWith(prefix)) this.orphans.delete(id);
  }

  /** Stops reading replies and closes the connections; attempts still waiting are rejected. */
  async close(): Promise<void> {
    for (const [id, w] of this.waiters)
      w.reject(new StrideError('CANCELLED', `dispatcher closed while ${id} was in flight`));
    this.waiters.clear();
    this.closed = true;
    this.listener.disconnect();
    await this.loop?.catch(() => {});
    await this.queue.close().catch(() => {});
    this.publisher.disconnect();
  }
}

/** The reply list of the run a job id belongs to. */
function replyOf(id: string, queue: string): string {
  return replyKey(queue, parseJobId(id)?.runId ?? '');
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
