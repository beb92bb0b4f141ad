/**
 * Reading test cases: inline lists, JSONL, CSV and JSON files, streamed so that a file of a
 * million cases never sits in memory; several datasets interleaved by weight; selection (tags,
 * range, seeded sample, repeat) applied while streaming; duplicate ids detected on the way.
 *
 * Streaming readers hand out cases before they have seen the whole file, so a bad line 900
 * surfaces after 899 good cases. `checkCases` (which `loadPlan` runs by default) reads everything
 * once first, so that nothing runs when any case is bad.
 */

import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { seededRandom } from '../core/index.js';
import { CsvParser, type CsvRecord, CsvSyntaxError } from './csv.js';
import { formatPath } from './env.js';
import { invalidValueMessage, PlanError, type PlanErrorCode, type PlanIssue } from './errors.js';
import { IdSet } from './idset.js';
import { type IssuePath, locatorForText, toPlanIssues } from './issues.js';
import { findJsonSyntaxError, lineIndex } from './json.js';
import { modulePath, moduleProblem } from './module-worker.js';
import {
  ASSERTION_KEYS,
  type CaseDefaults,
  type CaseFileFormat,
  type CasesSource,
  caseExpectedSchema,
  caseSchema,
  formatFromPath,
  normaliseCase,
  type RunManifest,
  type TestCase,
} from './schema.js';
import { didYouMean } from './suggest.js';

/** Where a case, or a piece of a plan, was written. `line` 0: no position known. */
export interface Location {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;
}

/**
 * Positions of manifest parts (inline cases, case sources, `select`) in their plan file, filled
 * by the loader. A side table, so that manifests stay plain data that deep-equal when reparsed.
 */
export const planLocations = new WeakMap<object, Location>();

type Entry = { readonly testCase: TestCase; readonly where: Location };
type Problem = {
  readonly issues: readonly PlanIssue[];
  readonly fatal: boolean;
  readonly code?: PlanErrorCode;
};
type Item = Entry | Problem;

function isProblem(item: Item): item is Problem {
  return 'issues' in item;
}

interface SourceContext {
  readonly baseDir: string;
  readonly defaults: CaseDefaults;
  /** Label for messages about an inline list without positions. */
  readonly label: string;
}

function displayPath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : join(baseDir, path);
}

function issueAt(where: Location, message: string, value?: unknown): PlanIssue {
  return { ...where, message, ...(value === undefined ? {} : { value }) };
}

const noPosition = (file: string, path = ''): Location => ({ file, line: 0, column: 0, path });

// ---------------------------------------------------------------------------------------------
// Validating one case
// ---------------------------------------------------------------------------------------------

/** Validates one parsed case; `locate` maps a path inside the case to a position. */
function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const nonEmpty = (v: unknown): boolean => typeof v === 'string' && v !== '';

/**
 * The common case line (id, inputs, dataset, scenario, tags, priority, metadata, all well
 * formed) checked by hand: a strict subset of what `caseSchema` accepts, for which zod would
 * change nothing. Validating a million such lines through zod was the reader's largest cost in
 * time and garbage (bench S5); anything else still goes through zod and its messages.
 */
function isPlainCase(data: unknown, jsonExact = false): data is Record<string, unknown> {
  if (!isMapping(data)) return false;
  for (const key in data) {
    const v = data[key];
    switch (key) {
      case 'id':
        if (
          !(
            (nonEmpty(v) && !(v as string).includes('#')) ||
            (typeof v === 'number' && Number.isSafeInteger(v))
          )
        )
          return false;
        break;
      case 'inputs':
      case 'metadata':
        if (!isMapping(v)) return false;
        break;
      case 'dataset':
      case 'scenario':
        if (!nonEmpty(v)) return false;
        break;
      case 'tags':
        if (!Array.isArray(v) || !v.every(nonEmpty)) return false;
        break;
      case 'priority':
        if (!Number.isInteger(v)) return false;
        break;
      case 'expected':
        if (!jsonExact || !expectedAccepted(v)) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/**
 * Verdicts of `expected` values already checked, by their JSON text: cases of a dataset often
 * share their assertions, and zod's parse of the same `expected` on every line was ~18 % of a
 * 100k-case run's CPU against the mock (bench/cpu-per-case.mjs). Only for values read by
 * JSON.parse (`jsonExact`), whose JSON text is exactly the value; bounded like the JSON Schema
 * cache. A value zod refuses is not short-cut: the whole case goes through zod for its messages.
 */
const expectedVerdicts = new Map<string, boolean>();

function expectedAccepted(v: unknown): boolean {
  const key = JSON.stringify(v);
  let ok = expectedVerdicts.get(key);
  if (ok === undefined) {
    ok = caseExpectedSchema.safeParse(v).success;
    if (expectedVerdicts.size >= 1000) expectedVerdicts.clear();
    expectedVerdicts.set(key, ok);
  }
  return ok;
}

function toEntry(
  data: unknown,
  where: Location,
  defaults: CaseDefaults,
  issueContext: () => {
    locate: (path: IssuePath, at: 'value' | 'key') => { line: number; column: number };
    renderPath?: (path: IssuePath) => string;
  },
  jsonExact = false,
): Item {
  if (isPlainCase(data, jsonExact)) return { testCase: normaliseCase(data, defaults), where };
  const parsed = caseSchema.safeParse(data);
  if (!parsed.success) {
    const ctx = issueContext();
    return {
      fatal: false,
      issues: toPlanIssues(parsed.error.issues, {
        file: where.file,
        root: 'case',
        data,
        ...ctx,
      }),
    };
  }
  return { testCase: normaliseCase(data as Record<string, unknown>, defaults), where };
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

async function openCaseFile(
  resolved: string,
  display: string,
  source: CasesSource,
): Promise<FileHandle | Problem> {
  try {
    return await open(resolved, 'r');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const reason =
      code === 'ENOENT'
        ? `case file not found: ${display}`
        : `cannot read case file ${display} (${String(code ?? e)})`;
    const at = planLocations.get(source) ?? noPosition(display);
    return { fatal: true, issues: [issueAt(at, reason)] };
  }
}

/**
 * Lines of a stream, split by hand so the stream's own backpressure applies, handed out one
 * chunk's worth at a time: a yield per line through an async generator costs a promise per line,
 * and at a million lines that churn alone dominated the reader's memory and time (bench S5).
 */
async function* lineBatchesOf(handle: FileHandle): AsyncGenerator<string[]> {
  const stream = handle.createReadStream({ encoding: 'utf8', highWaterMark: 256 * 1024 });
  let rest = '';
  let first = true;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let text = rest + chunk;
      if (first) {
        first = false;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      const lines: string[] = [];
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        lines.push(text.slice(start, end));
        start = nl + 1;
      }
      rest = text.slice(start);
      if (lines.length > 0) yield lines;
    }
    if (rest !== '') yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
  } finally {
    stream.destroy();
  }
}

async function* jsonlItems(
  handle: FileHandle,
  display: string,
  defaults: CaseDefaults,
): AsyncGenerator<Item> {
  let lineNo = 0;
  for await (const batch of lineBatchesOf(handle)) {
    for (const line of batch) {
      lineNo++;
      if (line.trim() === '') continue;
      const where: Location = { file: display, line: lineNo, column: 1, path: '' };
      let data: unknown;
      try {
        data = JSON.parse(line);
      } catch {
        const err = findJsonSyntaxError(line);
        yield {
          fatal: false,
          issues: [
            issueAt(
              { ...where, column: (err?.offset ?? 0) + 1 },
              `invalid JSON: ${err?.message ?? 'not valid JSON'}`,
            ),
          ],
        };
        continue;
      }
      const at = lineNo - 1;
      yield toEntry(data, where, defaults, () => ({ locate: locatorForText(line, at) }), true);
    }
  }
}

async function* jsonItems(
  handle: FileHandle,
  display: string,
  defaults: CaseDefaults,
): AsyncGenerator<Item> {
  let text = await handle.readFile('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const offsets: number[] = [];
  let data: unknown;
  try {
    data = JSON.parse(text);
    findJsonSyntaxError(text, (o) => offsets.push(o));
  } catch {
    const err = findJsonSyntaxError(text);
    const pos = lineIndex(text)(err?.offset ?? 0);
    yield {
      fatal: true,
      issues: [
        issueAt(
          { file: display, ...pos, path: '' },
          `invalid JSON: ${err?.message ?? 'not valid JSON'}`,
        ),
      ],
    };
    return;
  }
  if (!Array.isArray(data)) {
    yield {
      fatal: true,
      issues: [
        issueAt(
          { file: display, line: 1, column: 1, path: '' },
          'expected a JSON array of cases (write one case per line in a .jsonl file for large sets)',
        ),
      ],
    };
    return;
  }
  const position = lineIndex(text);
  let locator: ReturnType<typeof locatorForText> | undefined;
  for (let i = 0; i < data.length; i++) {
    const where: Location = { file: display, ...position(offsets[i] ?? 0), path: `[${i}]` };
    yield toEntry(data[i], where, defaults, () => {
      locator ??= locatorForText(text);
      const loc = locator;
      return {
        locate: (path, at) => loc([i, ...path], at),
        renderPath: (path) => formatPath([i, ...path]),
      };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

type InputType = 'string' | 'number' | 'boolean' | 'json';

/** What a CSV column holds. */
type Column =
  | { readonly kind: 'id' | 'dataset' | 'scenario' | 'tags' | 'priority' | 'timeout' }
  | { readonly kind: 'expected' }
  | { readonly kind: 'expected_item'; readonly key: string }
  | { readonly kind: 'metadata'; readonly key: string }
  | { readonly kind: 'input'; readonly key: string; readonly type: InputType };

const RESERVED = new Set(['id', 'dataset', 'scenario', 'tags', 'priority', 'timeout', 'threshold']);
/** `expected_*` columns whose cells are JSON (a mapping or a list). */
const JSON_CELLS: Readonly<Record<string, string>> = {
  json_path: 'JSON such as {"path": "$.a", "equals": 1}',
  levenshtein_below: 'JSON such as {"value": "hello", "distance": 3}',
  json_schema: 'a JSON Schema as JSON, such as {"type": "object"}',
  contains_all: 'a JSON list of strings, such as ["refund", "order"]',
  contains_any: 'a JSON list of strings, such as ["sorry", "apologise"]',
};
/** `field` and `ignore_case` narrow the row's other expected_* assertions, as in a mapping. */
const EXPECTED_MODIFIERS = ['field', 'ignore_case'] as const;
const EXPECTED_KEYS: readonly string[] = [...ASSERTION_KEYS, ...EXPECTED_MODIFIERS];
const EXPECTED_COLUMNS = EXPECTED_KEYS.map((k) => `expected_${k}`);
const INPUT_TYPES = new Set<string>(['string', 'number', 'boolean', 'json']);

/**
 * Reads a CSV header. Reserved columns map to case fields (`id`, `dataset`, `scenario`, `tags`,
 * `priority`, `timeout`, `expected` as JSON, `expected_<assertion>`, `metadata.<key>`); every
 * other column is an input (`inputs.query` or plain `query`), a string unless its name ends in
 * `:number`, `:boolean` or `:json`.
 */
function parseHeader(
  record: CsvRecord,
  file: string,
): { columns: Column[] } | { issues: PlanIssue[] } {
  const issues: PlanIssue[] = [];
  const columns: Column[] = [];
  const seen = new Map<string, number>();
  for (const [i, raw] of record.fields.entries()) {
    const name = raw.trim();
    const at: Location = {
      file,
      line: record.lines[i] ?? record.line,
      column: record.columns[i] ?? 1,
      path: '',
    };
    const fail = (message: string): void => {
      issues.push(issueAt(at, message));
    };
    if (name === '') {
      fail(`column ${i + 1} has no name`);
      continue;
    }
    const previous = seen.get(name);
    if (previous !== undefined) {
      fail(`duplicate column "${name}" (also column ${previous + 1})`);
      continue;
    }
    seen.set(name, i);
    if (RESERVED.has(name)) {
      columns.push({ kind: name as 'id' });
    } else if (name === 'expected') {
      columns.push({ kind: 'expected' });
    } else if (name.startsWith('expected_')) {
      const key = name.slice('expected_'.length);
      if (!EXPECTED_KEYS.includes(key)) {
        const guess = didYouMean(name, EXPECTED_COLUMNS);
        fail(
          `unknown column "${name}", ${guess === undefined ? `expected one of: ${EXPECTED_COLUMNS.join(', ')}` : `did you mean \`${guess}\`?`}`,
        );
        continue;
      }
      columns.push({ kind: 'expected_item', key });
    } else if (name.startsWith('metadata.') && name.length > 'metadata.'.length) {
      columns.push({ kind: 'metadata', key: name.slice('metadata.'.length) });
    } else if (name === 'inputs' || name === 'metadata') {
      fail(`column "${name}" is reserved; name the columns "${name}.NAME"`);
    } else if (name.startsWith('input.')) {
      fail(`unknown column "${name}", did you mean \`inputs.${name.slice(6)}\`?`);
    } else {
      let key = name.startsWith('inputs.') ? name.slice('inputs.'.length) : name;
      let type: InputType = 'string';
      const colon = key.lastIndexOf(':');
      if (colon > 0 && INPUT_TYPES.has(key.slice(colon + 1))) {
        type = key.slice(colon + 1) as InputType;
        key = key.slice(0, colon);
      }
      if (key === '') {
        fail(`column "${name}" names no input`);
        continue;
      }
      columns.push({ kind: 'input', key, type });
    }
  }
  const hasJson = columns.some((c) => c.kind === 'expected');
  if (hasJson && columns.some((c) => c.kind === 'expected_item')) {
    issues.push(
      issueAt(
        { file, line: record.line, column: 1, path: '' },
        'use either an "expected" column (JSON) or "expected_<assertion>" columns, not both',
      ),
    );
  }
  return issues.length > 0 ? { issues } : { columns };
}

const TRUE = new Set(['true', 'yes', '1']);
const FALSE = new Set(['false', 'no', '0']);
const NUMERIC = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

function csvRow(
  record: CsvRecord,
  columns: readonly Column[],
  header: readonly string[],
  file: string,
  defaults: CaseDefaults,
): Item {
  const where: Location = { file, line: record.line, column: 1, path: '' };
  const obj: Record<string, unknown> = {};
  const inputs: Record<string, unknown> = {};
  const expected: Record<string, unknown> = {};
  const metadata: Record<string, unknown> = {};
  /** Path in `obj` -> column index, to point errors at the cell. */
  const cellOf = new Map<string, number>();
  const issues: PlanIssue[] = [];
  const cellAt = (i: number): Location => ({
    file,
    line: record.lines[i] ?? record.line,
    column: record.columns[i] ?? 1,
    path: header[i] ?? '',
  });
  columns.forEach((col, i) => {
    const cell = record.fields[i] ?? '';
    const empty = cell.trim() === '';
    switch (col.kind) {
      case 'input': {
        cellOf.set(`inputs.${col.key}`, i);
        if (col.type === 'string') inputs[col.key] = cell;
        else if (empty) break;
        else if (col.type === 'number') {
          if (NUMERIC.test(cell)) inputs[col.key] = Number(cell);
          else issues.push(issueAt(cellAt(i), invalidValueMessage(cell, 'a number'), cell));
        } else if (col.type === 'boolean') {
          const v = cell.trim().toLowerCase();
          if (TRUE.has(v)) inputs[col.key] = true;
          else if (FALSE.has(v)) inputs[col.key] = false;
          else issues.push(issueAt(cellAt(i), invalidValueMessage(cell, 'true or false'), cell));
        } else {
          try {
            inputs[col.key] = JSON.parse(cell);
          } catch {
            issues.push(issueAt(cellAt(i), invalidValueMessage(cell, 'JSON'), cell));
          }
        }
        break;
      }
      case 'metadata':
        cellOf.set(`metadata.${col.key}`, i);
        if (!empty) metadata[col.key] = cell;
        break;
      case 'expected':
        cellOf.set('expected', i);
        if (empty) break;
        try {
          obj.expected = JSON.parse(cell);
        } catch {
          issues.push(issueAt(cellAt(i), invalidValueMessage(cell, 'JSON assertions'), cell));
        }
        break;
      case 'expected_item': {
        cellOf.set(`expected.${col.key}`, i);
        if (empty) break;
        if (col.key === 'is_json' || col.key === 'ignore_case') {
          const v = cell.trim().toLowerCase();
          if (TRUE.has(v)) expected[col.key] = true;
          else if (!FALSE.has(v)) {
            issues.push(issueAt(cellAt(i), invalidValueMessage(cell, 'true or false'), cell));
          }
        } else if (JSON_CELLS[col.key] !== undefined) {
          try {
            expected[col.key] = JSON.parse(cell);
          } catch {
            issues.push(issueAt(cellAt(i), invalidValueMessage(cell, JSON_CELLS[col.key]!), cell));
          }
        } else expected[col.key] = cell;
        break;
      }
      case 'tags': {
        cellOf.set('tags', i);
        const tags = cell
          .split(/[;,]/)
          .map((t) => t.trim())
          .filter((t) => t !== '');
        if (tags.length > 0) obj.tags = tags;
        break;
      }
      default:
        cellOf.set(col.kind, i);
        if (!empty) obj[col.kind] = cell;
    }
  });
  if (issues.length > 0) return { fatal: false, issues };
  obj.inputs = inputs;
  // A field or ignore_case with no assertion in the row narrows nothing.
  if (Object.keys(expected).some((k) => (ASSERTION_KEYS as readonly string[]).includes(k)))
    obj.expected = expected;
  if (Object.keys(metadata).length > 0) obj.metadata = metadata;
  const cellFor = (path: IssuePath): number | undefined => {
    const [a, b] = path;
    if ((a === 'inputs' || a === 'metadata' || a === 'expected') && typeof b === 'string') {
      return cellOf.get(`${a}.${b}`) ?? cellOf.get(a);
    }
    return cellOf.get(String(a));
  };
  return toEntry(obj, where, defaults, () => ({
    locate: (path) => {
      const i = cellFor(path);
      if (i === undefined) return { line: record.line, column: 1 };
      return { line: record.lines[i] ?? record.line, column: record.columns[i] ?? 1 };
    },
    renderPath: (path) => {
      const i = cellFor(path);
      return i === undefined ? formatPath(path) : (header[i] ?? '');
    },
  }));
}

async function* csvItems(
  handle: FileHandle,
  display: string,
  defaults: CaseDefaults,
): AsyncGenerator<Item> {
  const parser = new CsvParser();
  const stream = handle.createReadStream({ encoding: 'utf8', highWaterMark: 256 * 1024 });
  let columns: Column[] | undefined;
  let header: string[] = [];
  let headerLine = 1;
  function* handle_(records: CsvRecord[]): Generator<Item> {
    for (const record of records) {
      if (columns === undefined) {
        const parsed = parseHeader(record, display);
        if ('issues' in parsed) {
          yield { fatal: true, issues: parsed.issues };
          return;
        }
        columns = parsed.columns;
        header = record.fields.map((f) => f.trim());
        headerLine = record.line;
        continue;
      }
      if (record.fields.length !== columns.length) {
        yield {
          fatal: false,
          issues: [
            issueAt(
              { file: display, line: record.line, column: 1, path: '' },
              `row has ${record.fields.length} column${record.fields.length === 1 ? '' : 's'}, expected ${columns.length} like the header (line ${headerLine})`,
            ),
          ],
        };
        continue;
      }
      yield csvRow(record, columns, header, display, defaults);
    }
  }
  try {
    try {
      for await (const chunk of stream as AsyncIterable<string>) {
        for (const item of handle_(parser.push(chunk))) {
          yield item;
          if (isProblem(item) && item.fatal) return;
        }
      }
      for (const item of handle_(parser.end())) {
        yield item;
        if (isProblem(item) && item.fatal) return;
      }
    } catch (e) {
      if (!(e instanceof CsvSyntaxError)) throw e;
      yield {
        fatal: true,
        issues: [issueAt({ file: display, line: e.line, column: e.column, path: '' }, e.message)],
      };
    }
  } finally {
    stream.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

async function* sourceItems(source: CasesSource, ctx: SourceContext): AsyncGenerator<Item> {
  if (source.kind === 'inline') {
    let i = 0;
    for (const testCase of source.cases) {
      yield {
        testCase,
        where: planLocations.get(testCase) ?? noPosition(ctx.label, `cases[${i}]`),
      };
      i++;
    }
    if (source.cases.length === 0) {
      const at = planLocations.get(source) ?? noPosition(ctx.label, 'cases');
      yield { fatal: true, code: 'EMPTY_PLAN', issues: [issueAt(at, 'the case list is empty')] };
    }
    return;
  }
  const display = displayPath(ctx.baseDir, source.path);
  const opened = await openCaseFile(display, display, source);
  if ('issues' in opened) {
    yield opened;
    return;
  }
  const items =
    source.format === 'csv'
      ? csvItems(opened, display, ctx.defaults)
      : source.format === 'json'
        ? jsonItems(opened, display, ctx.defaults)
        : jsonlItems(opened, display, ctx.defaults);
  let count = 0;
  let problems = 0;
  try {
    for await (const item of items) {
      if (isProblem(item)) problems++;
      else count++;
      yield item;
      if (isProblem(item) && item.fatal) return;
    }
  } finally {
    await opened.close();
  }
  if (count === 0 && problems === 0) {
    const at = planLocations.get(source);
    const issue =
      at === undefined
        ? issueAt(noPosition(display), 'the case file has no cases')
        : issueAt(at, `the case file ${display} has no cases`);
    yield { fatal: true, code: 'EMPTY_PLAN', issues: [issue] };
  }
}

function toSource(
  source: string | readonly unknown[] | CasesSource,
  format?: CaseFileFormat,
): CasesSource | readonly unknown[] {
  if (typeof source === 'string') {
    return { kind: 'file', path: source, format: format ?? formatFromPath(source) ?? 'jsonl' };
  }
  return source;
}

async function* rawListItems(list: readonly unknown[], ctx: SourceContext): AsyncGenerator<Item> {
  for (let i = 0; i < list.length; i++) {
    const where = noPosition(ctx.label, `[${i}]`);
    yield toEntry(list[i], where, ctx.defaults, () => ({
      locate: () => ({ line: 0, column: 0 }),
      renderPath: (path) => formatPath([i, ...path]),
    }));
  }
  if (list.length === 0) {
    yield {
      fatal: true,
      code: 'EMPTY_PLAN',
      issues: [issueAt(noPosition(ctx.label), 'the case list is empty')],
    };
  }
}

function fail(problem: Problem): never {
  throw new PlanError(problem.issues, problem.code ?? 'CASES_INVALID');
}

function describeWhere(where: Location): string {
  if (where.line > 0) return `${where.file}:${where.line}:${where.column}`;
  return where.path === '' ? where.file : `${where.file} ${where.path}`;
}

function duplicateIssue(
  testCase: TestCase,
  where: Location,
  first: Location | undefined,
): PlanIssue {
  const at = first === undefined ? '' : `, first at ${describeWhere(first)}`;
  return issueAt(where, `duplicate case id ${JSON.stringify(testCase.id)}${at}`, testCase.id);
}

/**
 * Loads every `assert_module` a plan names, each on a worker thread with a time limit (module-
 * worker.ts), and refuses the plan when one cannot be loaded or lacks the export: found now,
 * not on the first case that reaches it.
 */
async function checkModules(
  manifest: RunManifest,
  modules: Iterable<{ module: string; name: string; where: Location }>,
): Promise<void> {
  const issues: PlanIssue[] = [];
  let inPlan = false;
  for (const m of modules) {
    const problem = await moduleProblem(modulePath(m.module, manifest.baseDir), m.name);
    if (problem === undefined) continue;
    const ref = `${m.module}${m.name === 'default' ? '' : `#${m.name}`}`;
    const path =
      m.where.path === '' ? 'expected.assert_module' : `${m.where.path}.expected.assert_module`;
    issues.push(
      issueAt({ ...m.where, path }, `${JSON.stringify(ref)} is invalid: ${problem}`, ref),
    );
    if (m.where.file === (manifest.file ?? '<plan>')) inPlan = true;
  }
  if (issues.length > 0) throw new PlanError(issues, inPlan ? 'PLAN_INVALID' : 'CASES_INVALID');
}

/** Options of `readCases`. */
export interface ReadCasesOptions {
  /** Directory relative paths resolve against. @default '.' */
  readonly baseDir?: string;
  /** Overrides the format the file extension implies. */
  readonly format?: CaseFileFormat;
  /** Defaults for cases that do not set them. */
  readonly dataset?: string;
  readonly scenario?: string;
  readonly priority?: number;
  /** Names an inline list in messages. @default '<cases>' */
  readonly label?: string;
}

/**
 * Streams the cases of one source: a path to a JSONL / CSV / JSON file, a list of case objects,
 * or a manifest's `CasesSource`. Each case is validated; the first bad one throws a `PlanError`
 * (code `CASES_INVALID`, `EMPTY_PLAN` for a file without cases), as do duplicate ids.
 *
 * @example
 * ```ts
 * for await (const testCase of readCases('cases.jsonl', { baseDir: 'examples/dify-workflow' })) {
 *   console.log(testCase.id, testCase.inputs);
 * }
 * ```
 */
export async function* readCases(
  source: string | readonly unknown[] | CasesSource,
  options: ReadCasesOptions = {},
): AsyncGenerator<TestCase> {
  const ctx: SourceContext = {
    baseDir: options.baseDir ?? '.',
    label: options.label ?? '<cases>',
    defaults: {
      dataset: options.dataset,
      scenario: options.scenario,
      priority: options.priority,
    },
  };
  const resolved = toSource(source, options.format);
  const items = () =>
    Array.isArray(resolved)
      ? rawListItems(resolved, ctx)
      : sourceItems(resolved as CasesSource, ctx);
  const seen = new IdSet();
  for await (const item of items()) {
    if (isProblem(item)) fail(item);
    if (!seen.add(item.testCase.id)) {
      const first = await findFirst([items], item.testCase.id);
      if (!sameLocation(first, item.where)) {
        fail({ fatal: true, issues: [duplicateIssue(item.testCase, item.where, first)] });
      }
    }
    yield item.testCase;
  }
}

/** True when two locations name the same place (a confirmed first occurrence is not a duplicate). */
function sameLocation(a: Location | undefined, b: Location): boolean {
  return a !== undefined && a.file === b.file && a.line === b.line && a.path === b.path;
}

/** Re-reads sources to find where an id first appeared (only on the duplicate-id error path). */
async function findFirst(
  sources: readonly (() => AsyncGenerator<Item>)[],
  id: string,
): Promise<Location | undefined> {
  for (const make of sources) {
    for await (const item of make()) {
      if (!isProblem(item) && item.testCase.id === id) return item.where;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Several datasets, selection
// ---------------------------------------------------------------------------------------------

/**
 * Smooth weighted round-robin (as nginx balances upstreams): each dataset gets its share of
 * the order, spread evenly, the same every time. An exhausted dataset drops out.
 */
async function* interleave(
  streams: readonly { items: AsyncGenerator<Item>; weight: number }[],
): AsyncGenerator<Item> {
  const active = streams.map((s) => ({ ...s, current: 0 }));
  try {
    while (active.length > 0) {
      let total = 0;
      let best = active[0];
      for (const s of active) {
        s.current += s.weight;
        total += s.weight;
        if (best === undefined || s.current > best.current) best = s;
      }
      if (best === undefined) return;
      best.current -= total;
      const next = await best.items.next();
      if (next.done === true) {
        active.splice(active.indexOf(best), 1);
        continue;
      }
      yield next.value;
    }
  } finally {
    for (const s of active) await s.items.return(undefined);
  }
}

function sourcesOf(manifest: RunManifest): (() => AsyncGenerator<Item>)[] {
  const label = manifest.file ?? '<plan>';
  return manifest.datasets.map(
    (ds) => () =>
      sourceItems(ds.cases, {
        baseDir: manifest.baseDir,
        label,
        defaults: { dataset: ds.name, scenario: ds.scenario, priority: ds.priority },
      }),
  );
}

function allItems(manifest: RunManifest): AsyncGenerator<Item> {
  const makers = sourcesOf(manifest);
  return interleave(
    makers.map((make, i) => ({ items: make(), weight: manifest.datasets[i]?.weight ?? 1 })),
  );
}

async function firstInManifest(manifest: RunManifest, id: string): Promise<Location | undefined> {
  for await (const item of allItems(manifest)) {
    if (!isProblem(item) && item.testCase.id === id) return item.where;
  }
  return undefined;
}

function tagged(testCase: TestCase, manifest: RunManifest): boolean {
  const { tags, excludeTags } = manifest.select;
  if (tags !== undefined && !tags.some((t) => testCase.tags.includes(t))) return false;
  if (excludeTags?.some((t) => testCase.tags.includes(t)) === true) return false;
  return true;
}

function* repeated(testCase: TestCase, times: number): Generator<TestCase> {
  if (times <= 1) {
    yield testCase;
    return;
  }
  for (let k = 1; k <= times; k++) yield { ...testCase, id: `${testCase.id}#${k}`, repeatIndex: k };
}

function nothingSelected(manifest: RunManifest, read: number): PlanError {
  const s = manifest.select;
  const parts: string[] = [];
  if (s.tags !== undefined) parts.push(`tags ${s.tags.join(', ')}`);
  if (s.excludeTags !== undefined) parts.push(`exclude_tags ${s.excludeTags.join(', ')}`);
  if (s.range !== undefined) parts.push(`range ${s.range.from}-${s.range.to ?? ''}`);
  const at = planLocations.get(s) ?? noPosition(manifest.file ?? '<plan>', 'select');
  return new PlanError(
    [
      issueAt(
        at,
        `no case selected: ${parts.join('; ')} matched none of the ${read} case${read === 1 ? '' : 's'} read`,
      ),
    ],
    'EMPTY_PLAN',
  );
}

/** Options of `iterateCases`. */
export interface IterateCasesOptions {
  /**
   * Keep reading (and validating) to the end of every file even after `select.range` has
   * ended. `checkCases` uses it. @default false
   */
  readonly readAll?: boolean;
  /** Called once at the end with the number of cases read (before selection). */
  readonly onEnd?: (stats: { read: number; selected: number }) => void;
}

/**
 * All cases of a plan, in run order: datasets interleaved by weight, then `select` applied
 * (tags, range, seeded sample, repeat). Throws `PlanError` at the first bad case or duplicate id,
 * and `EMPTY_PLAN` if nothing is selected.
 *
 * @example
 * ```ts
 * const manifest = await loadPlan('plan.yaml');
 * for await (const testCase of iterateCases(manifest)) queue(testCase);
 * ```
 */
export async function* iterateCases(
  manifest: RunManifest,
  options: IterateCasesOptions = {},
): AsyncGenerator<TestCase> {
  const { range, sample, repeat } = manifest.select;
  const seen = new IdSet();
  let read = 0;
  let position = 0;
  let emitted = 0;
  const random = sample === undefined ? undefined : seededRandom(sample.seed);
  const reservoir: { position: number; testCase: TestCase }[] = [];
  for await (const item of allItems(manifest)) {
    if (isProblem(item)) fail(item);
    const { testCase, where } = item;
    if (!seen.add(testCase.id)) {
      const first = await firstInManifest(manifest, testCase.id);
      if (!sameLocation(first, where)) {
        fail({ fatal: true, issues: [duplicateIssue(testCase, where, first)] });
      }
    }
    read++;
    if (!tagged(testCase, manifest)) continue;
    position++;
    if (range !== undefined) {
      if (position < range.from) continue;
      if (range.to !== undefined && position > range.to) {
        if (options.readAll === true) continue;
        break;
      }
    }
    if (sample !== undefined && random !== undefined) {
      const seenInSample = position - (range?.from ?? 1) + 1;
      if (reservoir.length < sample.size) reservoir.push({ position, testCase });
      else {
        const j = Math.floor(random() * seenInSample);
        if (j < sample.size) reservoir[j] = { position, testCase };
      }
      continue;
    }
    emitted++;
    yield* repeated(testCase, repeat);
  }
  if (sample !== undefined) {
    reservoir.sort((a, b) => a.position - b.position);
    for (const { testCase } of reservoir) {
      emitted++;
      yield* repeated(testCase, repeat);
    }
  }
  options.onEnd?.({ read, selected: emitted * repeat });
  if (emitted === 0) throw nothingSelected(manifest, read);
}

/** What `checkCases` found. */
export interface CaseStats {
  /** Cases in all sources. */
  readonly total: number;
  /** Cases that will run, repeats included. */
  readonly selected: number;
  /** Cases per dataset name (`''` for a plan's plain `cases:`). */
  readonly byDataset: Readonly<Record<string, number>>;
}

/**
 * Reads every case of a plan once, without running anything: validates every line, finds
 * duplicate ids, checks that files exist and are not empty and that `select` keeps something.
 * Reports up to `maxIssues` problems in one `PlanError`. `loadPlan` calls it unless told not to.
 */
export async function checkCases(
  manifest: RunManifest,
  options: { maxIssues?: number } = {},
): Promise<CaseStats> {
  const maxIssues = options.maxIssues ?? 50;
  const issues: PlanIssue[] = [];
  let code: PlanErrorCode | undefined;
  const byDataset: Record<string, number> = {};
  const seen = new IdSet();
  const duplicates: Entry[] = [];
  let total = 0;
  let kept = 0;
  // Each `assert_module` (module, export) once, where it was first written.
  const modules = new Map<string, { module: string; name: string; where: Location }>();
  // The first `llm_rubric` or `similar` of a plan without a `grader:`: nothing could grade it.
  let noGrader: { where: Location; kind: 'llm_rubric' | 'similar'; value: string } | undefined;
  for await (const item of allItems(manifest)) {
    if (isProblem(item)) {
      issues.push(...item.issues);
      // EMPTY_PLAN only when every problem is an empty source.
      code = item.code === 'EMPTY_PLAN' ? (code ?? 'EMPTY_PLAN') : 'CASES_INVALID';
      if (issues.length >= maxIssues) break;
      continue;
    }
    total++;
    for (const a of item.testCase.expected) {
      if (
        (a.type === 'llm_rubric' || a.type === 'similar') &&
        manifest.grader === undefined &&
        noGrader === undefined
      )
        noGrader = {
          where: item.where,
          kind: a.type,
          value: a.type === 'llm_rubric' ? a.rubric : a.value,
        };
      if (a.type !== 'assert_module') continue;
      const key = `${a.module}#${a.export}`;
      if (!modules.has(key))
        modules.set(key, { module: a.module, name: a.export, where: item.where });
    }
    const key = item.testCase.dataset ?? '';
    byDataset[key] = (byDataset[key] ?? 0) + 1;
    if (tagged(item.testCase, manifest)) kept++;
    if (!seen.add(item.testCase.id)) {
      duplicates.push(item);
      if (issues.length + duplicates.length >= maxIssues) break;
    }
  }
  for (const dup of duplicates) {
    const first = await firstInManifest(manifest, dup.testCase.id);
    // A hash collision of two distinct ids, not a duplicate: the first occurrence is itself.
    if (sameLocation(first, dup.where)) continue;
    issues.push(duplicateIssue(dup.testCase, dup.where, first));
    code = 'CASES_INVALID';
  }
  if (noGrader !== undefined) {
    const w = noGrader.where;
    issues.push(
      issueAt(
        {
          ...w,
          path: w.path === '' ? `expected.${noGrader.kind}` : `${w.path}.expected.${noGrader.kind}`,
        },
        `needs a grader: add grader: {base_url, model, ...} to the plan (see docs/plans.md); its value: ${JSON.stringify(noGrader.value)}`,
        noGrader.value,
      ),
    );
    code = w.file === (manifest.file ?? '<plan>') ? 'PLAN_INVALID' : (code ?? 'CASES_INVALID');
  }
  if (issues.length > 0) throw new PlanError(issues.slice(0, maxIssues), code ?? 'CASES_INVALID');
  await checkModules(manifest, modules.values());
  const { range, sample, repeat } = manifest.select;
  const from = range?.from ?? 1;
  let count = Math.max(0, Math.min(kept, range?.to ?? kept) - from + 1);
  if (sample !== undefined) count = Math.min(count, sample.size);
  if (count === 0) throw nothingSelected(manifest, total);
  return { total, selected: count * repeat, byDataset };
}
