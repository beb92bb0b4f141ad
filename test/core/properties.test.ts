/**
 * Property tests of the engine's invariants, all on the VirtualClock: they assert order and
 * counts, never wall time. Each property keeps numRuns modest so the file runs in seconds.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AttemptContext,
  classifyError,
  HttpError,
  isTerminal,
  NonRetryableError,
  RateLimitedError,
  RateLimiter,
  Run,
  type RunExecutionResult,
  type StopConditions,
  TaskFailedError,
  type TaskSpec,
  type TaskStatus,
  type TaskTransition,
  type TaskView,
  VirtualClock,
} from '../../src/core/index.js';
import { maxInWindow, settleOrStall, windowBound } from './harness.js';
import { untilAborted } from './helpers.js';

// ------------------------------------------------------------------ shared arbitraries

const perMinuteArb = fc.oneof(
  fc.integer({ min: 1, max: 600 }),
  fc.double({ min: 0.5, max: 3000, noNaN: true, noDefaultInfinity: true }),
);

/** An arrival time, often clustered right before or after a multiple of a window. */
const arrivalArb = fc.record({
  anchor: fc.constantFrom('minute', 'second', 'period', 'free'),
  k: fc.integer({ min: 0, max: 200 }),
  offset: fc.oneof(
    fc.constantFrom(0, -1e-6, 1e-6, -1, 1),
    fc.integer({ min: -5, max: 5 }),
    fc.double({ min: -50, max: 50, noNaN: true }),
  ),
  free: fc.integer({ min: 0, max: 200_000 }),
});
type Arrival = typeof arrivalArb extends fc.Arbitrary<infer A> ? A : never;

function arrivalTime(a: Arrival, perMinute: number): number {
  const period = 60_000 / perMinute;
  const base =
    a.anchor === 'minute'
      ? (a.k % 4) * 60_000
      : a.anchor === 'second'
        ? a.k * 1000
        : a.anchor === 'period'
          ? (a.k % 40) * period
          : a.free;
  return Math.max(0, a.anchor === 'free' ? base : base + a.offset);
}

function windowsFor(perMinute: number): number[] {
  return [100, 1000, 60_000, 60_000 / perMinute];
}

function expectRateWindows(starts: number[], perMinute: number, burst: number): void {
  for (const w of windowsFor(perMinute)) {
    const peak = maxInWindow(starts, w);
    const bound = windowBound(perMinute, burst, w);
    expect(
      peak.count,
      `window ${w} ms from ${peak.at}: ${peak.count} starts > ${bound} (perMinute ${perMinute}, burst ${burst})`,
    ).toBeLessThanOrEqual(bound);
  }
}

/** Waits for the run; a run that can make no more progress is cancelled, which must end it. */
async function finish<I, O>(
  run: Run<I, O>,
  clock: VirtualClock,
): Promise<{ result: RunExecutionResult<I, O>; stalled: boolean }> {
  const first = await settleOrStall(run.start(), clock);
  if (first.done) return { result: first.value, stalled: false };
  run.cancel();
  const second = await settleOrStall(run.start(), clock);
  expect(second.done, 'a cancelled run must resolve').toBe(true);
  if (!second.done) throw new Error('unreachable');
  return { result: second.value, stalled: true };
}

// ------------------------------------------------------------------ 1. rate windows

describe('property: no window of W ms holds more than burst + rate * W starts', () => {
  it('RateLimiter directly, with acquire, tryAcquire and coolDown at random arrivals', async () => {
    await fc.assert(
      fc.asyncProperty(
        perMinuteArb,
        fc.integer({ min: 1, max: 10 }),
        fc.array(
          fc.record({
            arrival: arrivalArb,
            op: fc.constantFrom('acquire', 'acquire', 'acquire', 'try', 'try', 'cool'),
            count: fc.integer({ min: 1, max: 6 }),
            coolMs: fc.integer({ min: 0, max: 5000 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        async (perMinute, burst, events) => {
          const clock = new VirtualClock();
          const limiter = new RateLimiter({ perMinute, burst }, { clock });
          const plan = events
            .map((e) => ({ ...e, at: arrivalTime(e.arrival, perMinute) }))
            .sort((a, b) => a.at - b.at);
          const starts: number[] = [];
          const waits: Promise<void>[] = [];
          let acquires = 0;
          let tried = 0;
          for (const e of plan) {
            const d = e.at - clock.now();
            if (d > 0) await clock.sleep(d);
            for (let i = 0; i < e.count; i++) {
              if (e.op === 'try') {
                if (limiter.tryAcquire()) {
                  tried++;
                  starts.push(clock.now());
                }
              } else if (e.op === 'cool') {
                limiter.coolDown(e.coolMs);
              } else {
                acquires++;
                waits.push(limiter.acquire().then(() => void starts.push(clock.now())));
              }
            }
          }
          await Promise.all(waits);
          expect(starts.length).toBe(acquires + tried);
          expectRateWindows(starts, perMinute, burst);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('through Run: every attempt (retries included) of tasks streamed at random times', async () => {
    await fc.assert(
      fc.asyncProperty(
        perMinuteArb,
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.array(
          fc.record({
            arrival: arrivalArb,
            count: fc.integer({ min: 1, max: 5 }),
            durationMs: fc.integer({ min: 0, max: 3000 }),
            failFirst: fc.integer({ min: 0, max: 2 }),
          }),
          { minLength: 1, maxLength: 15 },
        ),
        async (perMinute, burst, concurrency, backoffMs, specs) => {
          const clock = new VirtualClock();
          const plan = specs
            .flatMap((s, i) =>
              Array.from({ length: s.count }, (_, j) => ({
                ...s,
                id: `t${i}.${j}`,
                at: arrivalTime(s.arrival, perMinute),
              })),
            )
            .sort((a, b) => a.at - b.at);
          async function* source(): AsyncGenerator<TaskSpec<(typeof plan)[number]>> {
            for (const p of plan) {
              const d = p.at - clock.now();
              if (d > 0) await clock.sleep(d);
              yield { id: p.id, input: p };
            }
          }
          const starts: number[] = [];
          const run = new Run(
            source(),
            {
              async execute(task, ctx) {
                starts.push(clock.now());
                await clock.sleep(task.input.durationMs, ctx.signal);
                if (ctx.attempt <= task.input.failFirst) throw new Error('transient');
                return task.id;
              },
            },
            {
              clock,
              concurrency,
              rate: { perMinute, burst },
              retry: { maxAttempts: 3, backoffMs },
            },
          );
          const result = await run.start();
          expect(result.statistics.succeededTasks).toBe(plan.length);
          expect(starts.length).toBe(result.statistics.attempts);
          expect(starts.length).toBe(plan.reduce((n, p) => n + p.failFirst + 1, 0));
          expectRateWindows(starts, perMinute, burst);
        },
      ),
      { numRuns: 60 },
    );
  });
});

// ------------------------------------------------------------------ 2. concurrency

const zombieKinds = ['quick', 'overrun', 'never', 'throw', 'honour'] as const;

describe('property: never more than `concurrency` attempts running at once', () => {
  it('with tasks that ignore their abort, run past their timeout, or never settle', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          concurrency: fc.integer({ min: 1, max: 4 }),
          timeoutMs: fc.integer({ min: 20, max: 200 }),
          zombieGraceMs: fc.integer({ min: 0, max: 300 }),
          maxAttempts: fc.integer({ min: 1, max: 3 }),
          backoffMs: fc.integer({ min: 0, max: 100 }),
          tasks: fc.array(
            fc.record({
              kind: fc.constantFrom(...zombieKinds),
              ms: fc.integer({ min: 0, max: 400 }),
            }),
            { minLength: 1, maxLength: 16 },
          ),
        }),
        async (o) => {
          const clock = new VirtualClock();
          let running = 0;
          let max = 0;
          const body = (
            kind: (typeof zombieKinds)[number],
            ms: number,
            signal: AbortSignal,
          ): Promise<string> => {
            switch (kind) {
              case 'quick':
                return clock.sleep(ms).then(() => 'ok');
              case 'overrun':
                return clock.sleep(o.timeoutMs + ms).then(() => 'late');
              case 'never':
                return new Promise<string>(() => {});
              case 'throw':
                return clock.sleep(ms).then(() => {
                  throw new Error('transient');
                });
              default:
                return clock.sleep(2 * ms, signal).then(() => 'ok');
            }
          };
          const run = new Run(
            o.tasks.map((t, i) => ({ id: `t${i}`, input: t })),
            {
              execute(task, ctx) {
                running++;
                max = Math.max(max, running);
                const p = body(task.input.kind, task.input.ms, ctx.signal);
                p.then(
                  () => running--,
                  () => running--,
                );
                return p;
              },
            },
            {
              clock,
              concurrency: o.concurrency,
              timeoutMs: o.timeoutMs,
              zombieGraceMs: o.zombieGraceMs,
              retry: { maxAttempts: o.maxAttempts, backoffMs: o.backoffMs },
            },
          );
          const { result } = await finish(run, clock);
          expect(max).toBeLessThanOrEqual(o.concurrency);
          // The run's slot count and the attempts still running agree: no slot was given back early.
          expect(run.progress.running).toBe(running);
          expect(result.statistics.totalTasks).toBe(o.tasks.length);
        },
      ),
      { numRuns: 80 },
    );
  });
});

// ------------------------------------------------------------------ 3. exactly one terminal state

const behaviours = ['success', 'retryable', 'failed', 'timeout', 'hang', 'zombie'] as const;
const controlOps = [
  'cancel',
  'cancelDrain',
  'pause',
  'pauseAbort',
  'resume',
  'resume',
  'concurrency',
] as const;

function stopConditions(s: {
  maxFailures: number | undefined;
  deadlineMs: number | undefined;
  inFlight: 'abort' | 'drain';
}): StopConditions {
  return {
    inFlight: s.inFlight,
    ...(s.maxFailures === undefined ? {} : { maxFailures: s.maxFailures }),
    ...(s.deadlineMs === undefined ? {} : { deadlineMs: s.deadlineMs }),
  };
}

describe('property: every task ends in exactly one terminal state', () => {
  it('across random behaviours with random cancel / pause / resume at random virtual times', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          concurrency: fc.integer({ min: 1, max: 4 }),
          timeoutMs: fc.integer({ min: 30, max: 150 }),
          maxAttempts: fc.integer({ min: 1, max: 3 }),
          backoffMs: fc.integer({ min: 0, max: 200 }),
          zombieGraceMs: fc.integer({ min: 0, max: 300 }),
          streamed: fc.boolean(),
          rated: fc.boolean(),
          stop: fc.option(
            fc.record({
              maxFailures: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
              deadlineMs: fc.option(fc.integer({ min: 100, max: 2000 }), { nil: undefined }),
              inFlight: fc.constantFrom('abort', 'drain') as fc.Arbitrary<'abort' | 'drain'>,
            }),
            { nil: undefined },
          ),
          tasks: fc.array(
            fc.record({
              kind: fc.constantFrom(...behaviours),
              ms: fc.integer({ min: 0, max: 100 }),
              priority: fc.integer({ min: 0, max: 2 }),
            }),
            { minLength: 1, maxLength: 15 },
          ),
          controls: fc.array(
            fc.record({
              at: fc.integer({ min: 0, max: 1500 }),
              op: fc.constantFrom(...controlOps),
            }),
            { maxLength: 6 },
          ),
        }),
        async (o) => {
          const clock = new VirtualClock();
          type In = { kind: (typeof behaviours)[number]; ms: number };
          const specs = o.tasks.map((t, i) => ({ id: `t${i}`, input: t, priority: t.priority }));
          async function* stream(): AsyncGenerator<TaskSpec<In>> {
            for (const s of specs) {
              await clock.sleep(s.input.ms);
              yield s;
            }
          }
          const startedAborted: string[] = [];
          const execute = async (task: TaskView<In>, ctx: AttemptContext): Promise<string> => {
            if (ctx.signal.aborted) startedAborted.push(task.id);
            const { kind, ms } = task.input;
            switch (kind) {
              case 'success':
                await clock.sleep(ms, ctx.signal);
                return 'ok';
              case 'retryable':
                await clock.sleep(ms, ctx.signal);
                throw new Error('transient');
              case 'failed':
                await clock.sleep(ms, ctx.signal);
                throw new TaskFailedError('wrong answer');
              case 'timeout':
                await clock.sleep(o.timeoutMs + 50 + ms, ctx.signal);
                return 'too late';
              case 'hang':
                return untilAborted(ctx.signal);
              default:
                return new Promise<string>(() => {});
            }
          };
          const run = new Run<In, string>(
            o.streamed ? stream() : specs,
            { execute },
            {
              clock,
              concurrency: o.concurrency,
              timeoutMs: o.timeoutMs,
              zombieGraceMs: o.zombieGraceMs,
              retry: { maxAttempts: o.maxAttempts, backoffMs: o.backoffMs },
              ...(o.rated ? { rate: { perMinute: 300, burst: 2 } } : {}),
              ...(o.stop === undefined ? {} : { stop: stopConditions(o.stop) }),
            },
          );
          type Ev =
            | { kind: 't'; e: TaskTransition }
            | { kind: 'paused' | 'resumed' | 'stopping' | 'done' };
          const events: Ev[] = [];
          run.on('transition', (e) => events.push({ kind: 't', e }));
          run.on('paused', () => events.push({ kind: 'paused' }));
          run.on('resumed', () => events.push({ kind: 'resumed' }));
          run.on('stopping', () => events.push({ kind: 'stopping' }));
          run.on('done', () => events.push({ kind: 'done' }));
          const timers = o.controls.map((c) =>
            clock.schedule(c.at, () => {
              if (c.op === 'cancel') run.cancel();
              else if (c.op === 'cancelDrain') run.cancel({ drain: true });
              else if (c.op === 'pause') run.pause();
              else if (c.op === 'pauseAbort') run.pause({ abortInFlight: true });
              else if (c.op === 'concurrency') run.setConcurrency(1 + (c.at % 4));
              else run.resume();
            }),
          );
          const { result } = await finish(run, clock);
          for (const cancel of timers) cancel();

          const transitions = events.flatMap((x) => (x.kind === 't' ? [x.e] : []));
          const terminalCount = new Map<string, number>();
          const lastTo = new Map<string, string>();
          for (const e of transitions) {
            if (isTerminal(e.to))
              terminalCount.set(e.taskId, (terminalCount.get(e.taskId) ?? 0) + 1);
            lastTo.set(e.taskId, e.to);
          }
          for (const s of specs) {
            expect(terminalCount.get(s.id) ?? 0, `terminal transitions of ${s.id}`).toBe(1);
            // Nothing after the terminal transition: it is the task's last event.
            expect(isTerminal((lastTo.get(s.id) ?? 'pending') as TaskStatus), s.id).toBe(true);
          }
          expect(result.tasks.length).toBe(specs.length);
          expect(new Set(result.tasks.map((r) => r.id)).size).toBe(specs.length);
          for (const r of result.tasks) {
            expect(isTerminal(r.status), r.id).toBe(true);
            expect(r.status, r.id).toBe(lastTo.get(r.id));
          }
          const by = result.statistics.byStatus;
          expect(by.pending + by.queued + by.running).toBe(0);
          expect(by.succeeded + by.failed + by.timeout + by.cancelled + by.error).toBe(
            specs.length,
          );

          // No attempt starts with an aborted signal, after the run began stopping, or while paused.
          expect(startedAborted).toEqual([]);
          let paused = false;
          let stopping = false;
          let done = false;
          for (const x of events) {
            if (x.kind === 'paused') paused = true;
            else if (x.kind === 'resumed') paused = false;
            else if (x.kind === 'stopping') stopping = true;
            else if (x.kind === 'done') done = true;
            else if (x.kind === 't') {
              expect(done, `transition after done: ${JSON.stringify(x.e.taskId)}`).toBe(false);
              if (x.e.to === 'running') {
                expect(stopping, `${x.e.taskId} started after stop`).toBe(false);
                expect(paused, `${x.e.taskId} started while paused`).toBe(false);
              }
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('property: no attempt starts once the run is stopping', () => {
  it('cancel called from inside a transition listener (at any event) ends the run and starts nothing after it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          concurrency: fc.integer({ min: 1, max: 4 }),
          drain: fc.boolean(),
          cancelAtEvent: fc.integer({ min: 0, max: 30 }),
          tasks: fc.array(fc.record({ ms: fc.integer({ min: 0, max: 50 }), fails: fc.boolean() }), {
            minLength: 1,
            maxLength: 10,
          }),
        }),
        async (o) => {
          const clock = new VirtualClock();
          const lateStarts: string[] = [];
          const run: Run<{ ms: number; fails: boolean }, string> = new Run(
            o.tasks.map((t, i) => ({ id: `t${i}`, input: t })),
            {
              async execute(task, ctx) {
                if (run.status !== 'running' || ctx.signal.aborted) {
                  lateStarts.push(`${task.id}#${ctx.attempt} (run ${run.status})`);
                }
                await clock.sleep(task.input.ms, ctx.signal);
                if (task.input.fails && ctx.attempt === 1) throw new Error('transient');
                return 'ok';
              },
            },
            { clock, concurrency: o.concurrency, retry: { maxAttempts: 2, backoffMs: 5 } },
          );
          let seen = 0;
          let stopping = false;
          const startedAfterStop: string[] = [];
          run.on('stopping', () => {
            stopping = true;
          });
          run.on('transition', (e) => {
            if (e.to === 'running' && stopping) startedAfterStop.push(`${e.taskId}#${e.attempt}`);
            if (seen++ === o.cancelAtEvent) run.cancel({ drain: o.drain });
          });
          const { result } = await finish(run, clock);
          expect(startedAfterStop).toEqual([]);
          expect(lateStarts).toEqual([]);
          if (seen > o.cancelAtEvent) expect(result.status).toBe('cancelled');
        },
      ),
      { numRuns: 100 },
    );
  });

  // The shrunk counterexamples of the property above, one per transition kind, so a failure
  // names the path at once.
  it.each<['queued' | 'pending' | 'running', string]>([
    ['queued', 'the first queued event (while admitting)'],
    ['pending', 'a retry going into backoff'],
    ['running', 'an attempt being started'],
  ])(
    'cancel from a listener on %s (%s) resolves the run and starts nothing after it',
    async (to, _path) => {
      const clock = new VirtualClock();
      const calls: string[] = [];
      const run: Run<number, string> = new Run(
        [{ id: 'a', input: 0 }],
        {
          async execute(_task, ctx) {
            calls.push(`attempt ${ctx.attempt}, run ${run.status}`);
            if (ctx.attempt === 1 && to === 'pending') throw new Error('transient');
            return 'ok';
          },
        },
        { clock, retry: { backoffMs: 100 } },
      );
      let cancelled = false;
      run.on('transition', (e) => {
        if (e.to === to && !cancelled) {
          cancelled = true;
          run.cancel();
        }
      });
      const outcome = await settleOrStall(run.start(), clock);
      expect(outcome.done, `run hung with ${JSON.stringify(run.progress.byStatus)}`).toBe(true);
      if (!outcome.done) return;
      expect(outcome.value.status).toBe('cancelled');
      expect(outcome.value.tasks.map((t) => t.status)).toEqual(['cancelled']);
      expect(calls).toEqual(to === 'pending' ? ['attempt 1, run running'] : []);
    },
  );
});

// ------------------------------------------------------------------ 4. attempts <= maxAttempts

const attemptKinds = [
  'succeedAfter',
  'always503',
  'always429',
  'timeout',
  'overrun',
  'nonRetryable',
] as const;

describe('property: attempts never exceed maxAttempts (429s: 1 + maxRateLimitRetries)', () => {
  it('counts upstream calls per task for random failure patterns (no pause)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          maxAttempts: fc.integer({ min: 1, max: 4 }),
          maxRateLimitRetries: fc.integer({ min: 0, max: 3 }),
          adaptive: fc.boolean(),
          concurrency: fc.integer({ min: 1, max: 4 }),
          timeoutMs: fc.integer({ min: 50, max: 200 }),
          backoffMs: fc.integer({ min: 0, max: 200 }),
          rated: fc.boolean(),
          tasks: fc.array(
            fc.record({
              kind: fc.constantFrom(...attemptKinds),
              k: fc.integer({ min: 0, max: 4 }),
              own: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
            }),
            { minLength: 1, maxLength: 12 },
          ),
        }),
        async (o) => {
          const clock = new VirtualClock();
          type In = (typeof o.tasks)[number];
          const calls = new Map<string, number>();
          const specs: TaskSpec<In>[] = o.tasks.map((t, i) => ({
            id: `t${i}`,
            input: t,
            ...(t.own === undefined ? {} : { maxAttempts: t.own }),
          }));
          const run = new Run<In, string>(
            specs,
            {
              async execute(task, ctx) {
                calls.set(task.id, (calls.get(task.id) ?? 0) + 1);
                const { kind, k } = task.input;
                switch (kind) {
                  case 'succeedAfter':
                    if (ctx.attempt <= k) throw new Error('transient');
                    return 'ok';
                  case 'always503':
                    throw new HttpError(503, 'unavailable');
                  case 'always429':
                    throw new RateLimitedError('slow down', { retryAfterMs: 10 * k });
                  case 'timeout':
                    await clock.sleep(10 * o.timeoutMs, ctx.signal);
                    return 'never';
                  case 'overrun':
                    await clock.sleep(o.timeoutMs + 100);
                    return 'late';
                  default:
                    throw new NonRetryableError('no');
                }
              },
            },
            {
              clock,
              concurrency: o.concurrency,
              timeoutMs: o.timeoutMs,
              adaptive: o.adaptive,
              retry: {
                maxAttempts: o.maxAttempts,
                maxRateLimitRetries: o.maxRateLimitRetries,
                backoffMs: o.backoffMs,
              },
              ...(o.rated ? { rate: { perMinute: 600, burst: 2 } } : {}),
            },
          );
          const result = await run.start();
          for (const r of result.tasks) {
            const t = o.tasks[Number(r.id.slice(1))]!;
            // A 429 was refused before any work: it spends maxRateLimitRetries, not maxAttempts.
            const max =
              t.kind === 'always429' ? 1 + o.maxRateLimitRetries : (t.own ?? o.maxAttempts);
            const n = calls.get(r.id) ?? 0;
            expect(n, r.id).toBeLessThanOrEqual(max);
            expect(r.attempts, r.id).toBe(n);
            switch (t.kind) {
              case 'succeedAfter':
                expect(r.status, r.id).toBe(t.k < max ? 'succeeded' : 'error');
                expect(n, r.id).toBe(Math.min(t.k + 1, max));
                break;
              case 'always503':
              case 'always429':
                expect([r.status, n], r.id).toEqual(['error', max]);
                break;
              case 'timeout':
              case 'overrun':
                expect([r.status, n], r.id).toEqual(['timeout', max]);
                break;
              default:
                expect([r.status, n], r.id).toEqual(['error', 1]);
            }
          }
          expect(result.tasks.length).toBe(o.tasks.length);
          expect(result.statistics.attempts).toBe([...calls.values()].reduce((a, b) => a + b, 0));
        },
      ),
      { numRuns: 80 },
    );
  });
});

// ------------------------------------------------------------------ 5. classifyError

/** Names and codes that do not by themselves decide the verdict of an HTTP-shaped error. */
const neutralName = fc.constantFrom(
  undefined,
  'Error',
  'HttpError',
  'FetchError',
  'TypeError',
  'AxiosError',
);
const neutralCode = fc.constantFrom(undefined, 'HTTP_ERROR', 'ERR_BAD_RESPONSE', 'ECONNRESET');

function httpShaped(
  shape: 'error' | 'HttpError' | 'plain' | 'statusCode',
  status: number,
  name: string | undefined,
  code: string | undefined,
  extra: Record<string, unknown> = {},
): unknown {
  const fields: Record<string, unknown> = { ...extra };
  if (name !== undefined) fields.name = name;
  if (code !== undefined) fields.code = code;
  switch (shape) {
    case 'HttpError':
      return Object.assign(new HttpError(status, `status ${status}`), extra);
    case 'plain':
      return { message: `status ${status}`, status, ...fields };
    case 'statusCode':
      return { message: `status ${status}`, statusCode: status, ...fields };
    default:
      return Object.assign(new Error(`status ${status}`), { status }, fields);
  }
}

const shapeArb = fc.constantFrom('error', 'HttpError', 'plain', 'statusCode') as fc.Arbitrary<
  'error' | 'HttpError' | 'plain' | 'statusCode'
>;

/** Runs one task that always throws `make()`; returns how many attempts it got. */
async function attemptsFor(make: () => unknown, maxAttempts: number): Promise<number> {
  const clock = new VirtualClock();
  let calls = 0;
  const run = new Run(
    [{ input: 0 }],
    {
      async execute() {
        calls++;
        throw make();
      },
    },
    { clock, retry: { maxAttempts, backoffMs: 1 }, stop: { maxConsecutiveAuthErrors: 0 } },
  );
  const result = await run.start();
  expect(result.tasks[0]!.attempts).toBe(calls);
  return calls;
}

describe('property: classifyError', () => {
  it('anything flagged retryable: false is never retried', async () => {
    const anyError = fc.oneof(
      fc.record({
        name: fc.option(
          fc.constantFrom('Error', 'TimeoutError', 'RetryableError', 'TypeError', 'X'),
          { nil: undefined },
        ),
        code: fc.option(
          fc.constantFrom('TIMEOUT', 'RATE_LIMITED', 'RETRYABLE', 'ECONNRESET', 'E1'),
          { nil: undefined },
        ),
        status: fc.option(fc.integer({ min: 100, max: 599 }), { nil: undefined }),
        retryAfter: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
      }),
      fc.constant({ cause: { code: 'ECONNRESET' } }),
    );
    await fc.assert(
      fc.asyncProperty(
        anyError,
        fc.boolean(),
        fc.integer({ min: 2, max: 4 }),
        async (fields, asError, max) => {
          const make = () =>
            asError
              ? Object.assign(new Error('flagged'), fields, { retryable: false })
              : { ...fields, retryable: false };
          expect(classifyError(make()).retryable).toBe(false);
          expect(await attemptsFor(make, max)).toBe(1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('4xx other than 408 and 429 is never retried', async () => {
    const status4xx = fc.integer({ min: 400, max: 499 }).filter((s) => s !== 408 && s !== 429);
    await fc.assert(
      fc.asyncProperty(
        shapeArb,
        status4xx,
        neutralName,
        neutralCode,
        async (shape, status, name, code) => {
          const make = () => httpShaped(shape, status, name, code);
          const verdict = classifyError(make());
          expect(verdict.retryable).toBe(false);
          expect(verdict.status).toBe('error');
          expect(await attemptsFor(make, 3)).toBe(1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('408 and 429 are retried; 5xx is always retried unless flagged', async () => {
    const transient = fc.oneof(fc.integer({ min: 500, max: 599 }), fc.constantFrom(408, 429));
    await fc.assert(
      fc.asyncProperty(
        shapeArb,
        transient,
        neutralName,
        neutralCode,
        fc.option(fc.boolean(), { nil: undefined }),
        fc.integer({ min: 1, max: 4 }),
        async (shape, status, name, code, flag, max) => {
          const extra = flag === undefined ? {} : { retryable: flag };
          const make = () => httpShaped(shape, status, name, code, extra);
          const expected = flag ?? true;
          expect(classifyError(make()).retryable).toBe(expected);
          // A retried 429 is a refusal: 1 + maxRateLimitRetries (10) calls, whatever maxAttempts.
          const retried = status === 429 ? 11 : max;
          expect(await attemptsFor(make, max)).toBe(expected ? retried : 1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
