/** An action plan as the journal keeps it: JSON (functions such as predicates left out) and a hash. */

import { createHash } from 'node:crypto';
import { canonicalJson } from '../plans/index.js';
import type { PlanSnapshot } from '../store/plan.js';
import type { ActionPlan } from './types.js';

/**
 * The plan's snapshot for `attachJournal`: kind `action`, named by `name` (or `id`), its
 * `secretPaths` redacted, hashed over its canonical JSON so a resume can refuse a changed plan.
 */
export function actionSnapshot(plan: ActionPlan): PlanSnapshot {
  // Secrets are replaced before anything is serialised or hashed: a rotated key is the same plan.
  const content = JSON.parse(JSON.stringify(plan)) as Record<string, unknown>;
  for (const path of plan.secretPaths ?? []) {
    let cur: unknown = content;
    for (const key of path.slice(0, -1))
      cur = (cur as Record<string | number, unknown> | undefined)?.[key];
    const last = path[path.length - 1];
    if (cur !== null && typeof cur === 'object' && last !== undefined && last in cur) {
      (cur as Record<string | number, unknown>)[last] = '[redacted]';
    }
  }
  const json = JSON.stringify(content);
  return {
    kind: 'action',
    name: plan.name ?? plan.id,
    hash: createHash('sha256').update(canonicalJson(content)).digest('hex'),
    json,
  };
}
