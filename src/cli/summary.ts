/** The human summaries the CLI prints: a finished run, a run's record, the runs list. */

import type { RunStatistics } from '../core/index.js';
import type { ReportFormat, ReportSummary } from '../report/index.js';
import { costText, timeText } from '../report/summary.js';
import type { RunRecord, RunSummary } from '../store/port.js';

function secs(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '-';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return m < 120
    ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`
    : `${(m / 60).toFixed(1)} h`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/**
 * What the adaptive pace did in the last session, when it did anything: the concurrency (and
 * rate) it went to and why, and the requests the target refused. Undefined when it kept the
 * plan's pace and nothing was refused.
 */
export function paceLines(s: RunStatistics | undefined): string[] {
  if (s === undefined) return [];
  const p = s.pace;
  const refused = s.refused ?? 0;
  if ((p === undefined || p.changes === 0) && refused === 0) return [];
  const parts: string[] = [];
  if (p !== undefined && p.changes > 0) {
    parts.push(
      `concurrency ${p.ceiling} → ${p.concurrency} at the end (lowest ${p.lowestConcurrency})`,
    );
    if (p.lowestRatePerMinute !== undefined)
      parts.push(
        `rate ${p.ratePerMinute === undefined ? 'back to unlimited' : `${Math.round(p.ratePerMinute)}/min`} at the end (lowest ${Math.round(p.lowestRatePerMinute)}/min)`,
      );
  }
  if (refused > 0) parts.push(`${refused} request(s) refused (429), not counted in max_attempts`);
  const lines = [`  pace       ${parts.join(' · ')}`];
  if (p?.firstDecrease !== undefined) lines.push(`             why: ${p.firstDecrease}`);
  return lines;
}

/** Epoch ms as `2026-11-24 21:30:05` (local time). */
function when(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The summary printed after `run`, `resume`, `rerun` and `demo`. */
export function formatRunSummary(
  summary: ReportSummary,
  record: RunRecord,
  paths: Partial<Record<ReportFormat, string>>,
  options: { quiet: boolean; failUnder: number | undefined },
): string {
  const c = summary.counts;
  const verdict =
    `${summary.total} cases: ${c.success} passed, ${c.failed} failed, ${c.error} error, ` +
    `${c.timeout} timeout${summary.cancelled > 0 ? `, ${summary.cancelled} cancelled` : ''} (pass rate ${pct(summary.passRate)}` +
    `${options.failUnder === undefined ? '' : `, --fail-under ${pct(options.failUnder)}`})`;
  if (options.quiet) return `${record.id} ${record.status}: ${verdict}`;
  const l = summary.latency;
  const lines = [
    '',
    `Run ${record.id} (${record.plan}): ${record.status}${record.stoppedBy === undefined ? '' : `, stopped by ${record.stoppedBy.rule}: ${record.stoppedBy.message}`}`,
    `  ${verdict}`,
    `  attempts   ${record.counts.attempts} (${summary.retried} case(s) retried)`,
    l.count === 0
      ? '  latency    - (no case ran to a verdict)'
      : `  latency    p50 ${secs(l.p50)} · p90 ${secs(l.p90)} · p99 ${secs(l.p99)} · max ${secs(l.max)} (over ${l.count} case(s) that ran${summary.total > l.count ? `; ${summary.total - l.count} cancelled or not run left out` : ''})`,
    `  usage      ${summary.tokens} tokens · cost ${costText(summary, (c) => c.toFixed(4))}`,
    `  time       ${timeText(summary, secs)}`,
    ...scoreLines(summary),
    ...paceLines(record.statistics),
  ];
  if (summary.errors.length > 0) {
    lines.push('  not passed, by code:');
    for (const e of summary.errors.slice(0, 8)) {
      lines.push(
        `    ${e.code.padEnd(16)} ${String(e.count).padStart(6)}  ${e.example ?? ''}`.trimEnd(),
      );
    }
  }
  const files = Object.entries(paths);
  if (files.length > 0) {
    lines.push('  reports:');
    for (const [format, path] of files) lines.push(`    ${format.padEnd(6)} ${path}`);
    if (paths.html !== undefined)
      lines.push(`  open the HTML report in a browser: file://${absolute(paths.html)}`);
  }
  return lines.join('\n');
}

/** Mean score overall and per dataset, when any case was scored. */
function scoreLines(summary: ReportSummary): string[] {
  if (summary.meanScore === null) return [];
  const named = summary.datasets.filter((d) => d.meanScore !== null && d.name !== '');
  const per =
    named.length > 1 || (named.length === 1 && summary.datasets.length > 1)
      ? ` (${named.map((d) => `${d.name} ${d.meanScore!.toFixed(3)}`).join(' · ')})`
      : '';
  return [`  score      mean ${summary.meanScore.toFixed(3)} over ${summary.scored} case(s)${per}`];
}

function absolute(path: string): string {
  return path.startsWith('/') ? path : `${process.cwd()}/${path}`;
}

/** The suffix of an action plan's rollback run id (`<plan run id>:rollback`). */
const ROLLBACK_SUFFIX = ':rollback';

/** A run as `stride runs` lists it: the stored row, the outcome in words, its rollback. */
export interface RunRow extends RunSummary {
  /**
   * What a user cares about: for an action plan `succeeded`, `failed`, `failed, rolled back`,
   * `failed, rollback failed`, `failed, rollback interrupted`; otherwise the stored status.
   */
  readonly outcome: string;
  /** An action plan's rollback run, folded into its plan's row. */
  readonly rollback?: RunSummary;
}

/**
 * An action plan's outcome: the engine's `completed` only says every step was decided, not that
 * the plan worked, and its saga rollback is a run of its own (`<id>:rollback`). A step that did
 * not succeed makes the plan `failed`; the rollback's own result follows.
 */
function actionOutcome(run: RunSummary, rollback: RunSummary | undefined): string {
  const c = run.counts;
  const base =
    run.status !== 'completed' ? run.status : c.succeeded === c.total ? 'succeeded' : 'failed';
  if (rollback === undefined) return base;
  const r = rollback.counts;
  if (rollback.status === 'running' || rollback.status === 'interrupted')
    return `${base}, rollback interrupted`;
  return `${base}, ${rollback.status === 'completed' && r.succeeded === r.total ? 'rolled back' : 'rollback failed'}`;
}

/**
 * Folds each action plan's `<id>:rollback` run into its plan's row and gives every row its
 * outcome. `runOf` finds a plan or a rollback the list does not hold (cut by `--limit`).
 *
 * @example
 * ```ts
 * const rows = await runRows(await store.listRuns({ limit: 20 }), async (id) => store.getRun(id));
 * rows[0]?.outcome; // 'failed, rolled back'
 * ```
 */
export async function runRows(
  runs: readonly RunSummary[],
  runOf: (id: string) => Promise<RunSummary | undefined>,
): Promise<RunRow[]> {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const rows: RunRow[] = [];
  for (const run of runs) {
    if (run.kind !== 'action') {
      rows.push({ ...run, outcome: run.status });
      continue;
    }
    let plan: RunSummary | undefined = run;
    let rollback: RunSummary | undefined;
    if (run.id.endsWith(ROLLBACK_SUFFIX)) {
      // Shown on its plan's row; the newest row when `--limit` left the plan out.
      const parent = run.id.slice(0, -ROLLBACK_SUFFIX.length);
      if (byId.has(parent)) continue;
      rollback = run;
      plan = await runOf(parent);
      if (plan === undefined) {
        rows.push({ ...run, outcome: run.status });
        continue;
      }
    } else {
      const id = `${run.id}${ROLLBACK_SUFFIX}`;
      rollback = byId.get(id) ?? (await runOf(id));
    }
    rows.push({
      ...plan,
      outcome: actionOutcome(plan, rollback),
      ...(rollback === undefined ? {} : { rollback }),
    });
  }
  return rows;
}

/** `stride runs`: one line per run, newest first (an action plan's rollback on its row). */
export function formatRuns(runs: readonly RunRow[]): string {
  if (runs.length === 0) return 'no runs yet';
  const header = [
    'RUN',
    'PLAN',
    'STATUS',
    'STARTED',
    'CASES',
    'PASSED',
    'FAILED',
    'ERROR',
    'CANCELLED',
    'PARENT',
  ];
  const rows = runs.map((r) => [
    r.id,
    r.plan,
    r.outcome + (r.resumes > 0 ? ` (${r.resumes} resume${r.resumes > 1 ? 's' : ''})` : ''),
    when(r.startedAt),
    String(r.counts.total),
    String(r.counts.succeeded),
    String(r.counts.failed),
    String(r.counts.error + r.counts.timeout),
    String(r.counts.cancelled),
    r.parentId ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A stored run's active and wall time, as the summary says them (`timeText`). */
function runTime(run: RunRecord): string {
  const sessions = run.resumes + 1;
  if (run.finishedAt === undefined) {
    return run.activeMs === undefined
      ? `running (${sessions} session${sessions > 1 ? 's' : ''})`
      : `running, active ${secs(run.activeMs / 1000)} so far`;
  }
  return timeText(
    {
      durationSeconds: (run.finishedAt - run.startedAt) / 1000,
      activeSeconds: run.activeMs === undefined ? undefined : run.activeMs / 1000,
      sessions,
    },
    secs,
  );
}

/** `stride show`: one run's record. */
export function formatRun(run: RunRecord, outcome: string = run.status): string {
  const c = run.counts;
  const s = run.statistics;
  const lines = [
    `run        ${run.id}${run.parentId === undefined ? '' : ` (re-run of ${run.parentId})`}`,
    `plan       ${run.plan} (${run.kind}, hash ${run.planHash.slice(0, 12)})`,
    `status     ${outcome === run.status ? run.status : `${outcome} (run ${run.status})`}${run.stoppedBy === undefined ? '' : `, stopped by ${run.stoppedBy.rule}: ${run.stoppedBy.message}`}`,
    `started    ${when(run.startedAt)}`,
    `finished   ${when(run.finishedAt)}`,
    `time       ${runTime(run)}`,
    `resumes    ${run.resumes}`,
    `cases      ${c.total}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.timeout} timeout, ${c.error} error, ${c.cancelled} cancelled`,
    `attempts   ${c.attempts}`,
    `usage      ${c.tokens} tokens · cost ${costText({ cost: c.cost, costUnknown: c.costUnknown, total: c.total }, (x) => x.toFixed(4))}`,
  ];
  if (s !== undefined) {
    lines.push(
      `latency    p50 ${secs(s.latencyMs.p50 / 1000)} · p90 ${secs(s.latencyMs.p90 / 1000)} · p99 ${secs(s.latencyMs.p99 / 1000)} (last session)`,
    );
    lines.push(...paceLines(s).map((l) => l.slice(2)));
  }
  return lines.join('\n');
}
