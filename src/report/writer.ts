/**
 * The push face of the report writers: each format takes one result at a time (`add`) and
 * writes what needs the summary (a JSON document's head, a JUnit suite's counts, the HTML
 * cards) at `finish`. That lets one read of the results feed every format at once
 * (report/fanout.ts), while a run goes or from the journal afterwards.
 */

import { rm } from 'node:fs/promises';
import type { TestResult } from './convert.js';
import type { HtmlOptions } from './html.js';
import type { ReportSummary } from './summary.js';
import { resultRecord, safeJson } from './text.js';

/**
 * One result on its way to the writers, with its JSON record made at most once: the JSONL and
 * the JSON report write the same line, and the conversion is the costly part of both.
 */
export class ResultRow {
  #json: string | undefined;

  constructor(readonly result: TestResult) {}

  /** `safeJson(resultRecord(result))`, computed on first use. */
  get json(): string {
    this.#json ??= safeJson(resultRecord(this.result));
    return this.#json;
  }
}

/** What `finish` may add that is only known once the results are in. */
export interface FinishOptions {
  /** The HTML report's trend and comparison link (its failure cap is an `open` option). */
  readonly html?: HtmlOptions;
}

/** One report file fed one result at a time. */
export interface FormatWriter {
  /** The file it writes. */
  readonly path: string;
  /** Writes one result; resolves when the file can take more (backpressure). */
  add(row: ResultRow): Promise<void>;
  /** Writes the rest with `summary` and puts the file under its name, complete. */
  finish(summary: ReportSummary, options?: FinishOptions): Promise<void>;
  /** Drops what was written (a live JSONL file stays, cut where it was); never throws. */
  abort(): Promise<void>;
}

/** A scratch file's name beside `path` (same folder: same disk, same permissions). */
export function scratchPath(path: string, what: string): string {
  return `${path}.${process.pid}.${what}.tmp`;
}

/** Removes scratch files; never throws. */
export async function removeAll(paths: Iterable<string>): Promise<void> {
  await Promise.all([...paths].map((p) => rm(p, { force: true }).catch(() => undefined)));
}
