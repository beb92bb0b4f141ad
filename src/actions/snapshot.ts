/** An action plan as the journal keeps it: JSON (functions such as predicates left out) and a hash. */

import { createHash } from 'node:crypto';
import { canonicalJson, REDACTED, redactLiterals, setIn } from '../plans/index.js';
import type { PlanSnapshot } from '../store/plan.js';
import type { ActionPlan } from './types.js';

/**
 * The plan's snapshot for `attachJournal`: kind `action`, named by `name` (or `id`), its
 * `secretPaths` and its literal secrets (`redactLiterals`) redacted, hashed over its canonical JSON so a resume can refuse a changed plan.
 */
export function actionSnapshot(plan: ActionPlan): PlanSnapshot {
  // Secrets are replaced before anything is serialised or hashed: a rotated key is the same plan.
  let content: unknown = JSON.parse(JSON.stringify(plan));
  for (const path of plan.secretPaths ?? []) content = setIn(content, path, REDACTED);
  // And the ones written literally: a credential-named key's string, a URL's user info.
  content = redactLiterals(content);
  const json = JSON.stringify(content);
  return {
    kind: 'action',
    name: plan.name ?? plan.id,
    hash: createHash('sha256').update(canonicalJson(content)).digest('hex'),
    json,
  };
}
