/**
 * CSV (RFC 4180): one row per result, for spreadsheets. Streamed row by row.
 */

import type { TestResult } from './convert.js';
import { type ResultSource, StagedFile, writeFileStreamed } from './sink.js';
import type { ReportSummary } from './summary.js';
import { datasetOf, isoOrNull, safeJson } from './text.js';
import type { FormatWriter, ResultRow } from './writer.js';

/** The CSV report's columns, in order. */
export const CSV_COLUMNS = [
  'id',
  'dataset',
  'status',
  'task_status',
  'cancel_reason',
  'attempts',
  'execution_time_s',
  'tokens',
  'cost',
  'score',
  'error_code',
  'error_message',
  'inputs',
  'outputs',
  'failed_assertions',
  'tags',
  'repeat_index',
  'timestamp',
] as const;

export interface CsvOptions {
  /**
   * Prefix text cells that a spreadsheet would run as a formula with `'` (OWASP's advice
   * against CSV injection). Numbers we write ourselves are never prefixed. @default true
   */
  readonly formulaGuard?: boolean;
}

/**
 * First characters that make Excel, LibreOffice or Google Sheets read a cell as a formula:
 * `= + - @` and, per OWASP, tab and CR. A model's answer is attacker-influenced text (a prompt
 * injection can make it start with `=HYPERLINK(...)`), and a CSV report is opened by people.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF (quotes doubled), and,
 * with `guard`, prefixed with `'` when a spreadsheet would take it for a formula.
 *
 * @example
 * ```ts
 * csvField('say "hi", then go'); // '"say ""hi"", then go"'
 * csvField('=1+1'); // "'=1+1"
 * csvField('=1+1', false); // '=1+1'
 * ```
 */
export function csvField(value: string, guard = true): string {
  const text = guard && FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function numberField(n: number): string {
  return Number.isFinite(n) ? String(n) : '';
}

/** The cells of one result, in CSV_COLUMNS order. */
function csvRow(result: TestResult, guard: boolean): string {
  const m = result.metadata;
  const text = (s: string | undefined) => csvField(s ?? '', guard);
  const failed = result.assertions.filter((a) => !a.passed).map((a) => a.message);
  return [
    text(result.executionId),
    text(datasetOf(result)),
    result.status,
    m.taskStatus,
    text(m.cancelReason),
    numberField(m.attemptCount),
    numberField(result.executionTime),
    numberField(result.tokensUsed),
    result.cost === undefined ? '' : numberField(result.cost),
    result.score === undefined ? '' : numberField(result.score),
    text(m.errorCode),
    text(result.errorMessage),
    text(safeJson(result.inputs)),
    text(result.outputs === undefined ? '' : safeJson(result.outputs)),
    text(failed.join('; ')),
    text(m.tags.join('|')),
    m.repeatIndex === undefined ? '' : numberField(m.repeatIndex),
    text(isoOrNull(result.timestamp) ?? ''),
  ].join(',');
}

/** The CSV report fed one result at a time: rows go straight to the (temporary) file. */
class CsvWriter implements FormatWriter {
  private constructor(
    private readonly file: StagedFile,
    private readonly guard: boolean,
  ) {}

  static async open(path: string, options: CsvOptions): Promise<CsvWriter> {
    const file = await StagedFile.open(path);
    const writer = new CsvWriter(file, options.formulaGuard ?? true);
    await file.write(`${CSV_COLUMNS.join(',')}\r\n`);
    return writer;
  }

  get path(): string {
    return this.file.path;
  }

  add(row: ResultRow): Promise<void> {
    return this.file.write(`${csvRow(row.result, this.guard)}\r\n`);
  }

  finish(): Promise<void> {
    return this.file.commit();
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

/** Opens a CSV report writer for `path` (report/fanout.ts feeds it). */
export function openCsvWriter(path: string, options: CsvOptions = {}): Promise<FormatWriter> {
  return CsvWriter.open(path, options);
}

/**
 * Writes `results.csv`: a header row, then one row per result; CRLF line ends (RFC 4180), UTF-8
 * without a byte-order mark. `inputs` and `outputs` are JSON text; `failed_assertions` joins
 * messages with `"; "`, `tags` with `"|"`. See docs/reports.md for the formula guard.
 *
 * @example
 * ```ts
 * await writeCsv('out/results.csv', summary, () => results);
 * ```
 */
export async function writeCsv(
  path: string,
  _summary: ReportSummary,
  source: ResultSource,
  options: CsvOptions = {},
): Promise<void> {
  const guard = options.formulaGuard ?? true;
  await writeFileStreamed(path, async (sink) => {
    await sink.write(`${CSV_COLUMNS.join(',')}\r\n`);
    for await (const result of source()) await sink.write(`${csvRow(result, guard)}\r\n`);
  });
}
