/**
 * A test plan as a store keeps it: redacted and hashed. Lives in runner/ because it joins the
 * plans layer (redaction, canonical JSON) and the store layer (the snapshot type).
 */

import { createHash } from 'node:crypto';
import { canonicalJson, type RunManifest, redact } from '../plans/index.js';
import type { PlanSnapshot } from '../store/index.js';

/**
 * A test plan's snapshot: `RunManifest.secrets` (the API key, credential headers, values from
 * `${...}`) are replaced by `[redacted]` before anything is serialised or hashed. The hash
 * leaves out where the plan file lies (`file`, `baseDir`), so moving a project does not make a
 * run look like a different plan; a rotated API key does not either.
 *
 * @example
 * ```ts
 * const journal = await attachJournal(run, store, { plan: snapshotPlan(manifest) });
 * ```
 */
export function snapshotPlan(manifest: RunManifest): PlanSnapshot {
  const redacted = redact(manifest);
  const { file: _file, baseDir: _baseDir, ...content } = redacted;
  return {
    kind: 'test',
    name: manifest.workflowId,
    hash: createHash('sha256').update(canonicalJson(content)).digest('hex'),
    json: JSON.stringify(redacted),
  };
}
