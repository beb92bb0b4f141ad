/**
 * Reading the two sides of a comparison (each one run, or several runs pooled) from the journal,
 * one streamed pass per run, into a compact record per case: pass and sample counts, a hash of
 * one output, and where to find a passing and a failing sample again. Full rows are read back
 * later, only for the cases a comparison lists in detail. So two 100,000-case runs compare in
 * memory proportional to their case count, never to their outputs' size.
 *
 * Rows come from a `RowReader` (read-rows.ts): the Store port for any store, or a direct
 * read-only query of a SqliteStore's file.
 */

import { LatencyHistogram } from '../core/histogram.js';
import type { TestResult } from '../report/convert.js';
import { MAX_DATASETS, OTHER_DATASETS } from '../report/summary.js';
import { safeJson } from '../report/text.js';
import type { RunRecord } from '../store/port.js';
import type { SampleStatus } from './types.js';

/** One stored result, as a comparison needs it. */
export interface CompactRow {
  /** Where the row is, for `RowReader.fetch`: its position in the run's stream. */
  readonly pos: number;
  readonly caseId: string;
  readonly repeat: number | undefined;
  readonly status: SampleStatus;
  readonly dataset: string;
  readonly seconds: number;
  readonly tokens: number;
  /** Undefined when unknown (usage reported without a price): never summed as 0. */
  readonly cost: number | undefined;
  /** The answer compared (see `comparable`). */
  readonly answer: string;
  /** The case's score (0..1), when it was judged against assertions. */
  readonly score: number | undefined;
}

/** Where a side's rows come from. */
export interface RowReader {
  /**
   * Calls `visit` with each of a run's results in completion order, compacted. The row object
   * may be reused for the next call: copy it to keep it.
   */
  scan(run: RunRecord, visit: (row: CompactRow) => void): Promise<void>;
  /** The full results at these positions of the run. */
  fetch(run: RunRecord, positions: readonly number[]): Promise<Map<number, TestResult>>;
}

const STATUS_CODE: Readonly<Record<SampleStatus, number>> = {
  success: 1,
  failed: 2,
  timeout: 3,
  error: 4,
  cancelled: 5,
};
const STATUS_OF: readonly SampleStatus[] = [
  'cancelled',
  'success',
  'failed',
  'timeout',
  'error',
  'cancelled',
];

/** Where a sample is: run index on its side, row position, repeat index, status. */
export interface SampleRef {
  readonly run: number;
  readonly pos: number;
  readonly status: SampleStatus;
}

/** One case on one side (a `CaseTable` record read out, for the cases a comparison lists). */
export class SideState {
  judged = 0;
  passed = 0;
  cancelled = 0;
  /** 60 bits of the shown sample's answer hash, in two halves. */
  h1 = 0;
  h2 = 0;
  passRun = -1;
  passPos = -1;
  passRep = 0;
  failRun = -1;
  failPos = -1;
  failRep = 0;
  failStatus = 0;
  anyRun = -1;
  anyPos = -1;
  anyStatus = 0;
  /** Sum of the judged samples' scores in millionths, and how many had one. */
  scoreSum = 0;
  scored = 0;

  /** The mean score of the judged samples; null when none had one. */
  meanScore(): number | null {
    return this.scored === 0 ? null : this.scoreSum / 1e6 / this.scored;
  }

  /** The first passing sample (lowest run, then repeat), else the first failing one. */
  passRef(): SampleRef | undefined {
    if (this.passRun >= 0) return { run: this.passRun, pos: this.passPos, status: 'success' };
    return this.failRef();
  }

  /** The first failing sample, else the first passing one; a cancelled one if nothing else. */
  failRef(): SampleRef | undefined {
    if (this.failRun >= 0) {
      return { run: this.failRun, pos: this.failPos, status: STATUS_OF[this.failStatus]! };
    }
    if (this.passRun >= 0) return { run: this.passRun, pos: this.passPos, status: 'success' };
    return this.anyRun >= 0
      ? { run: this.anyRun, pos: this.anyPos, status: STATUS_OF[this.anyStatus]! }
      : undefined;
  }
}

/** Fields of a side's record in a `CaseTable` row. */
const F = {
  judged: 0,
  passed: 1,
  cancelled: 2,
  h1: 3,
  h2: 4,
  passRun: 5,
  passPos: 6,
  passRep: 7,
  failRun: 8,
  failPos: 9,
  failRep: 10,
  failStatus: 11,
  anyRun: 12,
  anyPos: 13,
  anyStatus: 14,
  scoreSum: 15,
  scored: 16,
} as const;
const WIDTH = 17;

/**
 * Every case of both sides, by `caseKey`: an index from key to row, and the rows in one
 * Int32Array (the base's 15 numbers, then the head's). Off the JS heap and without an object
 * per case: at 100,000 cases, objects made the heap, and V8's garbage allowance with it, three
 * times larger (docs/compare.md, "Bounded memory").
 */
export class CaseTable {
  readonly index = new Map<string, number>();
  private cols = new Int32Array(1024 * 2 * WIDTH);
  private size = 0;

  /** The row of a case, created empty if new. */
  slot(key: string): number {
    let at = this.index.get(key);
    if (at !== undefined) return at;
    at = this.size++;
    if (this.size * 2 * WIDTH > this.cols.length) {
      const grown = new Int32Array(this.cols.length * 2);
      grown.set(this.cols);
      this.cols = grown;
    }
    const o = at * 2 * WIDTH;
    for (const side of [0, WIDTH]) {
      for (const f of [F.passRun, F.passPos, F.failRun, F.failPos, F.anyRun, F.anyPos]) {
        this.cols[o + side + f] = -1;
      }
    }
    this.index.set(key, at);
    return at;
  }

  /** The offset of a side's record of row `at`. */
  offset(at: number, side: 'base' | 'head'): number {
    return at * 2 * WIDTH + (side === 'base' ? 0 : WIDTH);
  }

  get columns(): Int32Array {
    return this.cols;
  }

  /** A side's record of a case as an object, or undefined if the side has no sample of it. */
  view(at: number, side: 'base' | 'head'): SideState | undefined {
    const o = this.offset(at, side);
    const c = this.cols;
    if (c[o + F.anyRun]! < 0) return undefined;
    const s = new SideState();
    s.judged = c[o + F.judged]!;
    s.passed = c[o + F.passed]!;
    s.cancelled = c[o + F.cancelled]!;
    s.h1 = c[o + F.h1]!;
    s.h2 = c[o + F.h2]!;
    s.passRun = c[o + F.passRun]!;
    s.passPos = c[o + F.passPos]!;
    s.passRep = c[o + F.passRep]!;
    s.failRun = c[o + F.failRun]!;
    s.failPos = c[o + F.failPos]!;
    s.failRep = c[o + F.failRep]!;
    s.failStatus = c[o + F.failStatus]!;
    s.anyRun = c[o + F.anyRun]!;
    s.anyPos = c[o + F.anyPos]!;
    s.anyStatus = c[o + F.anyStatus]!;
    s.scoreSum = c[o + F.scoreSum]!;
    s.scored = c[o + F.scored]!;
    return s;
  }
}

/** Pass counts of a dataset on one side. */
export interface DatasetTally {
  total: number;
  passed: number;
  scored: number;
  scoreSum: number;
}

/** Aggregates of one side. */
export class SideTotals {
  total = 0;
  passed = 0;
  cancelled = 0;
  tokens = 0;
  /** The known costs' sum; `costUnknown` cases are not in it. */
  cost = 0;
  costUnknown = 0;
  /** Results with a score, and the sum of their scores. */
  scored = 0;
  scoreSum = 0;
  readonly latency = new LatencyHistogram();
  readonly datasets = new Map<string, DatasetTally>();
  /** Cases with at least one sample on this side. */
  cases = 0;
  /** A case seen with several samples. */
  repeated = false;

  constructor(readonly runs: readonly RunRecord[]) {}
}

/** The key a case is matched by: its dataset and its id without the repeat suffix. */
export function caseKey(dataset: string, id: string): string {
  return `${dataset}\u0000${id}`;
}

/** The dataset and id of a key. */
export function splitKey(key: string): { dataset: string; id: string } {
  const at = key.indexOf('\u0000');
  return { dataset: key.slice(0, at), id: key.slice(at + 1) };
}

/** The id of a case without its `#N` repeat suffix (the plans layer appends it). */
export function baseIdOf(caseId: string, repeat: number | undefined): string {
  return repeat !== undefined && caseId.endsWith(`#${repeat}`)
    ? caseId.slice(0, -`#${repeat}`.length)
    : caseId;
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
  return safeJson(output);
}

/**
 * cyrb53 (a public-domain 53-bit string hash), kept as two 30-bit halves: a collision between a
 * case's two answers is out of reach, and it costs a fraction of a cryptographic hash.
 */
function hash(text: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 & 0x3fffffff, h2 & 0x3fffffff];
}

function before(run: number, rep: number, refRun: number, refRep: number): boolean {
  return refRun < 0 || run < refRun || (run === refRun && rep < refRep);
}

/**
 * Reads the runs of one side into `cases` (the `base` or `head` half of each pair) and the
 * side's totals. A case's latest row counts (a resumed run keeps the cancelled row of a case a
 * later session finished; a stored verdict is never followed by another row), as in the run's
 * own report.
 */
export async function readSide(
  reader: RowReader,
  runs: readonly RunRecord[],
  cases: CaseTable,
  side: 'base' | 'head',
): Promise<SideTotals> {
  const totals = new SideTotals(runs);
  for (let i = 0; i < runs.length; i++) {
    // Only a cancelled row can be superseded: it waits here until its run's stream ends.
    const cancelled = new Map<string, CompactRow>();
    await reader.scan(runs[i]!, (row) => {
      if (row.status === 'cancelled') {
        cancelled.set(row.caseId, { ...row });
        return;
      }
      if (cancelled.size > 0) cancelled.delete(row.caseId);
      count(totals, cases, side, row, i);
    });
    for (const row of cancelled.values()) count(totals, cases, side, row, i);
  }
  return totals;
}

function datasetTally(totals: SideTotals, name: string): DatasetTally {
  let d = totals.datasets.get(name);
  if (d === undefined) {
    // Capped as the run's report caps them: a case file can give every case its own dataset.
    const key = totals.datasets.size < MAX_DATASETS ? name : OTHER_DATASETS;
    d = totals.datasets.get(key);
    if (d === undefined) {
      d = { total: 0, passed: 0, scored: 0, scoreSum: 0 };
      totals.datasets.set(key, d);
    }
  }
  return d;
}

/** Counts one result (its case's latest row of this run) into the side. */
function count(
  totals: SideTotals,
  cases: CaseTable,
  side: 'base' | 'head',
  r: CompactRow,
  run: number,
): void {
  const passed = r.status === 'success';
  totals.total++;
  if (passed) totals.passed++;
  if (r.status === 'cancelled') totals.cancelled++;
  totals.tokens += Number.isFinite(r.tokens) ? r.tokens : 0;
  if (r.cost === undefined) totals.costUnknown++;
  else totals.cost += Number.isFinite(r.cost) ? r.cost : 0;
  // Microseconds, as the report's summary records them, so the percentiles agree exactly; and,
  // as there, over the cases that ran to a verdict (a cancelled case has no latency to compare).
  if (r.status !== 'cancelled')
    totals.latency.record(Math.max(0, Number.isFinite(r.seconds) ? r.seconds : 0) * 1e6);
  const tally = datasetTally(totals, r.dataset);
  tally.total++;
  if (passed) tally.passed++;
  const scored = r.status !== 'cancelled' && r.score !== undefined && Number.isFinite(r.score);
  if (scored) {
    totals.scored++;
    totals.scoreSum += r.score!;
    tally.scored++;
    tally.scoreSum += r.score!;
  }

  const o = cases.offset(cases.slot(caseKey(r.dataset, baseIdOf(r.caseId, r.repeat))), side);
  const c = cases.columns;
  const rep = r.repeat ?? 0;
  if (c[o + F.anyRun]! < 0) {
    totals.cases++;
    c[o + F.anyRun] = run;
    c[o + F.anyPos] = r.pos;
    c[o + F.anyStatus] = STATUS_CODE[r.status];
  } else {
    totals.repeated = true;
  }
  if (r.status === 'cancelled') {
    c[o + F.cancelled]!++;
    return;
  }
  const earlierPass = before(run, rep, c[o + F.passRun]!, c[o + F.passRep]!);
  const earlierFail = before(run, rep, c[o + F.failRun]!, c[o + F.failRep]!);
  c[o + F.judged]!++;
  if (scored) {
    // Millionths in an Int32: exact to 1e-6, room for 2,000 samples of one case.
    c[o + F.scoreSum]! += Math.round(r.score! * 1e6);
    c[o + F.scored]!++;
  }
  if (passed) {
    c[o + F.passed]!++;
    if (earlierPass) {
      c[o + F.passRun] = run;
      c[o + F.passPos] = r.pos;
      c[o + F.passRep] = rep;
    }
  } else if (earlierFail) {
    c[o + F.failRun] = run;
    c[o + F.failPos] = r.pos;
    c[o + F.failRep] = rep;
    c[o + F.failStatus] = STATUS_CODE[r.status];
  }
  // The shown answer is the first judged sample's (lowest run, then repeat).
  if (earlierPass && earlierFail) {
    const [h1, h2] = hash(r.answer);
    c[o + F.h1] = h1;
    c[o + F.h2] = h2;
  }
}

/** Reads back full results, keyed `run:pos`, one `fetch` per run that has any. */
export async function fetchRefs(
  reader: RowReader,
  runs: readonly RunRecord[],
  refs: Iterable<SampleRef>,
): Promise<Map<string, TestResult>> {
  const byRun = new Map<number, Set<number>>();
  for (const ref of refs) {
    let set = byRun.get(ref.run);
    if (set === undefined) {
      set = new Set();
      byRun.set(ref.run, set);
    }
    set.add(ref.pos);
  }
  const out = new Map<string, TestResult>();
  for (const [run, positions] of byRun) {
    const rows = await reader.fetch(
      runs[run]!,
      [...positions].sort((a, b) => a - b),
    );
    for (const [pos, result] of rows) out.set(`${run}:${pos}`, result);
  }
  return out;
}

/** The key `fetchRefs` files a sample under. */
export function refKey(ref: SampleRef): string {
  return `${ref.run}:${ref.pos}`;
}
