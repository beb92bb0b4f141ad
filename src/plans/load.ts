/**
 * Loading a plan: YAML or JSON text -> `${VAR}` interpolation on the parsed tree -> zod
 * validation -> a normalised `RunManifest`. Every problem found is reported at once, each with
 * its file, line and column; nothing is returned when there is any.
 */

import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { checkCases, type Location, planLocations } from './cases.js';
import {
  type Env,
  formatPath,
  type InterpolatedValue,
  interpolateDocument,
  isSensitiveHeader,
  pathKey,
  redactUrl,
} from './env.js';
import { PlanError, type PlanErrorCode, type PlanIssue } from './errors.js';
import { type IssuePath, type Locator, toPlanIssues, valueAt, yamlLocator } from './issues.js';
import { findJsonSyntaxError, lineIndex } from './json.js';
import {
  formatFromPath,
  normalisePlan,
  planSchema,
  type RunManifest,
  type SecretRef,
  toRange,
} from './schema.js';
import { documentData, parseYamlDocument, planIssue, throwIssues } from './yaml.js';

/** Options of `parsePlan`. */
export interface ParsePlanOptions {
  /** The file the text came from: named in messages; its directory is the default `baseDir`. */
  readonly file?: string;
  /** Directory that case file paths resolve against. @default dirname(file), or '.' */
  readonly baseDir?: string;
  /** Variables for `${VAR}`. @default process.env */
  readonly env?: Env;
  /** @default 'json' for a `.json` file, else 'yaml' (which reads JSON too) */
  readonly format?: 'yaml' | 'json';
}

/** Options of `loadPlan`. */
export interface LoadPlanOptions extends Omit<ParsePlanOptions, 'file'> {
  /**
   * Read every case file once before returning (validation, duplicate ids, empty files,
   * empty selection), so that nothing runs when a case is bad. @default true
   */
  readonly checkCases?: boolean;
}

type Obj = Record<string, unknown>;

/** Optional sections written with nothing under them (`execution_policy:` alone) are absent. */
function dropEmptySections(data: Obj): void {
  const sections = ['target', 'execution_policy', 'select', 'description'];
  for (const key of sections) if (data[key] === null) delete data[key];
  const policy = data.execution_policy;
  if (policy !== null && typeof policy === 'object' && !Array.isArray(policy)) {
    for (const key of ['rate_control', 'retry_policy', 'stop_conditions']) {
      if ((policy as Obj)[key] === null) delete (policy as Obj)[key];
    }
  }
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Checks that span several keys, run on whatever shape the data has. */
function crossChecks(data: Obj, locate: Locator, file: string): PlanIssue[] {
  const issues: PlanIssue[] = [];
  const add = (
    path: IssuePath,
    message: string,
    value?: unknown,
    at: 'value' | 'key' = 'value',
  ) => {
    const pos = locate(path, at);
    issues.push({
      file,
      line: pos.line,
      column: pos.column,
      path: formatPath(path),
      message,
      ...(value === undefined ? {} : { value }),
    });
  };
  const hasCases = data.cases !== undefined;
  const hasDatasets = data.datasets !== undefined;
  if (!hasCases && !hasDatasets) {
    add(['cases'], 'missing, expected a path to a case file or a list of cases (or `datasets`)');
  }
  if (hasCases && hasDatasets) {
    add(['datasets'], 'give either `cases` or `datasets`, not both', undefined, 'key');
  }
  const checkPath = (path: IssuePath, value: unknown, format: unknown) => {
    if (typeof value === 'string' && value !== '' && format === undefined) {
      if (formatFromPath(value) === undefined) {
        add(
          path,
          `${JSON.stringify(value)} is invalid, expected a path ending in .jsonl, .ndjson, .csv or .json (or set \`format\`)`,
          value,
        );
      }
    }
  };
  checkPath(['cases'], data.cases, undefined);
  if (Array.isArray(data.datasets)) {
    const names = new Map<string, number>();
    data.datasets.forEach((d, i) => {
      if (!isObj(d)) return;
      checkPath(['datasets', i, 'cases'], d.cases, d.format);
      if (typeof d.name === 'string') {
        const first = names.get(d.name);
        if (first !== undefined) {
          const pos = locate(['datasets', first, 'name'], 'value');
          add(
            ['datasets', i, 'name'],
            `duplicate dataset name ${JSON.stringify(d.name)}, first at ${file}:${pos.line}:${pos.column}`,
            d.name,
          );
        } else names.set(d.name, i);
      }
    });
  }
  const select = data.select;
  if (isObj(select) && select.range !== undefined) {
    const parsed = (() => {
      try {
        return toRange(select.range);
      } catch {
        return undefined;
      }
    })();
    const from = parsed?.from;
    const to = parsed?.to;
    if (typeof select.range === 'string' && from !== undefined && from < 1) {
      add(
        ['select', 'range'],
        `${JSON.stringify(select.range)} is invalid, expected positions from 1`,
        select.range,
      );
    } else if (from !== undefined && to !== undefined && Number.isFinite(from) && to < from) {
      add(
        ['select', 'range'],
        `${JSON.stringify(select.range)} is invalid, expected from <= to`,
        select.range,
      );
    }
  }
  const policy = data.execution_policy;
  if (isObj(policy) && policy.min_concurrency !== undefined) {
    const min = Number(policy.min_concurrency);
    const ceiling = policy.concurrency === undefined ? 10 : Number(policy.concurrency);
    if (Number.isInteger(min) && Number.isInteger(ceiling) && min > ceiling) {
      add(
        ['execution_policy', 'min_concurrency'],
        `${min} is invalid, expected at most the concurrency (${ceiling})`,
        policy.min_concurrency,
      );
    }
  }
  return issues;
}

/** `target.api_key` always; a header when it came from `${...}` or is named like a credential. */
function collectSecrets(
  data: Obj,
  interpolated: ReadonlyMap<string, InterpolatedValue>,
): SecretRef[] {
  const target = data.target;
  if (!isObj(target)) return [];
  const out: SecretRef[] = [];
  const ref = (rawPath: (string | number)[], path: string[]): SecretRef => {
    const template = interpolated.get(pathKey(rawPath))?.template;
    return template === undefined ? { path } : { path, template };
  };
  if (target.api_key !== undefined) out.push(ref(['target', 'api_key'], ['target', 'apiKey']));
  // A URL that holds credentials (`https://user:pass@host`, `?api_key=...`) is a secret too, so
  // whatever carries the target elsewhere (a distributed run's Redis) carries its `${VAR}`.
  for (const [field, key] of [
    ['base_url', 'baseUrl'],
    ['url', 'url'],
  ] as const) {
    const url = target[field];
    if (typeof url === 'string' && redactUrl(url) !== url)
      out.push(ref(['target', field], ['target', key]));
  }
  if (isObj(target.headers)) {
    for (const name of Object.keys(target.headers)) {
      const rawPath = ['target', 'headers', name];
      if (interpolated.has(pathKey(rawPath)) || isSensitiveHeader(name)) {
        out.push(ref(rawPath, ['target', 'headers', name]));
      }
    }
  }
  return out;
}

function isSecretPath(path: IssuePath): boolean {
  return path[0] === 'target' && (path[1] === 'api_key' || path[1] === 'headers');
}

/**
 * Parses and validates a plan from text. Synchronous: case files are not read here (see
 * `checkCases`, or use `loadPlan`).
 *
 * @example
 * ```ts
 * const manifest = parsePlan(
 *   'workflow_id: smoke\ncases: [{ inputs: { query: hi }, expected: { contains: hello } }]',
 * );
 * manifest.executionPolicy.concurrency; // 10
 * ```
 * @throws PlanError with code `PLAN_INVALID` (or `ENV_MISSING` when the only problems are unset
 *   variables), listing every problem as `file:line:column: key.path: message`.
 */
export function parsePlan(text: string, options: ParsePlanOptions = {}): RunManifest {
  const file = options.file ?? '<plan>';
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const format = options.format ?? (file.toLowerCase().endsWith('.json') ? 'json' : 'yaml');
  if (format === 'json') {
    const err = findJsonSyntaxError(source);
    if (err !== undefined) {
      const pos = lineIndex(source)(err.offset);
      throw new PlanError([planIssue(file, pos.line, pos.column, `invalid JSON: ${err.message}`)]);
    }
  }
  const { doc, lineCounter } = parseYamlDocument(source, file);
  const interpolation = interpolateDocument(doc, {
    env: options.env ?? process.env,
    file,
    lineCounter,
  });
  const data = documentData(doc, file);
  const locate = yamlLocator(doc, lineCounter);
  if (!isObj(data)) {
    const pos = locate([], 'value');
    const what =
      data === null || data === undefined ? 'the plan is empty' : 'the plan is not a mapping';
    throw new PlanError([
      planIssue(
        file,
        pos.line,
        pos.column,
        `${what}, expected a mapping with workflow_id and cases`,
      ),
    ]);
  }
  dropEmptySections(data);
  const parsed = planSchema.safeParse(data);
  const schemaIssues = parsed.success
    ? []
    : toPlanIssues(parsed.error.issues, {
        file,
        root: 'plan',
        data,
        locate,
        interpolated: interpolation.values,
        isSecret: isSecretPath,
      });
  throwIssues(interpolation.issues, [...schemaIssues, ...crossChecks(data, locate, file)]);

  const located = (path: readonly (string | number)[]): Location => ({
    file,
    ...locate(path, 'value'),
    path: formatPath(path),
  });
  const inlineIds = new Map<string, Location>();
  const duplicates: PlanIssue[] = [];
  const manifest = normalisePlan(data, {
    secrets: collectSecrets(data, interpolation.values),
    file: options.file,
    baseDir: options.baseDir ?? (options.file === undefined ? '.' : dirname(options.file)),
    onInlineCase: (testCase, path) => {
      const at = located(path);
      planLocations.set(testCase, at);
      const first = inlineIds.get(testCase.id);
      if (first === undefined) {
        inlineIds.set(testCase.id, at);
        return;
      }
      const given = valueAt(data, [...path, 'id']).present;
      const idAt = given ? located([...path, 'id']) : at;
      duplicates.push({
        ...idAt,
        message: `duplicate case id ${JSON.stringify(testCase.id)}${given ? '' : ' (derived from inputs, dataset and scenario)'}, first at ${first.file}:${first.line}:${first.column}`,
        value: testCase.id,
      });
    },
  });
  if (duplicates.length > 0) throw new PlanError(duplicates, 'PLAN_INVALID');
  manifest.datasets.forEach((ds, i) => {
    const path = data.datasets === undefined ? ['cases'] : ['datasets', i, 'cases'];
    planLocations.set(ds.cases, located(path));
  });
  if (data.select !== undefined) planLocations.set(manifest.select, located(['select']));
  return manifest;
}

/**
 * Reads, validates and normalises a plan file (YAML, or JSON for `.json`), then reads its case
 * files once to validate them (unless `checkCases: false`).
 *
 * @example
 * ```ts
 * const manifest = await loadPlan('examples/dify-workflow/plan.yaml');
 * for await (const testCase of iterateCases(manifest)) console.log(testCase.id);
 * ```
 * @throws PlanError: `PLAN_NOT_FOUND`, `PLAN_INVALID`, `ENV_MISSING`, `CASES_INVALID`, `EMPTY_PLAN`.
 */
export async function loadPlan(path: string, options: LoadPlanOptions = {}): Promise<RunManifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const message =
      code === 'ENOENT'
        ? 'plan file not found'
        : code === 'EISDIR'
          ? 'is a directory, expected a plan file'
          : `cannot read the plan file (${String(code ?? e)})`;
    const errorCode: PlanErrorCode = 'PLAN_NOT_FOUND';
    throw new PlanError([planIssue(path, 0, 0, message)], errorCode, { cause: e });
  }
  const manifest = parsePlan(text, { ...options, file: path });
  if (options.checkCases !== false) await checkCases(manifest);
  return manifest;
}
