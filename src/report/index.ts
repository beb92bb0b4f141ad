/**
 * The report layer: TaskResult -> TestResult (convert.ts), a run's summary (summary.ts), and the
 * report files (JSONL, JSON, CSV, JUnit XML, HTML). See docs/reports.md.
 *
 * @example
 * ```ts
 * import { parseReportFormats, writeReportsFrom } from './report/index.js';
 *
 * const source = () => results; // or () => history.results(runId): read once for all formats
 * const meta = { runId, plan: 'support-bot', startedAt, finishedAt };
 * const { summary, paths } = await writeReportsFrom(source, 'out', parseReportFormats('junit,html'), meta);
 * console.log(summary.passRate, paths.html); // out/report.html
 * ```
 */

import { dirname } from 'node:path';
import { InvalidOptionError } from '../core/index.js';
import { REPORT_FORMATS, type ReportFormat, writeReportsFrom } from './fanout.js';
import type { HtmlOptions } from './html.js';
import type { ResultSource } from './sink.js';
import type { ReportSummary } from './summary.js';

export * from './convert.js';
export { CSV_COLUMNS, type CsvOptions, csvField, writeCsv } from './csv.js';
export { type DiffLine, lineDiff } from './diff.js';
export {
  type FanoutOptions,
  type FanoutResult,
  REPORT_FILES,
  REPORT_FORMATS,
  ReportFanout,
  type ReportFormat,
  writeReportsFrom,
} from './fanout.js';
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
 * Creates `dir` (and its parents) and writes each format to its REPORT_FILES name there from
 * ONE read of `source` (report/fanout.ts); each file appears complete or not at all. Resolves
 * with the path of each file written. `writeReportsFrom` does the same and builds the summary
 * on the way, when none was made yet.
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
  return (await writeReportsFrom(source, dir, formats, summary, options)).paths;
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
  await writeReportsFrom(source, dirname(path), [format], summary, {
    ...options,
    paths: { [format]: path },
  });
  return path;
}
