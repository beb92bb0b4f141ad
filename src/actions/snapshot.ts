/** An action plan as the journal keeps it: JSON (functions such as predicates left out) and a hash. */

import { createHash } from 'node:crypto';
import { canonicalJson } from '../plans/index.js';
import type { PlanSnapshot } from '../store/plan.js';
import type { ActionPlan } from './types.js';

/**
 * The plan's snapshot for `attachJournal`: kind `action`, named by `name` (or `id`), hashed over
 * its canonical JSON so a resume can refuse a changed plan.
 */
export function actionSnapshot(plan: ActionPlan): PlanSnapshot {
  const json = JSON.stringify(plan);
  const content = JSON.parse(json) as unknown;
  return {
    kind: 'action',
    name: plan.name ?? plan.id,
    hash: createHash('sha256').update(canonicalJson(content)).digest('hex'),
    json,
  };
}
