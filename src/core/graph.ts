/**
 * The dependency graph of a running plan (`TaskSpec.dependsOn`): which tasks wait on which,
 * and how every task ended (a dependency may end before its dependent is read). The graph was
 * checked whole before the run started (`checkDependencies`, core/dag.ts).
 */

import { checkDependencies } from './dag.js';
import { isTerminal, type TerminalStatus } from './model.js';
import type { TaskSource } from './source.js';
import type { TaskRecord } from './task.js';

/** What `park` decided for a task with dependencies. */
export type ParkResult =
  | { readonly kind: 'ready' }
  | { readonly kind: 'parked' }
  | { readonly kind: 'failed'; readonly dependency: string };

/** Tasks waiting on others (`parked`, still `pending`) and who waits on whom. */
export class DependencyGraph<I, O> {
  private readonly parked = new Set<TaskRecord<I, O>>();
  private readonly dependents = new Map<string, TaskRecord<I, O>[]>();
  private readonly ended = new Map<string, TerminalStatus>();

  /**
   * The graph of `source` if it has dependencies, checked before anything runs (throws
   * `DependencyError`). Only an array can have one: a dependency may finish before its
   * dependents would have been pulled, so such a plan is admitted whole.
   */
  static of<I, O>(source: TaskSource<I>): DependencyGraph<I, O> | undefined {
    if (!Array.isArray(source)) return undefined;
    if (
      !source.some(
        (t: { dependsOn?: readonly string[] } | undefined) => (t?.dependsOn?.length ?? 0) > 0,
      )
    )
      return undefined;
    checkDependencies(source);
    return new DependencyGraph();
  }

  /** Parks `rec` until every dependency in `deps` succeeded, unless they all have already. */
  park(rec: TaskRecord<I, O>, deps: readonly string[]): ParkResult {
    let waiting = 0;
    for (const d of deps) {
      const ended = this.ended.get(d);
      if (ended === 'succeeded') continue;
      if (ended !== undefined) return { kind: 'failed', dependency: d };
      waiting++;
    }
    if (waiting === 0) return { kind: 'ready' };
    rec.waitingOn = waiting;
    this.parked.add(rec);
    for (const d of deps) {
      if (this.ended.has(d)) continue;
      const list = this.dependents.get(d);
      if (list === undefined) this.dependents.set(d, [rec]);
      else list.push(rec);
    }
    return { kind: 'parked' };
  }

  /**
   * `rec` ended with `status`: each dependent whose dependencies all succeeded is handed to
   * `ready`, each one a failed dependency dooms to `failed`.
   */
  settle(
    rec: TaskRecord<I, O>,
    status: TerminalStatus,
    ready: (d: TaskRecord<I, O>) => void,
    failed: (d: TaskRecord<I, O>, dependency: string) => void,
  ): void {
    this.ended.set(rec.id, status);
    const waiting = this.dependents.get(rec.id);
    if (waiting === undefined) return;
    this.dependents.delete(rec.id);
    for (const d of waiting) {
      if (isTerminal(d.status)) continue;
      if (status !== 'succeeded') {
        this.parked.delete(d);
        failed(d, rec.id);
      } else if (--d.waitingOn === 0) {
        this.parked.delete(d);
        ready(d);
      }
    }
  }

  /** Takes every parked task out (a stopping run cancels them). */
  takeParked(): TaskRecord<I, O>[] {
    const parked = [...this.parked];
    this.parked.clear();
    return parked;
  }
}
