/**
 * What a store keeps of a plan: its name, a hash of its content and its JSON, always with the
 * secrets redacted. The store knows no plan format: `snapshotPlan` (runner/) builds one from a
 * test plan, which keeps store/ below plans/ in the layer order.
 */

import type { PlanKind } from './port.js';

/** A plan as the journal records it. Build one with `snapshotPlan`. */
export interface PlanSnapshot {
  readonly kind: PlanKind;
  /** The plan's name (a test plan's `workflow_id`). */
  readonly name: string;
  /** Hex sha256 of the plan's canonical JSON (secrets redacted, location left out). */
  readonly hash: string;
  /** The plan, secrets redacted, as JSON text. */
  readonly json: string;
}
