/**
 * Task dependencies (`TaskSpec.dependsOn`): the graph is checked before anything runs.
 * Duplicate ids, unknown dependencies and cycles are rejected with a message that names them;
 * a cycle is shown as its path (`a -> b -> c -> a`).
 */

import { StrideError } from './errors.js';
import type { TaskSpec } from './model.js';

/** What is wrong with a task graph; `problems` lists each, `message` joins them. */
export class DependencyError extends StrideError {
  override readonly name = 'DependencyError';
  constructor(readonly problems: readonly string[]) {
    super('INVALID_OPTION', `invalid task graph: ${problems.join('; ')}`, { retryable: false });
  }
}

/**
 * Checks a finite task list with dependencies. Throws `DependencyError` (code `INVALID_OPTION`)
 * listing duplicate ids, dependencies on ids that are not in the list, a task that depends on
 * itself, and every cycle found (each as its path).
 *
 * @example
 * ```ts
 * checkDependencies([{ id: 'a', input: 1, dependsOn: ['b'] }, { id: 'b', input: 2, dependsOn: ['a'] }]);
 * // DependencyError: invalid task graph: dependency cycle: a -> b -> a
 * ```
 */
export function checkDependencies(tasks: readonly TaskSpec<unknown>[]): void {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const t of tasks) {
    if (typeof t?.id !== 'string') {
      if (t?.dependsOn !== undefined && t.dependsOn.length > 0) {
        problems.push('a task with dependencies needs an id');
      }
      continue;
    }
    if (ids.has(t.id)) problems.push(`duplicate id "${t.id}"`);
    ids.add(t.id);
  }
  const edges = new Map<string, readonly string[]>();
  for (const t of tasks) {
    if (typeof t?.id !== 'string' || t.dependsOn === undefined) continue;
    if (!Array.isArray(t.dependsOn)) {
      problems.push(`task "${t.id}": dependsOn must be a list of task ids`);
      continue;
    }
    for (const d of t.dependsOn) {
      if (d === t.id) problems.push(`task "${t.id}" depends on itself`);
      else if (!ids.has(d)) problems.push(`task "${t.id}" depends on unknown task "${String(d)}"`);
    }
    edges.set(t.id, t.dependsOn);
  }
  for (const cycle of findCycles(edges)) problems.push(`dependency cycle: ${cycle.join(' -> ')}`);
  if (problems.length > 0) throw new DependencyError(problems);
}

/** Every elementary cycle found by a depth-first search, each once, as a closed path. */
function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const cycles: string[][] = [];
  // Iterative DFS: a plan of 100,000 chained steps must not overflow the stack.
  for (const root of edges.keys()) {
    if (state.has(root)) continue;
    const stack: { id: string; next: number }[] = [{ id: root, next: 0 }];
    state.set(root, 'open');
    path.push(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = edges.get(top.id) ?? [];
      if (top.next < deps.length) {
        const d = deps[top.next++]!;
        // Self-loops are reported above; a task without dependencies closes no cycle.
        if (d === top.id || !edges.has(d)) continue;
        const s = state.get(d);
        if (s === 'open') {
          cycles.push([...path.slice(path.indexOf(d)), d]);
        } else if (s === undefined) {
          state.set(d, 'open');
          path.push(d);
          stack.push({ id: d, next: 0 });
        }
      } else {
        state.set(top.id, 'done');
        path.pop();
        stack.pop();
      }
    }
  }
  return cycles;
}
