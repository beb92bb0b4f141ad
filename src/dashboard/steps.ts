/**
 * An action plan's step graph and its rollback, as the dashboard shows them
 * (`GET /api/runs/:id/steps`): the steps and their dependencies from the plan the journal
 * keeps (the run's snapshot), each step's state from the store (its latest result, or its last
 * journaled state while unfinished), and the rollback run `<id>:rollback` that the executor
 * journals as a child of the plan's run. Read through the Store port only.
 */

import type { TaskStatus } from '../core/model.js';
import type { Store } from '../store/port.js';

/** A step's state: a terminal status, its last journaled one, or `pending` when never seen. */
export type StepState = TaskStatus;

/** One step of the graph. */
export interface StepNode {
  readonly id: string;
  readonly tool: string;
  /** Ids of the steps that must succeed first. */
  readonly dependencies: readonly string[];
  /** Its column in the graph: 0 without dependencies, else one more than its deepest dependency. */
  readonly level: number;
  readonly state: StepState;
  /** Attempts started (0 when it never started or is unfinished). */
  readonly attempts: number;
  /** The error's code and message when it failed, timed out or errored. */
  readonly error: string | null;
}

/** One compensation of the rollback. */
export interface CompensationNode {
  readonly stepId: string;
  readonly tool: string | null;
  readonly state: StepState;
  readonly attempts: number;
  readonly error: string | null;
}

/** `GET /api/runs/:id/steps`. */
export interface StepsView {
  readonly steps: readonly StepNode[];
  /** The rollback run, or null when none ran (yet). */
  readonly rollback: {
    readonly runId: string;
    readonly status: string;
    /** In the order they ran (reverse completion order of the steps), then unfinished ones. */
    readonly compensations: readonly CompensationNode[];
  } | null;
}

interface PlanStep {
  readonly id: string;
  readonly tool: string;
  readonly dependencies?: readonly string[];
}

/** The steps of an action plan's snapshot; [] for anything else. */
function planSteps(planJson: string): PlanStep[] {
  const plan = JSON.parse(planJson) as { steps?: unknown };
  if (!Array.isArray(plan.steps)) return [];
  return plan.steps.filter(
    (s): s is PlanStep =>
      typeof s === 'object' && s !== null && typeof s.id === 'string' && typeof s.tool === 'string',
  );
}

/** Each step's column: the length of its longest chain of dependencies (a cycle counts once). */
function levels(steps: readonly PlanStep[]): Map<string, number> {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const out = new Map<string, number>();
  const visit = (id: string, seen: Set<string>): number => {
    const known = out.get(id);
    if (known !== undefined) return known;
    const s = byId.get(id);
    if (s === undefined || seen.has(id)) return -1;
    seen.add(id);
    let level = 0;
    for (const d of s.dependencies ?? []) level = Math.max(level, visit(d, seen) + 1);
    seen.delete(id);
    out.set(id, level);
    return level;
  };
  for (const s of steps) visit(s.id, new Set());
  return out;
}

/** Latest result (or last journaled state) of each case of a run. */
async function states(
  store: Store,
  runId: string,
): Promise<Map<string, { state: StepState; attempts: number; error: string | null }>> {
  const out = new Map<string, { state: StepState; attempts: number; error: string | null }>();
  for await (const r of store.results(runId, { latest: true })) {
    out.set(r.id, {
      state: r.status,
      attempts: r.attempts,
      error: r.error === undefined ? null : `${r.error.code}: ${r.error.message}`,
    });
  }
  // A case still unfinished in the journal is in that state now (a cancelled one a resume runs
  // again included); the map keeps its place in completion order.
  const loaded = await store.loadRun(runId);
  for (const u of loaded?.unfinished ?? []) {
    out.set(u.caseId, { state: u.status, attempts: u.attempts, error: null });
  }
  return out;
}

/** The step graph of an action run, or undefined when the run is unknown. */
export async function stepsView(store: Store, runId: string): Promise<StepsView | undefined> {
  const run = await store.getRun(runId);
  if (run === undefined) return undefined;
  const steps = planSteps(run.planJson);
  const level = levels(steps);
  const now = await states(store, runId);
  const nodes: StepNode[] = steps.map((s) => {
    const st = now.get(s.id);
    return {
      id: s.id,
      tool: s.tool,
      dependencies: [...(s.dependencies ?? [])],
      level: level.get(s.id) ?? 0,
      state: st?.state ?? 'pending',
      attempts: st?.attempts ?? 0,
      error: st?.error ?? null,
    };
  });
  const rollbackId = `${runId}:rollback`;
  const rb = await store.getRun(rollbackId);
  if (rb === undefined) return { steps: nodes, rollback: null };
  const tools = new Map(steps.map((s) => [s.id, s.tool]));
  const undo = await states(store, rollbackId);
  const compensations: CompensationNode[] = [...undo].map(([caseId, st]) => {
    const stepId = caseId.replace(/^undo:/, '');
    return { stepId, tool: tools.get(stepId) ?? null, ...st };
  });
  return {
    steps: nodes,
    rollback: { runId: rollbackId, status: rb.status, compensations },
  };
}
