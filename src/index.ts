/**
 * Stride: runs plans reliably, at the pace the target allows.
 *
 * This file is the curated public API: what users need, nothing internal.
 *
 * @example
 * ```ts
 * import { Run, StubExecutor } from 'stride';
 *
 * const stub = new StubExecutor({ simulatedDelay: 20, failureRate: 0.05, seed: 1 });
 * const tasks = Array.from({ length: 100 }, (_, i) => ({ id: `case-${i}`, input: { query: `q${i}` } }));
 * const result = await new Run(tasks, stub, { concurrency: 10, rate: { perMinute: 600, burst: 10 } }).start();
 * console.log(result.statistics);
 * ```
 */

export * from './core/index.js';
