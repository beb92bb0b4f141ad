/**
 * One read of the results for every report: each result is converted once, counted into the
 * summary (SummaryBuilder) and handed to every requested format's writer at once. Used while a
 * run goes (the CLI session feeds it each settled case, so nothing is read back after the run)
 * and for a stored run (`stride report`: one pass over the journal for all formats).
 */

import { dirname, join } from 'node:path';
import type { TestResult } from './convert.js';
import { type CsvOptions, openCsvWriter } from './csv.js';
import { makeDirectory } from './disk.js';
import { openHtmlWriter } from './html.js';
import { openJsonWriter } from './json.js';
import { openJsonlWriter } from './jsonl.js';
import { openJunitWriter } from './junit.js';
import type { ResultSource } from './sink.js';
import { type ReportMeta, type ReportSummary, SummaryBuilder } from './summary.js';
import { type FinishOptions, type FormatWriter, ResultRow } from './writer.js';

/** A report file format. */
export type ReportFormat = 'jsonl' | 'json' | 'csv' | 'junit' | 'html';

/** Every format, in the order they are listed. */
export const REPORT_FORMATS: readonly ReportFormat[] = ['jsonl', 'json', 'csv', 'junit', 'html'];

/** The file each format is written to, inside the report directory. */
export const REPORT_FILES: Readonly<Record<ReportFormat, string>> = {
  jsonl: 'results.jsonl',
  json: 'results.json',
  csv: 'results.csv',
  junit: 'junit.xml',
  html: 'report.html',
};

/** Options of `ReportFanout.open`. */
export interface FanoutOptions {
  /** The plan's name, as the summary's `meta.plan` will give it (JUnit classnames). */
  readonly plan: string;
  /** A file per format instead of `<dir>/REPORT_FILES[format]`. @default none */
  readonly paths?: Partial<Record<ReportFormat, string>>;
  /**
   * Write results.jsonl under its own name as results come, so it can be followed while a run
   * goes; otherwise (like every other format) under a temporary name renamed when complete.
   * @default false
   */
  readonly liveJsonl?: boolean;
  /** The failures the HTML report lists. @default HTML_MAX_FAILURES */
  readonly maxFailures?: number;
  readonly csv?: CsvOptions;
}

/** What `finish` wrote. */
export interface FanoutResult {
  readonly summary: ReportSummary;
  /** The path of each file written. */
  readonly paths: Partial<Record<ReportFormat, string>>;
}

async function openWriter(
  format: ReportFormat,
  path: string,
  options: FanoutOptions,
): Promise<FormatWriter> {
  switch (format) {
    case 'jsonl':
      return openJsonlWriter(path, { live: options.liveJsonl === true });
    case 'json':
      return openJsonWriter(path);
    case 'csv':
      return openCsvWriter(path, options.csv);
    case 'junit':
      return openJunitWriter(path, options.plan);
    case 'html':
      return openHtmlWriter(
        path,
        options.maxFailures === undefined ? {} : { maxFailures: options.maxFailures },
      );
  }
}

/**
 * Every requested report, fed one result at a time. A format whose file fails while results
 * come (a full disk) is dropped, its error kept in `failed`, and the others go on: the caller
 * decides whether to give up (`writeReportsFrom` does) or to write that one again later.
 *
 * @example
 * ```ts
 * const fanout = await ReportFanout.open('out', ['json', 'junit', 'html'], { plan: 'support-bot' });
 * for await (const result of results) await fanout.add(result);
 * const { summary, paths } = await fanout.finish({ runId, plan: 'support-bot', startedAt, finishedAt });
 * paths.junit; // 'out/junit.xml'
 * ```
 */
export class ReportFanout {
  /** The summary of every result added so far, built as they come. */
  readonly builder = new SummaryBuilder();
  readonly #writers: Map<ReportFormat, FormatWriter>;
  readonly #failed = new Map<ReportFormat, unknown>();
  readonly #finished: Partial<Record<ReportFormat, string>> = {};

  private constructor(writers: Map<ReportFormat, FormatWriter>) {
    this.#writers = writers;
  }

  /**
   * Creates each file's folder (`dir` unless `paths` says otherwise) and opens a writer per format. Rejects with
   * REPORT_IO naming the file when one cannot be opened (those already open are dropped).
   */
  static async open(
    dir: string,
    formats: readonly ReportFormat[],
    options: FanoutOptions,
  ): Promise<ReportFanout> {
    const writers = new Map<ReportFormat, FormatWriter>();
    try {
      for (const format of formats) {
        const path = options.paths?.[format] ?? join(dir, REPORT_FILES[format]);
        await makeDirectory(dirname(path));
        writers.set(format, await openWriter(format, path, options));
      }
    } catch (e) {
      await Promise.all([...writers.values()].map((w) => w.abort()));
      throw e;
    }
    return new ReportFanout(writers);
  }

  /** Formats that failed while results came, with their error; they write nothing more. */
  get failed(): ReadonlyMap<ReportFormat, unknown> {
    return this.#failed;
  }

  /** The file of each format still being written. */
  get paths(): Partial<Record<ReportFormat, string>> {
    return Object.fromEntries([...this.#writers].map(([f, w]) => [f, w.path]));
  }

  /** Counts `result` into the summary and writes it to every format; resolves when they can take more. */
  async add(result: TestResult): Promise<void> {
    this.builder.add(result);
    const row = new ResultRow(result);
    if (this.#writers.size === 1) {
      const [format, writer] = this.#writers.entries().next().value!;
      await writer.add(row).catch((e: unknown) => this.#drop(format, e));
      return;
    }
    await Promise.all(
      [...this.#writers].map(([format, w]) =>
        w.add(row).catch((e: unknown) => this.#drop(format, e)),
      ),
    );
  }

  async #drop(format: ReportFormat, error: unknown): Promise<void> {
    const writer = this.#writers.get(format);
    if (writer === undefined) return;
    this.#writers.delete(format);
    this.#failed.set(format, error);
    await writer.abort();
  }

  /**
   * Writes what needs the summary and puts every file under its name. `about` is the run's
   * ReportMeta (the summary is the one built from the results added), or a summary made
   * elsewhere from the same results. `only`: finish just these formats now (the others stay
   * open). Rejects with the first failure, which is also kept in `failed`; the files of the
   * other formats are still finished (`finished` has their paths).
   */
  async finish(
    about: ReportMeta | ReportSummary,
    options: FinishOptions = {},
    only?: readonly ReportFormat[],
  ): Promise<FanoutResult> {
    const summary = 'meta' in about ? about : this.builder.build(about);
    let failure: { error: unknown } | undefined;
    for (const [format, writer] of [...this.#writers]) {
      if (only !== undefined && !only.includes(format)) continue;
      this.#writers.delete(format);
      try {
        await writer.finish(summary, options);
        this.#finished[format] = writer.path;
      } catch (e) {
        this.#failed.set(format, e);
        failure ??= { error: e };
      }
    }
    if (failure !== undefined) throw failure.error;
    return { summary, paths: { ...this.#finished } };
  }

  /** The files finished so far, by format. */
  get finished(): Partial<Record<ReportFormat, string>> {
    return { ...this.#finished };
  }

  /** Drops every file not finished yet (a live results.jsonl stays as it is); never throws. */
  async abort(): Promise<void> {
    const writers = [...this.#writers.values()];
    this.#writers.clear();
    await Promise.all(writers.map((w) => w.abort()));
  }
}

/**
 * Writes every format in `formats` from ONE read of `source`, building the summary on the way
 * (or using `about` when it is a summary already made from the same results). Any failure
 * drops every unfinished file and rejects (REPORT_IO, naming the file).
 *
 * @example
 * ```ts
 * const { summary, paths } = await writeReportsFrom(() => history.results(runId), 'out',
 *   ['json', 'csv', 'junit', 'html', 'jsonl'], { runId, plan, startedAt, finishedAt });
 * ```
 */
export async function writeReportsFrom(
  source: ResultSource,
  dir: string,
  formats: readonly ReportFormat[],
  about: ReportMeta | ReportSummary,
  options: Omit<FanoutOptions, 'plan' | 'liveJsonl'> & FinishOptions = {},
): Promise<FanoutResult> {
  const plan = 'meta' in about ? about.meta.plan : about.plan;
  const fanout = await ReportFanout.open(dir, formats, {
    ...options,
    plan,
    ...(options.html?.maxFailures === undefined ? {} : { maxFailures: options.html.maxFailures }),
  });
  try {
    for await (const result of source()) {
      await fanout.add(result);
      const failed = fanout.failed.values().next();
      if (!failed.done) throw failed.value;
    }
  } catch (e) {
    await fanout.abort();
    throw e;
  }
  return fanout.finish(about, options.html === undefined ? {} : { html: options.html });
}
