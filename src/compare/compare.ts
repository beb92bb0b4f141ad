/**
 * `compareRuns`: two runs (or two groups of runs) of the same cases, case by case. Which cases
 * regressed, which were fixed, which are flaky, is the difference real (McNemar's exact test),
 * and how pass rate, latency, tokens and cost moved. The CLI's `stride compare` and
 * `stride run --baseline` print and write what this returns.
 */

import { StrideError } from '../core/index.js';
import type { TestResult } from '../report/convert.js';
import { diffText, lineDiff, similarity } from '../report/diff.js';
import { clip } from '../report/text.js';
import type { RunHistory } from '../runner/history.js';
import type { RunRecord } from '../store/port.js';
import { COMPARE_DETAILS } from './defaults.js';
import {
  CaseTable,
  comparable,
  fetchRefs,
  readSide,
  refKey,
  type SampleRef,
  type SideState,
  type SideTotals,
  splitKey,
} from './read.js';
import { readerFor } from './read-rows.js';
import { isLatestRef, refsOf, resolveRuns } from './refs.js';
import { caseVerdict, mcnemar, wilson } from './stats.js';
import type {
  CaseChange,
  CaseSide,
  CaseVerdict,
  CompareSummary,
  Comparison,
  DatasetComparison,
  Rate,
  RunInfo,
  SideSummary,
} from './types.js';

/** Options of `compareRuns`. */
export interface CompareOptions {
  /** The plan whose runs `latest` / `latest~N` name. @default the plan of a run named by id */
  readonly plan?: string;
  /**
   * Cases of each list given with their details (inputs, outputs, diff); the rest carry their
   * id, dataset and verdicts only. @default 100
   */
  readonly details?: number;
  /** The level at which the paired test calls a regression significant. @default 0.05 */
  readonly alpha?: number;
  /**
   * Read a SqliteStore's file directly (one query per run, SQLite picking the fields out of each
   * row's JSON) rather than through `Store.results`. Same result, about a third of the CPU.
   * @default true
   */
  readonly direct?: boolean;
}

export { COMPARE_DETAILS };

/** Characters of one output kept in a listed case; the rest is cut with a note. */
const MAX_VALUE = 20_000;
/** Lines of one diff kept. */
const MAX_DIFF_LINES = 400;

type ListName = Exclude<keyof Comparison, 'summary'>;

/** Which sample each side shows, per list: the one that makes the list's point. */
const SHOWN: Readonly<Record<ListName, readonly ['pass' | 'fail', 'pass' | 'fail']>> = {
  regressions: ['pass', 'fail'],
  fixes: ['fail', 'pass'],
  still_failing: ['fail', 'fail'],
  changed: ['pass', 'pass'],
  flaky: ['fail', 'fail'],
  added: ['fail', 'fail'],
  removed: ['fail', 'fail'],
  unjudged: ['fail', 'fail'],
};

interface Entry {
  readonly key: string;
  readonly base: SideState | undefined;
  readonly head: SideState | undefined;
  readonly verdict: CaseVerdict | null;
}

function shownRef(c: SideState, want: 'pass' | 'fail'): SampleRef {
  return (want === 'pass' ? c.passRef() : c.failRef())!;
}

function byCase(a: Entry, b: Entry): number {
  // The key is dataset, NUL, id: its order is (dataset, id).
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** Sorts every case into one list (or none: unchanged passes). */
function classify(cases: CaseTable): Record<ListName, Entry[]> & { unchanged: number } {
  const lists: Record<ListName, Entry[]> = {
    regressions: [],
    fixes: [],
    added: [],
    removed: [],
    still_failing: [],
    changed: [],
    flaky: [],
    unjudged: [],
  };
  let unchanged = 0;
  for (const [key, at] of cases.index) {
    const b = cases.view(at, 'base');
    const h = cases.view(at, 'head');
    if (h === undefined) {
      lists.removed.push({ key, base: b, head: undefined, verdict: null });
      continue;
    }
    if (b === undefined) {
      lists.added.push({ key, base: undefined, head: h, verdict: null });
      continue;
    }
    if (b.judged === 0 || h.judged === 0) {
      lists.unjudged.push({ key, base: b, head: h, verdict: null });
      continue;
    }
    const verdict = caseVerdict(b.passed, b.judged, h.passed, h.judged);
    const entry = { key, base: b, head: h, verdict };
    if (verdict === 'regressed') lists.regressions.push(entry);
    else if (verdict === 'fixed') lists.fixes.push(entry);
    else if (verdict === 'flaky') lists.flaky.push(entry);
    else if (b.passed === 0) lists.still_failing.push(entry);
    else if (b.h1 !== h.h1 || b.h2 !== h.h2) lists.changed.push(entry);
    else unchanged++;
  }
  for (const list of Object.values(lists)) list.sort(byCase);
  return { ...lists, unchanged };
}

/** The text an output is shown and diffed as: the answer text, else indented JSON. */
function shownText(outputs: unknown): string {
  const text = comparable(outputs);
  return typeof outputs === 'object' && outputs !== null && !('text' in outputs)
    ? diffText(outputs)
    : text;
}

/** What a listed case shows of its output: the answer text if there is one, else the output. */
function shownOutput(r: TestResult): unknown {
  return typeof r.outputs === 'object' && r.outputs !== null && !('text' in r.outputs)
    ? r.outputs
    : clip(comparable(r.outputs), MAX_VALUE);
}

function sideOf(c: SideState, ref: SampleRef, row: TestResult | undefined): CaseSide {
  const base: CaseSide = {
    status: ref.status,
    samples: c.judged,
    passed: c.passed,
    pass_rate: c.judged === 0 ? null : c.passed / c.judged,
    score: c.meanScore(),
  };
  if (row === undefined) return base;
  return {
    ...base,
    output: shownOutput(row),
    error: row.errorMessage ?? null,
    error_code: row.metadata.errorCode ?? null,
    failed_assertions: row.assertions.filter((a) => !a.passed),
  };
}

function diffOf(a: TestResult, b: TestResult): string {
  const lines = lineDiff(
    clip(shownText(a.outputs), MAX_VALUE),
    clip(shownText(b.outputs), MAX_VALUE),
  );
  const shown = lines.slice(0, MAX_DIFF_LINES).map((l) => `${l.op} ${l.text}`);
  if (lines.length > MAX_DIFF_LINES) shown.push(`… ${lines.length - MAX_DIFF_LINES} more lines`);
  return shown.join('\n');
}

function entryOf(
  list: ListName,
  e: Entry,
  rows: { base: Map<string, TestResult>; head: Map<string, TestResult> } | undefined,
): CaseChange {
  const [wantBase, wantHead] = SHOWN[list];
  const bRef = e.base === undefined ? undefined : shownRef(e.base, wantBase);
  const hRef = e.head === undefined ? undefined : shownRef(e.head, wantHead);
  const bRow = bRef === undefined ? undefined : rows?.base.get(refKey(bRef));
  const hRow = hRef === undefined ? undefined : rows?.head.get(refKey(hRef));
  const { id, dataset } = splitKey(e.key);
  const out: CaseChange = {
    id,
    dataset,
    verdict: e.verdict,
    base: e.base === undefined ? null : sideOf(e.base, bRef!, bRow),
    head: e.head === undefined ? null : sideOf(e.head, hRef!, hRow),
    delta_score: minus(e.head?.meanScore() ?? null, e.base?.meanScore() ?? null),
    detailed: rows !== undefined,
  };
  if (rows === undefined) return out;
  const broke = list === 'fixes' ? bRow : (hRow ?? bRow);
  const both =
    bRow !== undefined && hRow !== undefined
      ? {
          diff: diffOf(bRow, hRow),
          similarity: similarity(comparable(bRow.outputs), comparable(hRow.outputs)),
        }
      : {};
  return {
    ...out,
    inputs: (hRow ?? bRow)?.inputs ?? null,
    assertion: broke?.assertions.find((a) => !a.passed) ?? null,
    ...both,
  };
}

function rate(total: number, passed: number): Rate {
  return {
    total,
    passed,
    pass_rate: total === 0 ? null : passed / total,
    ci95: wilson(passed, total) ?? null,
  };
}

function runInfo(r: RunRecord): RunInfo {
  return {
    id: r.id,
    plan: r.plan,
    status: r.status,
    started_at: new Date(r.startedAt).toISOString(),
    finished_at: r.finishedAt === undefined ? null : new Date(r.finishedAt).toISOString(),
  };
}

function sideSummary(s: SideTotals): SideSummary {
  const lat = s.latency.summary();
  const runs = Math.max(1, s.runs.length);
  return {
    runs: s.runs.map(runInfo),
    ...rate(s.total, s.passed),
    cancelled: s.cancelled,
    latency: {
      p50: lat.count === 0 ? null : lat.p50 / 1e6,
      p90: lat.count === 0 ? null : lat.p90 / 1e6,
    },
    tokens: s.tokens / runs,
    cost: s.cost / runs,
    cost_unknown: s.costUnknown,
    scored: s.scored,
    mean_score: s.scored === 0 ? null : s.scoreSum / s.scored,
  };
}

function minus(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a - b;
}

function datasets(base: SideTotals, head: SideTotals): DatasetComparison[] {
  const names = [...new Set([...base.datasets.keys(), ...head.datasets.keys()])].sort();
  return names.map((name) => {
    const none = { total: 0, passed: 0, scored: 0, scoreSum: 0 };
    const b = base.datasets.get(name) ?? none;
    const h = head.datasets.get(name) ?? none;
    const br = rate(b.total, b.passed);
    const hr = rate(h.total, h.passed);
    const bs = b.scored === 0 ? null : b.scoreSum / b.scored;
    const hs = h.scored === 0 ? null : h.scoreSum / h.scored;
    return {
      name,
      base: br,
      head: hr,
      delta_pass_rate: minus(hr.pass_rate, br.pass_rate),
      base_mean_score: bs,
      head_mean_score: hs,
      delta_mean_score: minus(hs, bs),
    };
  });
}

function warningsOf(base: SideTotals, head: SideTotals): string[] {
  const out: string[] = [];
  for (const [label, side] of [
    ['base', base],
    ['head', head],
  ] as const) {
    for (const r of side.runs) {
      if (r.status !== 'completed') {
        out.push(
          `${label} run ${r.id} is ${r.status}, not completed: compared the results stored so far`,
        );
      }
    }
    if (side.cancelled > 0) {
      out.push(
        `${label}: ${side.cancelled} cancelled result(s) have no verdict: counted in the pass rate as the run's report counts them, left out of the case verdicts`,
      );
    }
  }
  return out;
}

function validate(options: CompareOptions): { details: number; alpha: number } {
  const details = options.details ?? COMPARE_DETAILS;
  const alpha = options.alpha ?? 0.05;
  if (!Number.isInteger(details) || details < 0) {
    throw new StrideError(
      'INVALID_OPTION',
      `invalid option details: ${details} (expected a whole number >= 0)`,
    );
  }
  if (!(alpha > 0 && alpha < 1)) {
    throw new StrideError(
      'INVALID_OPTION',
      `invalid option alpha: ${alpha} (expected a p-value threshold between 0 and 1, e.g. 0.05)`,
    );
  }
  return { details, alpha };
}

/** The plan `latest` refers to: the given one, else the plan of the first run named by id. */
async function planFor(
  history: RunHistory,
  base: string | readonly string[],
  head: string | readonly string[],
  plan: string | undefined,
): Promise<string | undefined> {
  if (plan !== undefined) return plan;
  const refs = [...refsOf(base, 'base'), ...refsOf(head, 'head')];
  const byId = refs.find((r) => !isLatestRef(r));
  if (byId === undefined || !refs.some(isLatestRef)) return undefined;
  return (await history.getRun(byId)).plan;
}

/**
 * Compares two runs of the same cases, read from the journal. Cases are matched by dataset and
 * case id (repeats of a case pooled); a side may be several runs, pooled the same way. Each run
 * is streamed: memory holds a small record per case, and the full results of the cases listed
 * in detail (the first `details` of each list) are read back afterwards.
 *
 * Throws `RUN_NOT_FOUND` for an unknown run or a `latest~N` past the plan's completed runs,
 * `INVALID_OPTION` for a malformed reference or option, and `NOTHING_TO_COMPARE` when the two
 * sides share no case.
 *
 * @example
 * ```ts
 * import { compareRuns, RunHistory } from 'stride';
 * import { SqliteStore } from 'stride/store';
 *
 * const history = new RunHistory({ store: new SqliteStore() });
 * const cmp = await compareRuns(history, 'latest~1', 'latest', { plan: 'support-bot' });
 * for (const r of cmp.regressions) console.log(r.dataset, r.id, r.assertion?.message);
 * console.log(cmp.summary.delta.pass_rate, cmp.summary.p_value);
 * ```
 */
export async function compareRuns(
  history: RunHistory,
  baseId: string | readonly string[],
  headId: string | readonly string[],
  options: CompareOptions = {},
): Promise<Comparison> {
  const { details, alpha } = validate(options);
  const plan = await planFor(history, baseId, headId, options.plan);
  const baseRuns = await resolveRuns(history, baseId, { plan, label: 'base' });
  const headRuns = await resolveRuns(history, headId, { plan, label: 'head' });
  const reader = readerFor(history.store, options.direct);
  const cases = new CaseTable();
  const base = await readSide(reader, baseRuns, cases, 'base');
  const head = await readSide(reader, headRuns, cases, 'head');
  const lists = classify(cases);
  const matched = base.cases - lists.removed.length;
  if (matched === 0) {
    const names = (runs: readonly RunRecord[]) => runs.map((r) => r.id).join(',');
    throw new StrideError(
      'NOTHING_TO_COMPARE',
      `runs ${names(baseRuns)} (${base.cases} cases) and ${names(headRuns)} (${head.cases} cases) share no case id (cases match by dataset and id): nothing to compare`,
    );
  }

  // Read back the full results of the cases listed in detail.
  const names = Object.keys(SHOWN) as ListName[];
  const wanted = { base: [] as SampleRef[], head: [] as SampleRef[] };
  for (const name of names) {
    const [wb, wh] = SHOWN[name];
    for (const e of lists[name].slice(0, details)) {
      if (e.base !== undefined) wanted.base.push(shownRef(e.base, wb));
      if (e.head !== undefined) wanted.head.push(shownRef(e.head, wh));
    }
  }
  const rows = {
    base: await fetchRefs(reader, baseRuns, wanted.base),
    head: await fetchRefs(reader, headRuns, wanted.head),
  };
  const built = {} as Record<ListName, CaseChange[]>;
  let leftOut = 0;
  for (const name of names) {
    const list = lists[name];
    leftOut += Math.max(0, list.length - details);
    built[name] = list.map((e, i) => entryOf(name, e, i < details ? rows : undefined));
  }

  const test = mcnemar(lists.regressions.length, lists.fixes.length);
  const b = sideSummary(base);
  const h = sideSummary(head);
  const summary: CompareSummary = {
    base: b,
    head: h,
    delta: {
      pass_rate: minus(h.pass_rate, b.pass_rate),
      p50: minus(h.latency.p50, b.latency.p50),
      p90: minus(h.latency.p90, b.latency.p90),
      tokens: h.tokens - b.tokens,
      cost: h.cost_unknown > 0 || b.cost_unknown > 0 ? null : h.cost - b.cost,
      mean_score: minus(h.mean_score, b.mean_score),
    },
    datasets: datasets(base, head),
    matched,
    counts: {
      regressions: lists.regressions.length,
      fixes: lists.fixes.length,
      added: lists.added.length,
      removed: lists.removed.length,
      still_failing: lists.still_failing.length,
      changed: lists.changed.length,
      flaky: lists.flaky.length,
      unchanged: lists.unchanged,
      unjudged: lists.unjudged.length,
    },
    test,
    p_value: test.p_value,
    alpha,
    significant: test.regressed > test.fixed && test.p_value < alpha,
    repeated: base.repeated || head.repeated,
    details: { limit: details, left_out: leftOut },
    warnings: warningsOf(base, head),
  };
  return {
    regressions: built.regressions,
    fixes: built.fixes,
    added: built.added,
    removed: built.removed,
    still_failing: built.still_failing,
    changed: built.changed,
    flaky: built.flaky,
    unjudged: built.unjudged,
    summary,
  };
}
