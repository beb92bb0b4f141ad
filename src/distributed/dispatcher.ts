/**
 * The BullMQ dispatcher: the run's scheduler (concurrency, retries, timeouts, stop rules, the
 * journal) stays in the coordinator; the attempts it starts become BullMQ jobs that workers
 * execute (`stride worker`). The engine does not know: it sees a Target whose `execute` adds the
 * attempt to a job and waits for its outcome. Rate limits move to where attempts start, the
 * workers, through a token bucket in Redis shared by every run and worker on that Redis.
 *
 * Attempts the scheduler starts in the same tick travel in one job (up to `batch`): a job's fixed
 * cost in Redis is paid once for all of them, while each attempt still starts, answers and is
 * cancelled on its own. When attempts start one at a time (a rate limit, slow targets), a job
 * carries one.
 *
 * Outcomes come back through a Redis stream per run (`replyKey`), read with a cursor and trimmed
 * only a minute after they were read (the journal has recorded them by then): a coordinator killed
 * after reading an outcome and before journaling it leaves it in the stream for `stride resume`.
 */

import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { AttemptContext, Target, TaskView } from '../core/index.js';
import { InvalidOptionError, StrideError } from '../core/index.js';
import type { RunManifest, TestCase } from '../plans/index.js';
import type { Dispatcher, Redelivery, ResumeContext } from '../runner/dispatcher.js';
import {
  type AttemptEntry,
  type AttemptJob,
  type AttemptOutcome,
  cancelChannel,
  cancelledKey,
  compareIds,
  DEFAULT_QUEUE,
  deserializeError,
  isReply,
  jobId,
  parseJobId,
  type Reply,
  replyKey,
  type TargetSpec,
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
  /**
   * Most attempts one job carries (attempts the scheduler started in the same tick). 1 sends each
   * attempt as a job of its own. @default 8
   */
  readonly batch?: number;
  /**
   * Called when an attempt comes back after its worker was lost (BullMQ's stalled check). The
   * run session journals these itself (`watchRedeliveries`): this is for logging only.
   */
  readonly onRedelivered?: (e: { runId: string; taskId: string; attempt: number }) => void;
  /** Called on Redis connection errors, once per outage. @default a line on stderr */
  readonly onRedisError?: (message: string) => void;
}

/** The part of a job that is the same for every attempt of a run. */
type JobSpec = Omit<AttemptJob, 'attempts'>;

interface Waiter {
  /** The job that carries it (unset while its add is pending). */
  job?: string | undefined;
  /** Its run's outcome stream. */
  readonly stream: string;
  aborted: boolean;
  /** Holds the attempt's timeout while its worker waits for a shared token (`holdTimeout`). */
  hold(): void;
  /** Releases that hold: the request starts, or the attempt is back in the queue or ended. */
  unhold(): void;
  resolve(outcome: AttemptOutcome): void;
  reject(err: unknown): void;
  /** Its job gave it back without an outcome. */
  returned(): void;
  /** Stops listening for its cancel. */
  detach(): void;
}

interface PendingAdd {
  readonly entry: AttemptEntry;
  readonly spec: JobSpec;
  readonly jobId: string;
  resolve(): void;
  reject(err: unknown): void;
}

interface StreamState {
  /** The id of the last entry read. */
  cursor: string;
  /** The cursor as it was every 30 s: entries read over a minute ago are trimmed. */
  readonly marks: { at: number; id: string }[];
}

/** An earlier coordinator's attempt given back without an outcome: it must be sent anew. */
const RETURNED = Symbol('returned');

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
  readonly queueName: string;
  private readonly batch: number;
  private readonly queue: Queue;
  private readonly publisher: Redis;
  /** A connection of its own: it blocks reading the outcome streams. */
  private readonly listener: Redis;
  private listenerId: number | undefined;
  /** Outcome streams being read, one per run this dispatcher serves. */
  private readonly streams = new Map<string, StreamState>();
  private readonly waiters = new Map<string, Waiter>();
  /** Unanswered attempts of each job sent or found queued, by job id (for cancels). */
  private readonly jobs = new Map<string, Set<string>>();
  /**
   * Outcomes of attempts an earlier coordinator sent that nobody waits for yet: read before the
   * resumed run asks for them.
   */
  private readonly orphans = new Map<string, AttemptOutcome | typeof RETURNED>();
  /** Attempts an earlier coordinator left queued or running, with their job. */
  private readonly live = new Map<string, string>();
  /** Resumed runs: which earlier attempts each may take over. */
  private readonly resumes = new Map<string, ResumeContext>();
  /** How many times each attempt was sent again (each send is a job of its own id). */
  private readonly resent = new Map<string, number>();
  /** This dispatcher instance, named in every job it sends (`AttemptJob.sender`). */
  private readonly instance = randomUUID();
  private pending: PendingAdd[] = [];
  private readonly onRedelivered: BullmqDispatcherOptions['onRedelivered'];
  /** `watchRedeliveries` listeners, per run. */
  private readonly redeliveryWatchers = new Map<string, Set<(e: Redelivery) => void>>();
  private closed = false;
  /** Resolved by `close`. */
  private readonly closing: Promise<void>;
  private shut: () => void = () => {};
  private loop: Promise<void> | undefined;
  private outage = false;
  /** Called when an outage starts. */
  private readonly onOutage = new Set<() => void>();
  /** `watchOutages` listeners: told when an outage starts and when Redis is back. */
  private readonly outageWatchers = new Set<{ down(): void; up(): void }>();
  /**
   * Runs whose start in Redis (target stored, earlier session reconciled) has not finished:
   * their attempts wait for it. Only while Redis is unreachable does a run start before it.
   */
  private readonly opening = new Map<string, Promise<void>>();
  /** The queue's own connection: closed by us, so a close never waits for an unreachable Redis. */
  private readonly queueConnection: Redis;

  constructor(options: BullmqDispatcherOptions) {
    this.queueName = options.queue ?? DEFAULT_QUEUE;
    this.closing = new Promise((resolve) => {
      this.shut = resolve;
    });
    this.batch = options.batch ?? 8;
    if (!Number.isInteger(this.batch) || this.batch < 1) {
      throw new InvalidOptionError('batch', String(options.batch), 'a whole number of at least 1');
    }
    const connection = connectionOptions(options.redis);
    // An instance, not options: BullMQ then leaves closing it to us. Its own close sends QUIT and
    // waits for the answer, which never comes while Redis is unreachable (issue #16 item 4).
    this.queueConnection = new Redis(connection);
    this.queue = new Queue(this.queueName, {
      connection: this.queueConnection,
      defaultJobOptions: {
        // Retries are the scheduler's (one retry layer): BullMQ delivers each job once, or again
        // only when its worker was lost.
        attempts: 1,
        // Outcomes travel through the run's stream, so a finished job is only kept a minute: an
        // add sent again by ioredis after a reconnect then finds it (a no-op).
        removeOnComplete: { age: 60 },
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
      for (const f of this.onOutage) f();
      for (const w of this.outageWatchers) w.down();
      this.abandonCancelled();
    };
    this.queue.on('error', report);
    this.queueConnection.on('error', report);
    this.publisher.on('error', report);
    this.listener.on('error', report);
    this.publisher.on('ready', () => {
      const was = this.outage;
      this.outage = false;
      if (was) for (const w of this.outageWatchers) w.up();
    });
    this.listener.on('ready', () => {
      this.listener.client('ID').then(
        (id) => {
          this.listenerId = Number(id);
        },
        () => {},
      );
    });
  }

  /** Reads outcomes as workers add them, and settles the attempts waiting for them. */
  private async listen(): Promise<void> {
    while (!this.closed) {
      const ok = await this.readOnce();
      // An outage: the connection reconnects by itself; try again shortly.
      if (!ok && !this.closed) await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async readOnce(): Promise<boolean> {
    if (this.streams.size === 0) {
      // No run in progress: nothing to block on until one starts.
      await new Promise((r) => setTimeout(r, 100));
      return true;
    }
    const keys = [...this.streams.keys()];
    try {
      const reading = this.listener.xread(
        'COUNT',
        1000,
        'BLOCK',
        1000,
        'STREAMS',
        ...keys,
        ...keys.map((k) => this.streams.get(k)!.cursor),
      ) as Promise<[string, [string, string[]][]][] | null>;
      reading.catch(() => {});
      // Not left waiting on close: a read queued while Redis is unreachable is never answered,
      // not even by disconnect() (ioredis keeps its offline queue once it stops reconnecting).
      const read = await Promise.race([reading, this.closing.then(() => null)]);
      if (this.closed) return true;
      for (const [key, entries] of read ?? []) {
        const state = this.streams.get(key);
        for (const [id, fields] of entries) {
          this.receive(fields);
          if (state !== undefined && compareIds(id, state.cursor) > 0) state.cursor = id;
        }
      }
      this.trim();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * One stream entry: the replies a worker sent together. Anything not shaped like a reply
   * (another writer on the key, a different version) is skipped: the cursor moves past it.
   */
  private receive(fields: string[]): void {
    const raw = fields[1];
    if (fields[0] !== 'r' || raw === undefined) return;
    let replies: unknown;
    try {
      replies = JSON.parse(raw);
    } catch {
      return;
    }
    if (!Array.isArray(replies)) return;
    for (const reply of replies) {
      if (!isReply(reply)) continue;
      if ('waiting' in reply) {
        const w = this.waiters.get(reply.id);
        if (reply.waiting) w?.hold();
        else w?.unhold();
      } else if ('returned' in reply) this.onReturned(reply);
      // Ours with nobody waiting: an attempt already settled (cancelled before a worker took
      // it). An earlier coordinator's outcome is kept only if the resumed run may ask for it.
      else if (
        !this.deliver(reply.id, reply.outcome) &&
        reply.sender !== this.instance &&
        this.takesOver(reply.id)
      ) {
        this.orphans.set(reply.id, reply.outcome);
      }
    }
  }

  /** Whether a resumed run may still need this attempt of an earlier session (`ResumeContext`). */
  private takesOver(id: string): boolean {
    const parts = parseJobId(id);
    if (parts === undefined) return false;
    return this.resumes.get(parts.runId)?.takesOver(parts.taskId, parts.attempt) ?? false;
  }

  private onReturned({ id, sender, maybeSent, job }: Extract<Reply, { returned: true }>): void {
    const w = this.waiters.get(id);
    if (w === undefined) {
      // An earlier coordinator's attempt: to be sent anew when the resumed run asks for it
      // (unless its outcome came first, from the worker that was lost).
      if (sender !== this.instance && !this.orphans.has(id) && this.takesOver(id)) {
        this.orphans.set(id, RETURNED);
        this.live.delete(id);
      }
      return;
    }
    // Given back by a job it already left (sent again in another since): nothing to do.
    if (w.job !== job) return;
    this.leaveJob(id, w);
    // Back in the queue: its timeout counts again, as it does for any attempt not yet taken.
    w.unhold();
    if (maybeSent) {
      const parts = parseJobId(id);
      if (parts !== undefined) {
        this.onRedelivered?.(parts);
        for (const listener of this.redeliveryWatchers.get(parts.runId) ?? []) listener(parts);
      }
    }
    // Cancelled meanwhile: it ends here instead of going out again.
    if (w.aborted) this.deliver(id, CANCELLED);
    else w.returned();
  }

  /** Resolves the attempt waiting for `id`; false if none waits. */
  private deliver(id: string, outcome: AttemptOutcome): boolean {
    const w = this.waiters.get(id);
    if (w === undefined) return false;
    this.waiters.delete(id);
    this.leaveJob(id, w);
    w.resolve(outcome);
    return true;
  }

  private leaveJob(id: string, w: Waiter): void {
    if (w.job === undefined) return;
    const attempts = this.jobs.get(w.job);
    attempts?.delete(id);
    if (attempts?.size === 0) this.jobs.delete(w.job);
    w.job = undefined;
  }

  /** An earlier coordinator's outcome for `id`, taken (each is used once). */
  private takeOrphan(id: string): AttemptOutcome | typeof RETURNED | undefined {
    const outcome = this.orphans.get(id);
    if (outcome !== undefined) this.orphans.delete(id);
    return outcome;
  }

  /**
   * Trims what was read over a minute ago: the journal recorded it long since. Not while a
   * resumed run still holds outcomes of an earlier session it has not used yet: a second crash
   * would lose them.
   */
  private trim(): void {
    const now = Date.now();
    const holding = new Set<string>();
    for (const id of this.orphans.keys()) holding.add(replyOf(id, this.queueName));
    for (const [key, state] of this.streams) {
      if (holding.has(key)) continue;
      const last = state.marks[state.marks.length - 1];
      if (last === undefined || now - last.at >= 30_000)
        state.marks.push({ at: now, id: state.cursor });
      while (state.marks.length > 1 && state.marks[0]!.at <= now - 60_000) {
        const { id } = state.marks.shift()!;
        if (id !== '0-0') this.publisher.xtrim(key, 'MINID', id).catch(() => {});
      }
    }
  }

  /** A Target whose attempts run on the workers. */
  async targetFor(
    manifest: RunManifest,
    runId: string,
    resume?: ResumeContext,
  ): Promise<Target<TestCase, unknown>> {
    const { target, secrets, targetKey } = targetOf(manifest);
    const rate = manifest.executionPolicy.rateControl;
    // A base URL holding credentials travels redacted: its `${VAR}` name keeps keys apart.
    const template = (field: string) => secrets.find((s) => s.path[1] === field)?.template;
    const rateKey = `${target.type}:${template('baseUrl') ?? ('baseUrl' in target ? target.baseUrl : '')}:${template('apiKey') ?? ''}`;
    const stream = replyKey(this.queueName, runId);
    if (resume !== undefined) this.resumes.set(runId, resume);
    const opened = this.open(runId, stream, targetKey, { target, secrets }, resume !== undefined);
    this.opening.set(runId, opened);
    opened.then(
      () => {
        if (this.opening.get(runId) === opened) this.opening.delete(runId);
      },
      () => {},
    );
    // Waited for, unless Redis is unreachable: the run then starts without it (its journal
    // exists, so Ctrl-C can interrupt it resumably) and its attempts wait for Redis.
    await new Promise<void>((resolve, reject) => {
      const unreachable = () => {
        this.onOutage.delete(unreachable);
        resolve();
      };
      if (this.outage) return resolve();
      this.onOutage.add(unreachable);
      opened.then(
        () => {
          this.onOutage.delete(unreachable);
          resolve();
        },
        (err: unknown) => {
          this.onOutage.delete(unreachable);
          reject(err);
        },
      );
    });
    const spec: JobSpec = {
      runId,
      targetKey,
      replyTo: stream,
      sender: this.instance,
      ...(rate === undefined
        ? {}
        : { rate: { key: rateKey, perMinute: rate.perMinute, burst: rate.burst } }),
    };
    return {
      key: rateKey,
      execute: (task: TaskView<TestCase>, ctx: AttemptContext) => this.execute(task, ctx, spec),
    };
  }

  /**
   * What a run needs in Redis before its first attempt: its target stored once, for every job to
   * name by its key (kept a week), and for a resumed run, the attempts an earlier coordinator
   * left in the queue, then every outcome in the stream (in this order, an attempt that finishes
   * in between is seen in one of them). A new run has nothing in Redis yet.
   */
  private async open(
    runId: string,
    stream: string,
    targetKey: string,
    spec: TargetSpec,
    resumed: boolean,
  ): Promise<void> {
    await this.publisher
      .multi()
      .hset(targetsKey(this.queueName), targetKey, JSON.stringify(spec))
      .expire(targetsKey(this.queueName), 7 * 86_400)
      .exec();
    const state: StreamState = { cursor: '0-0', marks: [] };
    if (resumed) {
      await this.findLive(runId);
      await this.readFrom(stream, state);
    }
    this.streams.set(stream, state);
    // A read blocked on the other runs' streams starts over with this one.
    if (this.loop !== undefined && this.listenerId !== undefined) {
      await this.publisher.client('UNBLOCK', this.listenerId).catch(() => {});
    }
    this.loop ??= this.listen();
  }

  /** Jobs of this run still queued or running that an earlier coordinator sent. */
  private async findLive(runId: string): Promise<void> {
    const found = await this.queue.getJobs(['active', 'wait', 'prioritized', 'delayed']);
    for (const job of found) {
      const data = job?.data as AttemptJob | undefined;
      if (job?.id === undefined || data?.runId !== runId || !Array.isArray(data.attempts)) continue;
      const attempts = new Set<string>();
      for (const a of data.attempts) {
        if (!this.takesOver(a.id)) continue;
        this.live.set(a.id, job.id);
        attempts.add(a.id);
      }
      if (attempts.size > 0) this.jobs.set(job.id, attempts);
    }
  }

  /** Reads a stream from the state's cursor to its end, moving the cursor. */
  private async readFrom(stream: string, state: StreamState): Promise<void> {
    for (;;) {
      const entries = (await this.publisher.xrange(
        stream,
        `(${state.cursor}`,
        '+',
        'COUNT',
        1000,
      )) as [string, string[]][];
      for (const [id, fields] of entries) {
        this.receive(fields);
        if (compareIds(id, state.cursor) > 0) state.cursor = id;
      }
      if (entries.length < 1000) return;
    }
  }

  private async execute(
    task: TaskView<TestCase>,
    ctx: AttemptContext,
    spec: JobSpec,
  ): Promise<unknown> {
    ctx.signal.throwIfAborted();
    const opening = this.opening.get(spec.runId);
    if (opening !== undefined) await untilAborted(opening, ctx.signal);
    const id = jobId(spec.runId, task.id, ctx.attempt);
    const resumed = this.resumes.has(spec.runId);
    // After a coordinator crash, the previous attempt of this case may have been answered while
    // it was down, or still be running: use that instead of sending the case again. So may this
    // very attempt, sent by a coordinator that died before its journal recorded the start.
    const outcome =
      (resumed && ctx.attempt > 1
        ? await this.reconcile(jobId(spec.runId, task.id, ctx.attempt - 1), ctx)
        : undefined) ??
      (resumed ? await this.reconcile(id, ctx) : undefined) ??
      (await this.send(
        { id, taskId: task.id, attempt: ctx.attempt, testCase: task.input },
        spec,
        ctx,
      ));
    ctx.reportUsage(outcome.usage);
    if (outcome.ok) return outcome.output;
    throw deserializeError(outcome.error);
  }

  /** Sends an attempt and waits for its outcome; sent again if its job gives it back. */
  private send(entry: AttemptEntry, spec: JobSpec, ctx: AttemptContext): Promise<AttemptOutcome> {
    return new Promise<AttemptOutcome>((resolve, reject) => {
      const add = () => {
        const n = this.resent.get(entry.id) ?? 0;
        this.resent.set(entry.id, n + 1);
        // Unique per dispatcher and send: an attempt a dead coordinator sent (its job kept a
        // minute after finishing) never makes this add a silent no-op.
        const job = `${entry.id}!${this.instance.slice(0, 8)}${n === 0 ? '' : `.${n}`}`;
        this.enqueue(entry, spec, job).catch((err: unknown) => {
          const w = this.waiters.get(entry.id);
          this.waiters.delete(entry.id);
          if (w === undefined) return reject(err);
          this.leaveJob(entry.id, w);
          w.reject(err);
        });
      };
      this.wait(entry.id, ctx, resolve, reject, add);
      add();
    }).finally(() => this.resent.delete(entry.id));
  }

  /**
   * The outcome of an attempt an earlier coordinator sent, if it was answered or is still
   * running (then waited for); undefined if it must be sent (again).
   */
  private async reconcile(id: string, ctx: AttemptContext): Promise<AttemptOutcome | undefined> {
    const known = this.takeOrphan(id);
    if (known !== undefined) return known === RETURNED ? undefined : known;
    const job = this.live.get(id);
    // Not left running by an earlier coordinator: an ordinary earlier attempt (failed, timed
    // out, cancelled) the scheduler decided to retry, or one that never reached a job. Sent anew.
    if (job === undefined) return undefined;
    this.live.delete(id);
    // Still queued or running: its outcome comes to this run's stream, which we read. Given back
    // instead (its worker was lost), the retry is sent.
    return new Promise<AttemptOutcome | undefined>((resolve, reject) => {
      const w = this.wait(id, ctx, resolve, reject, () => {
        this.waiters.delete(id);
        w.detach();
        resolve(undefined);
      });
      w.job = job;
    });
  }

  /** Registers the attempt's waiter and its cancel. */
  private wait(
    id: string,
    ctx: AttemptContext,
    resolve: (o: AttemptOutcome) => void,
    reject: (err: unknown) => void,
    returned: () => void,
  ): Waiter {
    const onAbort = () => this.cancel(id);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let release: (() => void) | undefined;
    const unhold = () => {
      release?.();
      release = undefined;
    };
    const detach = () => {
      ctx.signal.removeEventListener('abort', onAbort);
      unhold();
    };
    const waiter: Waiter = {
      stream: replyOf(id, this.queueName),
      aborted: false,
      hold: () => {
        release ??= ctx.holdTimeout?.();
      },
      unhold,
      resolve: (o) => {
        detach();
        resolve(o);
      },
      reject: (e) => {
        detach();
        reject(e);
      },
      returned,
      detach,
    };
    this.waiters.set(id, waiter);
    // Aborted before it was registered: the listener above will never fire.
    if (ctx.signal.aborted) queueMicrotask(onAbort);
    return waiter;
  }

  /**
   * Cancels an attempt. A worker running it aborts it (its signal fires there, a Dify run gets
   * its stop call), and a worker that has not started it never does; the outcome then arrives as
   * a failure the engine already treats as cancelled. A job still waiting for a worker is removed
   * instead, and its attempts settled here.
   */
  private cancel(id: string): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    w.aborted = true;
    // Its worker cannot be told, nor answer, while Redis is unreachable: waiting would hold the
    // slot (and a Ctrl-C) until Redis is back. The cancel still goes out when it is back.
    if (this.outage) queueMicrotask(() => this.abandon(id));
    const queued = this.pending.findIndex((p) => p.entry.id === id);
    if (queued >= 0) {
      // Not added yet: it never will be.
      this.pending.splice(queued, 1)[0]!.resolve();
      this.deliver(id, CANCELLED);
      return;
    }
    this.publisher
      .multi()
      .publish(cancelChannel(this.queueName), id)
      .sadd(cancelledKey(this.queueName), id)
      .expire(cancelledKey(this.queueName), 3600)
      .exec()
      .catch(() => {});
    const job = w.job;
    // Its job is removed only once every attempt it still carries is cancelled (a run's cancel):
    // a single timeout leaves the others their place in the queue, and the worker that takes
    // the job finds this one in the cancelled set and answers it without starting it.
    const carried = job === undefined ? undefined : this.jobs.get(job);
    if (job === undefined || carried === undefined) return;
    for (const other of carried) {
      const ow = this.waiters.get(other);
      // An earlier coordinator's attempt the resumed run has not asked for yet does not hold it.
      if (ow === undefined ? !this.live.has(other) : !ow.aborted) return;
    }
    this.queue.remove(job).then(
      (removed) => {
        if (removed > 0) void this.removed(job, w.stream);
      },
      () => {}, // active (locked by its worker): the cancel above reaches it
    );
  }

  /**
   * Settles cancelled attempts without their worker's answer (Redis is unreachable). At least
   * once, as after a lost worker: one its worker ran anyway is answered into the stream, and
   * ignored here.
   */
  private abandonCancelled(): void {
    for (const [id, w] of this.waiters) if (w.aborted) this.abandon(id);
  }

  private abandon(id: string): void {
    const w = this.waiters.get(id);
    if (w?.aborted === true) this.deliver(id, ABANDONED);
  }

  /**
   * A job removed. Usually before a worker took it; but a job kept after it finished is removed
   * too, and its outcomes are then already in the stream (a worker writes them before it
   * finishes the job): the stream is read to its end first, so they are delivered, and only
   * attempts still waiting settle as cancelled.
   */
  private async removed(job: string, stream: string): Promise<void> {
    const state = this.streams.get(stream);
    if (state !== undefined) await this.readFrom(stream, state).catch(() => {});
    for (const id of [...(this.jobs.get(job) ?? [])]) {
      if (!this.deliver(id, CANCELLED) && this.live.delete(id)) this.orphans.set(id, RETURNED);
    }
    this.jobs.delete(job);
  }

  /**
   * Adds an attempt to the next job, batched: the scheduler starts many attempts in one tick,
   * and one `addBulk` per tick costs one round trip, with up to `batch` attempts per job.
   */
  private enqueue(entry: AttemptEntry, spec: JobSpec, id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entry, spec, jobId: id, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flushAdds());
    });
  }

  private flushAdds(): void {
    const pending = this.pending;
    this.pending = [];
    if (pending.length === 0) return;
    // Attempts of one run share a job; several runs on one dispatcher each get their own.
    const byRun = new Map<string, PendingAdd[]>();
    for (const p of pending) {
      const list = byRun.get(p.spec.replyTo);
      if (list === undefined) byRun.set(p.spec.replyTo, [p]);
      else list.push(p);
    }
    const jobs: { name: string; data: AttemptJob; opts: { jobId: string } }[] = [];
    for (const list of byRun.values()) {
      for (let i = 0; i < list.length; i += this.batch) {
        const chunk = list.slice(i, i + this.batch);
        const job = chunk[0]!.jobId;
        const attempts = new Set<string>();
        for (const p of chunk) {
          attempts.add(p.entry.id);
          const w = this.waiters.get(p.entry.id);
          if (w !== undefined) w.job = job;
        }
        this.jobs.set(job, attempts);
        jobs.push({
          name: 'attempts',
          data: { ...chunk[0]!.spec, attempts: chunk.map((p) => p.entry) },
          opts: { jobId: job },
        });
      }
    }
    this.queue.addBulk(jobs).then(
      () => {
        for (const p of pending) p.resolve();
      },
      (err: unknown) => {
        for (const p of pending) p.reject(err);
      },
    );
  }

  /**
   * Stops reading a run's outcome stream once its session ended. The stream itself is left: a
   * resume of an interrupted run reads the outcomes that arrive after this (it expires in a day).
   */
  /** The run session's hook (the Dispatcher port): attempts of `runId` delivered again. */
  /**
   * Tells `listener` when Redis becomes unreachable (`down`, at once if it is now) and when it
   * is back (`up`): the run session holds the run (`redis`) meanwhile. Returns the unsubscribe.
   */
  watchOutages(listener: { down(): void; up(): void }): () => void {
    this.outageWatchers.add(listener);
    if (this.outage) listener.down();
    return () => {
      this.outageWatchers.delete(listener);
    };
  }

  watchRedeliveries(runId: string, listener: (e: Redelivery) => void): () => void {
    const set = this.redeliveryWatchers.get(runId) ?? new Set<(e: Redelivery) => void>();
    this.redeliveryWatchers.set(runId, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.redeliveryWatchers.get(runId) === set)
        this.redeliveryWatchers.delete(runId);
    };
  }

  async release(runId: string): Promise<void> {
    this.streams.delete(replyKey(this.queueName, runId));
    this.resumes.delete(runId);
    this.opening.delete(runId);
    const prefix = `${encodeURIComponent(runId)}/`;
    // Attempts the run stopped waiting for (abandoned after a hard stop): settled, not leaked.
    for (const [id, w] of this.waiters) {
      if (!id.startsWith(prefix)) continue;
      this.waiters.delete(id);
      this.leaveJob(id, w);
      w.reject(new StrideError('CANCELLED', `run ${runId} ended while ${id} was in flight`));
    }
    for (const id of this.orphans.keys()) if (id.startsWith(prefix)) this.orphans.delete(id);
    for (const [id, job] of this.live) {
      if (id.startsWith(prefix)) {
        this.live.delete(id);
        this.jobs.delete(job);
      }
    }
  }

  /** Stops reading outcomes and closes the connections; attempts still waiting are rejected. */
  async close(): Promise<void> {
    for (const [id, w] of this.waiters)
      w.reject(new StrideError('CANCELLED', `dispatcher closed while ${id} was in flight`));
    this.waiters.clear();
    this.closed = true;
    this.shut();
    this.listener.disconnect();
    await this.loop?.catch(() => {});
    await this.queue.close().catch(() => {});
    this.queueConnection.disconnect();
    this.publisher.disconnect();
  }
}

const CANCELLED: AttemptOutcome = {
  ok: false,
  error: {
    code: 'CANCELLED',
    name: 'CancelledError',
    message: 'cancelled before a worker took it',
    retryable: false,
  },
  usage: { tokens: 0, cost: 0 },
  worker: '',
};

const ABANDONED: AttemptOutcome = {
  ok: false,
  error: {
    code: 'CANCELLED',
    name: 'CancelledError',
    message: 'cancelled while Redis was unreachable (its worker, if it had it, was not told)',
    retryable: false,
  },
  usage: { tokens: 0, cost: 0 },
  worker: '',
};

/** Resolves with `promise`, or rejects with the signal's reason once it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** The outcome stream of the run an attempt id belongs to. */
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
