/**
 * Which stored runs a side of a comparison names: run ids, or `latest` / `latest~N` (the
 * newest completed runs of a plan), comma-separated to pool several runs on one side.
 */

import { InvalidOptionError, StrideError } from '../core/index.js';
import type { RunHistory } from '../runner/history.js';
import type { RunRecord } from '../store/port.js';

/** `latest` is `latest~0`; N counts back among the plan's completed runs, newest first. */
const LATEST = /^latest(?:~(\d+))?$/;

/** Splits a side's spec (`"a,b"`, or a list) into trimmed, non-empty references. */
export function refsOf(spec: string | readonly string[], label: string): string[] {
  const items = (typeof spec === 'string' ? spec.split(',') : spec.flatMap((s) => s.split(',')))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) {
    throw new InvalidOptionError(label, spec, 'a run id, latest or latest~N (comma list allowed)');
  }
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item)) {
      throw new InvalidOptionError(label, spec, `each run once (${JSON.stringify(item)} twice)`);
    }
    seen.add(item);
  }
  return items;
}

/** True if the reference names a run by position (`latest`, `latest~N`) rather than by id. */
export function isLatestRef(ref: string): boolean {
  return LATEST.test(ref) || ref.startsWith('latest~');
}

/**
 * The plan's completed runs, newest first (a run still going, interrupted, cancelled or stopped
 * is not a baseline).
 */
export async function completedRuns(history: RunHistory, plan: string): Promise<string[]> {
  const runs = await history.listRuns();
  return runs.filter((r) => r.plan === plan && r.status === 'completed').map((r) => r.id);
}

/**
 * Resolves one side's references to stored runs. `latest~N` needs `plan`. Throws
 * `INVALID_OPTION` for a malformed reference or a run named twice, `RUN_NOT_FOUND` for an
 * unknown id or a `latest~N` past the plan's completed runs; each message names the side and
 * the bad value.
 *
 * @example
 * ```ts
 * await resolveRuns(history, 'latest~1', { plan: 'support-bot', label: 'base' });
 * ```
 */
export async function resolveRuns(
  history: RunHistory,
  spec: string | readonly string[],
  options: { readonly plan?: string | undefined; readonly label: string },
): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let completed: string[] | undefined;
  for (const ref of refsOf(spec, options.label)) {
    if (!isLatestRef(ref)) {
      try {
        out.push(await history.getRun(ref));
      } catch (err) {
        if (err instanceof StrideError && err.code === 'RUN_NOT_FOUND') {
          throw new StrideError('RUN_NOT_FOUND', `${options.label}: ${err.message}`);
        }
        throw err;
      }
      continue;
    }
    const m = LATEST.exec(ref);
    if (m === null) {
      throw new InvalidOptionError(options.label, ref, 'latest or latest~N with N a whole number');
    }
    if (options.plan === undefined) {
      throw new InvalidOptionError(
        options.label,
        ref,
        'a run id, or the plan to take the latest run of (--plan NAME)',
      );
    }
    completed ??= await completedRuns(history, options.plan);
    const back = Number(m[1] ?? 0);
    const id = completed[back];
    if (id === undefined) {
      throw new StrideError(
        'RUN_NOT_FOUND',
        `${options.label} ${ref}: plan "${options.plan}" has ${completed.length === 0 ? 'no completed run' : `only ${completed.length} completed run(s) (newest: ${completed.slice(0, 3).join(', ')})`}`,
      );
    }
    out.push(await history.getRun(id));
  }
  const ids = out.map((r) => r.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) {
    throw new InvalidOptionError(options.label, spec, `each run once (${twice} named twice)`);
  }
  return out;
}
