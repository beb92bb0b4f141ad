/**
 * `stride demo`: a stub plan of a few hundred tasks with injected faults, run through the real
 * engine with real time, so a newcomer sees concurrency, rate limiting, retries, timeouts and
 * the summary in a few seconds without any service.
 */

import {
  type Clock,
  RealClock,
  Run,
  type RunExecutionResult,
  type StubBehavior,
  StubExecutor,
  seededRandom,
} from '../core/index.js';
import { formatSummary, ProgressPrinter } from './render.js';

export interface DemoOptions {
  tasks: number;
  concurrency: number;
  seed: number;
  perMinute: number;
  progress: boolean;
  out: NodeJS.WritableStream;
  /** Ctrl-C: cancels the run, which still resolves with partial results. */
  signal?: AbortSignal;
  /** @default new RealClock(); tests pass a VirtualClock. */
  clock?: Clock;
}

/** Faults assigned by position, so every demo run shows each kind of outcome. */
function behaviorFor(i: number): StubBehavior | undefined {
  if (i % 50 === 7) return 'flaky'; // 503 once, then fine: a retry that pays off
  if (i === 11) return 'rate_limited'; // 429 + Retry-After 1 s on every attempt: cools the shared bucket
  if (i % 100 === 23) return 'hang'; // ignores nothing, but never answers: the timeout aborts it
  if (i % 120 === 31) return 'error'; // a persistent unknown error: retried, then error
  return undefined;
}

export async function runDemo(options: DemoOptions): Promise<RunExecutionResult> {
  const clock = options.clock ?? new RealClock();
  const stub = new StubExecutor<{ query: string }>({
    simulatedDelay: 40,
    failureRate: 0.03,
    seed: options.seed,
    clock,
  });
  for (let i = 0; i < options.tasks; i++) {
    const b = behaviorFor(i);
    if (b !== undefined) stub.setTaskBehavior(`case-${i}`, b);
  }
  const tasks = Array.from({ length: options.tasks }, (_, i) => ({
    id: `case-${i}`,
    input: { query: `demo question ${i}` },
  }));
  const run = new Run(tasks, stub, {
    clock,
    concurrency: options.concurrency,
    timeoutMs: 1_000,
    rate: { perMinute: options.perMinute, burst: 20 },
    retry: { maxAttempts: 3, backoffMs: 200, backoffMultiplier: 2, jitter: 'equal' },
    random: seededRandom(options.seed + 1),
    stop: { maxFailures: 0.5, minSettled: 50 },
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const printer = options.progress ? new ProgressPrinter(run, options.out) : undefined;
  printer?.start();
  const result = await run.start();
  printer?.stop();
  options.out.write(`${formatSummary(result)}\n`);
  return result;
}
