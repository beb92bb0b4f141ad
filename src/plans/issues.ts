/**
 * From zod issues and YAML nodes to `PlanIssue`s: a position for every path, a value shown
 * safely, "expected ..." wording, and "did you mean" for misspelled keys and values.
 */

import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
} from 'yaml';
import type { z } from 'zod';
import { formatPath, type InterpolatedValue, pathKey, REDACTED, redactUrl } from './env.js';
import { invalidValueMessage, type PlanIssue } from './errors.js';
import { allowedKeysAt, PLAN_KEY_PATHS } from './schema.js';
import { didYouMean } from './suggest.js';

export type IssuePath = readonly PropertyKey[];

/** Where a path points: at its value, or at its key (unknown keys). */
export type Locator = (path: IssuePath, at: 'value' | 'key') => { line: number; column: number };

function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

/**
 * Positions from a parsed YAML (or JSON) document. A path that does not exist (a missing key)
 * resolves to the key of the deepest mapping that does, so "missing" points at its parent.
 * `lineOffset` shifts lines, for a document parsed from one line of a JSONL file.
 */
export function yamlLocator(doc: Document, lineCounter: LineCounter, lineOffset = 0): Locator {
  const at = (offset: number | undefined) => {
    const p = lineCounter.linePos(offset ?? 0);
    return { line: p.line + lineOffset, column: p.col };
  };
  return (path, mode) => {
    let node: unknown = doc.contents;
    let keyNode: Node | undefined;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => keyOf(p) === String(seg));
        if (pair === undefined) return at(keyNode?.range?.[0] ?? (node as Node).range?.[0]);
        keyNode = isScalar(pair.key) ? pair.key : undefined;
        node = pair.value;
        if (node === null || node === undefined) return at(keyNode?.range?.[0]);
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        node = node.items[seg];
        keyNode = undefined;
      } else {
        break;
      }
    }
    if (mode === 'key' && keyNode !== undefined) return at(keyNode.range?.[0]);
    return at((node as Node | null)?.range?.[0] ?? keyNode?.range?.[0]);
  };
}

/** Parses JSON or YAML text only to find positions (the error path: speed does not matter). */
export function locatorForText(text: string, lineOffset = 0): Locator {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  return yamlLocator(doc, lineCounter, lineOffset);
}

/** The value at a path, and whether the key is there at all. */
export function valueAt(data: unknown, path: IssuePath): { present: boolean; value: unknown } {
  let cur: unknown = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, seg)) {
      return { present: false, value: undefined };
    }
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return { present: true, value: cur };
}

export interface IssueContext {
  readonly file: string;
  /** Which schema the paths start in: a whole plan or one case. */
  readonly root: 'plan' | 'case';
  /** The data as written (after interpolation), to show the bad value. */
  readonly data: unknown;
  readonly locate: Locator;
  /** Values that came from `${...}`: their template is shown instead. */
  readonly interpolated?: ReadonlyMap<string, InterpolatedValue>;
  /** Paths whose values must never be shown. */
  readonly isSecret?: (path: IssuePath) => boolean;
  /** Renders a path for the message; defaults to `formatPath`. */
  readonly renderPath?: (path: IssuePath) => string;
}

type ZodIssue = z.core.$ZodIssue;

function isRootTypeMismatch(issue: ZodIssue): boolean {
  return issue.path.length === 0 && issue.code === 'invalid_type';
}

/** Unions report every branch; keep the branch that got furthest (not a plain type mismatch). */
function flatten(issues: readonly ZodIssue[], prefix: IssuePath = []): ZodIssue[] {
  const out: ZodIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const branch = issue.errors.find((errs) => !errs.every(isRootTypeMismatch));
      if (branch !== undefined) {
        out.push(...flatten(branch, path));
        continue;
      }
    }
    out.push({ ...issue, path } as ZodIssue);
  }
  return out;
}

function quote(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

/** A suggestion suffix for a misspelled enum value. */
function valueHint(value: unknown, values: readonly unknown[]): string {
  if (typeof value !== 'string') return '';
  const strings = values.filter((v): v is string => typeof v === 'string');
  const guess = didYouMean(value, strings);
  return guess === undefined ? '' : `; did you mean ${JSON.stringify(guess)}?`;
}

const ENUM_HINTS: Readonly<Record<string, readonly string[]>> = {
  jitter: ['none', 'full', 'equal'],
  format: ['jsonl', 'csv', 'json'],
};

/** Names other tools (and the seeds' Python) use for our keys. */
const ALIASES: Readonly<Record<string, string>> = {
  parameters: 'inputs',
  params: 'inputs',
  expect: 'expected',
  assertions: 'expected',
  asserts: 'expected',
  retries: 'max_attempts',
  max_retries: 'max_attempts',
  rate_limit: 'rate_control',
  rate: 'rate_control',
  retry: 'retry_policy',
  stop: 'stop_conditions',
  workers: 'concurrency',
  parallelism: 'concurrency',
  key: 'api_key',
  token: 'api_key',
  endpoint: 'base_url',
  rpm: 'per_minute',
};

/**
 * The message of an unknown key at `path`: a close spelling, or the key's right place in the
 * plan, or the keys allowed there.
 */
export function unknownKeyMessage(
  path: IssuePath,
  allowed: readonly string[],
  root: 'plan' | 'case',
  targetType?: unknown,
): string {
  const key = String(path[path.length - 1]);
  const alias = ALIASES[key];
  const guess = alias !== undefined && allowed.includes(alias) ? alias : didYouMean(key, allowed);
  if (guess !== undefined) return `unknown key, did you mean \`${guess}\`?`;
  const inTarget = path.length === 2 && path[0] === 'target' && typeof targetType === 'string';
  if (root === 'plan' && !inTarget) {
    const here = formatPath(path);
    const elsewhere = PLAN_KEY_PATHS.find((p) => p.split('.').pop() === key && p !== here);
    if (elsewhere !== undefined) return `unknown key here, did you mean \`${elsewhere}\`?`;
  }
  const what = inTarget ? `unknown key for a ${String(targetType)} target` : 'unknown key';
  return allowed.length > 0 ? `${what}, expected one of: ${allowed.join(', ')}` : what;
}

/** Converts zod issues to PlanIssues with positions. */
export function toPlanIssues(zodIssues: readonly ZodIssue[], ctx: IssueContext): PlanIssue[] {
  const render = ctx.renderPath ?? formatPath;
  const out: PlanIssue[] = [];
  const seen = new Set<string>();
  const shown = (path: IssuePath, value: unknown): unknown => {
    const interpolated = ctx.interpolated?.get(pathKey(path as (string | number)[]));
    if (interpolated !== undefined) return interpolated.template;
    if (value !== undefined && ctx.isSecret?.(path) === true) return REDACTED;
    // A URL with a password in it (a bad base_url) is shown without it.
    return typeof value === 'string' ? redactUrl(value) : value;
  };
  const push = (path: IssuePath, at: 'value' | 'key', message: string, value: unknown) => {
    const key = `${pathKey(path as (string | number)[])}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    const pos = ctx.locate(path, at);
    out.push({
      file: ctx.file,
      line: pos.line,
      column: pos.column,
      path: render(path),
      message,
      ...(value === undefined ? {} : { value }),
    });
  };
  const flat = flatten(zodIssues);
  // A mapping with an unknown key: its own refinements ("at least one assertion") are noise.
  const withUnknownKeys = new Set(
    flat
      .filter((i) => i.code === 'unrecognized_keys')
      .map((i) => pathKey(i.path as (string | number)[])),
  );
  for (const issue of flat) {
    if (
      issue.code === 'custom' &&
      withUnknownKeys.has(pathKey(issue.path as (string | number)[]))
    ) {
      continue;
    }
    if (issue.code === 'unrecognized_keys') {
      const targetType = valueAt(ctx.data, ['target', 'type']).value;
      const allowed = allowedKeysAt(issue.path, ctx.root, targetType);
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        push(path, 'key', unknownKeyMessage(path, allowed, ctx.root, targetType), undefined);
      }
      continue;
    }
    const { present, value: raw } = valueAt(ctx.data, issue.path);
    const value = shown(issue.path, raw);
    if (
      issue.code === 'invalid_union' &&
      'note' in issue &&
      issue.note === 'No matching discriminator'
    ) {
      const options = ((issue as { options?: unknown[] }).options ?? []).map(String);
      const expected = `one of ${quote(options)}`;
      push(
        issue.path,
        'value',
        invalidValueMessage(present ? value : undefined, expected) + valueHint(raw, options),
        value,
      );
      continue;
    }
    let expected = issue.message;
    if (expected.startsWith('Invalid input')) {
      expected =
        issue.code === 'invalid_type' && issue.expected === 'nonoptional'
          ? 'a value'
          : expected.replace(/^Invalid input:?\s*/, '');
    }
    let hint = '';
    if (issue.code === 'invalid_value') hint = valueHint(raw, issue.values);
    else {
      const last = issue.path[issue.path.length - 1];
      const hints = typeof last === 'string' ? ENUM_HINTS[last] : undefined;
      if (hints !== undefined) hint = valueHint(raw, hints);
    }
    push(
      issue.path,
      'value',
      invalidValueMessage(present ? value : undefined, expected) + hint,
      value,
    );
  }
  return out;
}
