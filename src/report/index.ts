/**
 * The report layer: TaskResult -> TestResult (convert.ts), a run's summary (summary.ts), and the
 * report files (JSONL, JSON, CSV, JUnit XML, HTML). See docs/reports.md.
 *
 * @example
 * ```ts
 * import { parseReportFormats, summarize, writeReports } from './report/index.js';
 *
 * const source = () => results; // or () => store.results(runId): read once per format
 * const summary = await summarize(source, { runId, plan: 'support-bot', startedAt, finishedAt });
 * const paths = await writeReports('out', parseReportFormats('junit,html'), summary, source);
 * console.log(paths.html); // out/report.html
 * ```
 */

import { dirname, join } from 'node:path';
import { InvalidOptionError } from '../core/index.js';
import { writeCsv } from './csv.js';
import { makeDirectory } from './disk.js';
import { type HtmlOptions, writeHtml } from './html.js';
import { writeJson } from './json.js';
import { writeJsonl } from './jsonl.js';
import { writeJunit } from './junit.js';
import type { ResultSource } from './sink.js';
import type { ReportSummary } from './summary.js';

export * from './convert.js';
export { CSV_COLUMNS, type CsvOptions, csvField, writeCsv } from './csv.js';
export { type DiffLine, lineDiff } from './diff.js';
export { HTML_MAX_FAILURES, type HtmlOptions, type HtmlTrendPoint, writeHtml } from './html.js';
export { writeJson } from './json.js';
export { JsonlStreamWriter, jsonlLine, writeJsonl } from './jsonl.js';
export { writeJunit } from './junit.js';
export type { ResultSource } from './sink.js';
export {
  type DatasetSummary,
  datasetResolver,
  type ErrorGroup,
  type HistogramBucket,
  type LatencyStats,
  MAX_DATASETS,
  MAX_ERROR_CODES,
  OTHER_CODES,
  OTHER_DATASETS,
  type ReportMeta,
  type ReportSummary,
  SLOWEST_CASES,
  type SlowCase,
  type StatusCounts,
  SummaryBuilder,
  summarize,
} from './summary.js';

/** Options of the writers that take some, by format. */
export interface ReportOptions {
  readonly html?: HtmlOptions;
}

/** A report file format. */
export type ReportFormat = 'jsonl' | 'json' | 'csv' | 'junit' | 'html';

/** Every format, in the order `writeReports` writes them. */
export const REPORT_FORMATS: readonly ReportFormat[] = ['jsonl', 'json', 'csv', 'junit', 'html'];

/** The file each format is written to, inside the report directory. */
export const REPORT_FILES: Readonly<Record<ReportFormat, string>> = {
  jsonl: 'results.jsonl',
  json: 'results.json',
  csv: 'results.csv',
  junit: 'junit.xml',
  html: 'report.html',
};

const WRITERS: Readonly<
  Record<
    ReportFormat,
    (path: string, summary: ReportSummary, source: ResultSource) => Promise<void>
  >
> = {
  jsonl: writeJsonl,
  json: writeJson,
  csv: writeCsv,
  junit: writeJunit,
  html: writeHtml,
};

function isFormat(value: string): value is ReportFormat {
  return (REPORT_FORMATS as readonly string[]).includes(value);
}

/**
 * Parses a comma-separated list of formats (`"junit,html"`, spaces and case ignored, duplicates
 * dropped). Throws InvalidOptionError naming the bad value and the allowed ones, or when the
 * list is empty.
 *
 * @example
 * ```ts
 * parseReportFormats('html, JUnit'); // ['html', 'junit']
 * parseReportFormats('xml'); // throws: invalid option report format: "xml" (expected one of jsonl, json, csv, junit, html)
 * ```
 */
export function parseReportFormats(text: string): ReportFormat[] {
  const expected = `one of ${REPORT_FORMATS.join(', ')}`;
  const out: ReportFormat[] = [];
  for (const raw of text.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    if (!isFormat(name)) throw new InvalidOptionError('report format', raw.trim(), expected);
    if (!out.includes(name)) out.push(name);
  }
  if (out.length === 0) {
    throw new InvalidOptionError('report format', text, `a comma-separated list of ${expected}`);
  }
  return out;
}

/**
 * Creates `dir` (and its parents) and writes each format to its REPORT_FILES name there, one
 * after the other; each file appears complete or not at all. `source` is read at least once per
 * format (JUnit: once per dataset). Resolves with the path of each file written.
 *
 * @example
 * ```ts
 * const paths = await writeReports('.stride/runs/r1', ['junit', 'html'], summary, () => results);
 * paths.junit; // '.stride/runs/r1/junit.xml'
 * ```
 */
export async function writeReports(
  dir: string,
  formats: readonly ReportFormat[],
  summary: ReportSummary,
  source: ResultSource,
  options: ReportOptions = {},
): Promise<Partial<Record<ReportFormat, string>>> {
  await makeDirectory(dir);
  const paths: Partial<Record<ReportFormat, string>> = {};
  for (const format of formats) {
    const path = join(dir, REPORT_FILES[format]);
    if (format === 'html') await writeHtml(path, summary, source, options.html);
    else await WRITERS[format](path, summary, source);
    paths[format] = path;
  }
  return paths;
}

/**
 * Writes one report to `path` (its folder is created if missing); resolves with the path.
 *
 * @example
 * ```ts
 * await writeReport('junit', 'ci/junit.xml', summary, () => history.results(runId));
 * ```
 */
export async function writeReport(
  format: ReportFormat,
  path: string,
  summary: ReportSummary,
  source: ResultSource,
  options: ReportOptions = {},
): Promise<string> {
  await makeDirectory(dirname(path));
  if (format === 'html') await writeHtml(path, summary, source, options.html);
  else await WRITERS[format](path, summary, source);
  return path;
}
