/**
 * Reading one side of a comparison (one run, or several runs pooled) from the journal in one
 * streamed pass, keeping only a compact record per case: pass and sample counts, a hash of one
 * output, and where to find a passing and a failing sample again. Full rows are read back later,
 * only for the cases a comparison lists in detail (`fetchRows`). So two 100,000-case runs
 * compare in memory proportional to their case count, never to their outputs' size.
 */

import { createHash } from 'node:crypto';
import { LatencyHistogram } from '../core/histogram.js';
import { ResultConverter, type TestResult } from '../report/convert.js';
import { MAX_DATASETS, OTHER_DATASETS } from '../report/summary.js';
import { datasetOf, safeJson } from '../report/text.js';
import type { RunRecord, Store } from '../store/port.js';
import type { SampleStatus } from './types.js';

/** Where one stored row is: the run's position on its side, and the row's in its stream. */
export interface RowRef {
  readonly run: number;
  readonly row: number;
  /** The sample's repeat index (0 without repeats): the lowest is the one shown. */
  readonly repeat: number;
  readonly status: SampleStatus;
}

/** One case (dataset and id, repeats pooled) on one side. */
export interface CaseRecord {
  readonly id: string;
  readonly dataset: string;
  /** Judged samples (not cancelled) and how many of them passed. */
  judged: number;
  passed: number;
  cancelled: number;
  /** Hash of the shown sample's output (the lowest run and repeat index among judged ones). */
  hash: number;
  /** The first passing and the first not-passing judged sample (lowest run, then repeat). */
  pass: RowRef | undefined;
  fail: RowRef | undefined;
  /** Any sample (a cancelled one when nothing was judged). */
  any: RowRef;
}

/** Pass counts of a dataset on one side. */
export interface DatasetTally {
  total: number;
  passed: number;
}

/** Everything a comparison keeps of one side after its pass. */
export interface Side {
  readonly runs: readonly RunRecord[];
  /** By `caseKey`. */
  readonly cases: Map<string, CaseRecord>;
  /** Results counted, one per case and repeat and run (the latest row of each). */
  total: number;
  passed: number;
  cancelled: number;
  tokens: number;
  cost: number;
  readonly latency: LatencyHistogram;
  readonly datasets: Map<string, DatasetTally>;
  /** A case seen with several samples. */
  repeated: boolean;
}

/** The key a case is matched by: its dataset and its id without the repeat suffix. */
export function caseKey(dataset: string, id: string): string {
  return `${dataset}\u0000${id}`;
}

/** The id of a case without its `#N` repeat suffix (the plans layer appends it). */
function baseId(r: TestResult): string {
  const k = r.metadata.repeatIndex;
  const id = r.executionId;
  return k !== undefined && id.endsWith(`#${k}`) ? id.slice(0, -`#${k}`.length) : id;
}

function sampleStatus(r: TestResult): SampleStatus {
  return r.metadata.taskStatus === 'cancelled' ? 'cancelled' : r.status;
}

/**
 * What two outputs are compared by: the answer text when the target gives one (Dify's and
 * OpenAI's outputs carry per-request ids and timings that differ on every call, and are not the
 * answer), a string as itself, anything else as its JSON.
 */
export function comparable(output: unknown): string {
  if (typeof output === 'string') return output;
  if (typeof output === 'object' && output !== null && 'text' in output) {
    const text = (output as { text: unknown }).text;
    if (typeof text === 'string') return text;
  }
  return safeJson(output, 2);
}

/** 48 bits of the output's SHA-1: a collision between a case's two outputs is out of reach. */
function hashOf(output: unknown): number {
  return createHash('sha1').update(comparable(output)).digest().readUIntBE(0, 6);
}

function earlier(a: RowRef | undefined, run: number, repeat: number): boolean {
  return a === undefined || run < a.run || (run === a.run && repeat < a.repeat);
}

/** The per-result part a side keeps until it knows the result is its case's latest row. */
interface Pending {
  readonly result: TestResult;
  readonly row: number;
}

/**
 * Reads the runs of one side, each in one streamed pass over its stored results. A case's
 * latest row counts (a resumed run keeps the cancelled row of a case a later session finished;
 * a stored verdict is never followed by another row), as in the run's own report.
 */
export async function readSide(store: Store, runs: readonly RunRecord[]): Promise<Side> {
  const side: Side = {
    runs,
    cases: new Map(),
    total: 0,
    passed: 0,
    cancelled: 0,
    tokens: 0,
    cost: 0,
    latency: new LatencyHistogram(),
    datasets: new Map(),
    repeated: false,
  };
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i]!;
    const context = { workflowId: run.plan, epochOffsetMs: run.clockOffsetMs };
    // Only a cancelled row can be superseded: it waits here until its run's stream ends.
    const cancelled = new Map<string, Pending>();
    let row = 0;
    for await (const task of store.results(run.id)) {
      const result = ResultConverter.convert(task, context);
      if (task.status === 'cancelled') {
        cancelled.set(task.id, { result, row: row++ });
        continue;
      }
      cancelled.delete(task.id);
      count(side, result, i, row++);
    }
    for (const p of cancelled.values()) count(side, p.result, i, p.row);
  }
  return side;
}

function datasetTally(side: Side, name: string): DatasetTally {
  let d = side.datasets.get(name);
  if (d === undefined) {
    // Capped as the run's report caps them: a case file can give every case its own dataset.
    const key = side.datasets.size < MAX_DATASETS ? name : OTHER_DATASETS;
    d = side.datasets.get(key);
    if (d === undefined) {
      d = { total: 0, passed: 0 };
      side.datasets.set(key, d);
    }
  }
  return d;
}

/** Counts one result (its case's latest row) into the side. */
function count(side: Side, r: TestResult, run: number, row: number): void {
  const status = sampleStatus(r);
  const passed = status === 'success';
  const dataset = datasetOf(r);
  side.total++;
  if (passed) side.passed++;
  if (status === 'cancelled') side.cancelled++;
  side.tokens += Number.isFinite(r.tokensUsed) ? r.tokensUsed : 0;
  side.cost += Number.isFinite(r.cost) ? r.cost : 0;
  // Microseconds, as the report's summary records them, so the percentiles agree exactly.
  side.latency.record(Math.max(0, Number.isFinite(r.executionTime) ? r.executionTime : 0) * 1e6);
  const tally = datasetTally(side, dataset);
  tally.total++;
  if (passed) tally.passed++;

  const key = caseKey(dataset, baseId(r));
  const repeat = r.metadata.repeatIndex ?? 0;
  const ref: RowRef = { run, row, repeat, status };
  let c = side.cases.get(key);
  if (c === undefined) {
    c = {
      id: baseId(r),
      dataset,
      judged: 0,
      passed: 0,
      cancelled: 0,
      hash: 0,
      pass: undefined,
      fail: undefined,
      any: ref,
    };
    side.cases.set(key, c);
  } else {
    side.repeated = true;
  }
  if (status === 'cancelled') {
    c.cancelled++;
    return;
  }
  const shown = c.pass === undefined && c.fail === undefined;
  const first = earlier(c.pass, run, repeat) && earlier(c.fail, run, repeat);
  c.judged++;
  if (passed) {
    c.passed++;
    if (earlier(c.pass, run, repeat)) c.pass = ref;
  } else if (earlier(c.fail, run, repeat)) {
    c.fail = ref;
  }
  if (shown || first) {
    c.hash = hashOf(r.outputs);
    c.any = ref;
  }
}

/**
 * Reads back the full results of the given rows of one side (one more streamed pass per run
 * that has any), keyed `run:row`.
 */
export async function fetchRows(
  store: Store,
  runs: readonly RunRecord[],
  wanted: ReadonlySet<string>,
): Promise<Map<string, TestResult>> {
  const out = new Map<string, TestResult>();
  if (wanted.size === 0) return out;
  for (let i = 0; i < runs.length; i++) {
    const prefix = `${i}:`;
    let left = 0;
    for (const w of wanted) if (w.startsWith(prefix)) left++;
    if (left === 0) continue;
    const run = runs[i]!;
    const context = { workflowId: run.plan, epochOffsetMs: run.clockOffsetMs };
    let row = 0;
    for await (const task of store.results(run.id)) {
      const key = `${i}:${row++}`;
      if (!wanted.has(key)) continue;
      out.set(key, ResultConverter.convert(task, context));
      if (--left === 0) break;
    }
  }
  return out;
}

/** The key `fetchRows` files a row under. */
export function rowKey(ref: RowRef): string {
  return `${ref.run}:${ref.row}`;
}
