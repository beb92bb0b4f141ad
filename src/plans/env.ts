/**
 * `${VAR}` interpolation. It runs on the parsed YAML tree, one string scalar at a time, never on
 * the text: a variable's value can only ever become a string value, never YAML structure.
 *
 * - `${VAR}`: the variable's value; an error if it is unset.
 * - `${VAR:-default}`: the default when the variable is unset or empty.
 * - `$${`: a literal `${`.
 *
 * Case data (an inline `cases:` list) is not interpolated: it is test data, not configuration.
 * Errors name the variable, never a value.
 */

import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import type { PlanIssue } from './errors.js';
import type { RunManifest } from './schema.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type Env = Readonly<Record<string, string | undefined>>;

/** The outcome of interpolating one string. */
export interface Interpolation {
  readonly value: string;
  /** Variables referenced, in order. */
  readonly vars: readonly string[];
  /** Referenced variables that were unset (and had no default). */
  readonly missing: readonly string[];
  /** A malformed reference (`${`, `${1X}`), if any. */
  readonly error?: string;
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` in one string.
 *
 * @example
 * ```ts
 * interpolate('${HOST:-localhost}:${PORT}', { PORT: '80' }).value; // 'localhost:80'
 * ```
 */
export function interpolate(
  text: string,
  env: Env,
  options: { keep?: (body: string) => boolean } = {},
): Interpolation {
  let out = '';
  const vars: string[] = [];
  const missing: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      i++;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      return { value: text, vars, missing, error: `unterminated \${ at offset ${i}` };
    }
    const body = text.slice(i + 2, close);
    // A reference another layer resolves later (an action step's `${steps.<id>.output}`).
    if (options.keep?.(body) === true) {
      out += text.slice(i, close + 1);
      i = close + 1;
      continue;
    }
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      return {
        value: text,
        vars,
        missing,
        error: `invalid variable reference \${${body}} (write $\${ for a literal \${)`,
      };
    }
    vars.push(name);
    const set = env[name];
    if (sep >= 0) out += set === undefined || set === '' ? body.slice(sep + 2) : set;
    else if (set === undefined) missing.push(name);
    else out += set;
    i = close + 1;
  }
  return { value: out, vars, missing };
}

/** Escapes a literal string so that interpolation gives it back unchanged. */
export function escapeReferences(text: string): string {
  // A function, not a string: in a replacement string `$$` means one `$`.
  return text.replaceAll('${', () => '$${');
}

/** A string value that came from `${...}`, with its template (the text as written). */
export interface InterpolatedValue {
  readonly path: readonly (string | number)[];
  readonly template: string;
}

export interface DocumentInterpolation {
  readonly issues: PlanIssue[];
  /** Keyed by `JSON.stringify(path)`. */
  readonly values: Map<string, InterpolatedValue>;
}

export function pathKey(path: readonly (string | number)[]): string {
  return JSON.stringify(path);
}

/** Renders a key path as users write it: `execution_policy.concurrency`, `cases[3].id`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z0-9_\-.$]+$/.test(s) ? (out === '' ? s : `.${s}`) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

/** True for the inline case lists, which are data and are not interpolated. */
function isCaseData(path: readonly (string | number)[], node: unknown): boolean {
  if (!isSeq(node)) return false;
  return (
    (path.length === 1 && path[0] === 'cases') ||
    (path.length === 3 && path[0] === 'datasets' && path[2] === 'cases')
  );
}

/**
 * Interpolates every string scalar of a parsed plan in place (keys are left alone). Unset
 * variables and malformed references become issues at the scalar's position.
 */
export function interpolateDocument(
  doc: Document,
  options: {
    env: Env;
    file: string;
    lineCounter: LineCounter;
    /** References left as written, for a later layer to resolve. */
    keep?: (body: string) => boolean;
  },
): DocumentInterpolation {
  const issues: PlanIssue[] = [];
  const values = new Map<string, InterpolatedValue>();
  const seen = new Set<Node>();
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (node === null || typeof node !== 'object' || seen.has(node as Node)) return;
    seen.add(node as Node);
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const childPath = [...path, key];
        if (!isCaseData(childPath, pair.value)) walk(pair.value, childPath);
      }
    } else if (isSeq(node)) {
      for (const [index, item] of node.items.entries()) walk(item, [...path, index]);
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      const template = node.value;
      const result = interpolate(
        template,
        options.env,
        options.keep === undefined ? {} : { keep: options.keep },
      );
      const pos = options.lineCounter.linePos(node.range?.[0] ?? 0);
      const base = {
        file: options.file,
        line: pos.line,
        column: pos.col,
        path: formatPath(path),
        value: template,
      };
      if (result.error !== undefined) issues.push({ ...base, message: result.error });
      for (const name of result.missing) {
        issues.push({ ...base, message: `environment variable ${name} is not set` });
      }
      if (result.vars.length > 0) values.set(pathKey(path), { path, template });
      node.value = result.value;
    }
  };
  walk(doc.contents, []);
  return { issues, values };
}

const SENSITIVE_HEADER = /authorization|api[-_]?key|token|secret|cookie|password|credential/i;

/** True for header names whose values are credentials even when written literally. */
export function isSensitiveHeader(name: string): boolean {
  return SENSITIVE_HEADER.test(name);
}

/** Shown instead of a secret's value. */
export const REDACTED = '[redacted]';

/**
 * `value` with `replacement` at `path`, copied along the path (never mutated); unchanged when the
 * path does not exist in it. Keys index objects and arrays alike.
 *
 * @example
 * ```ts
 * setIn({ a: [{ key: 's3cret' }] }, ['a', 0, 'key'], REDACTED); // { a: [{ key: '[redacted]' }] }
 * ```
 */
export function setIn(
  value: unknown,
  path: readonly (string | number)[],
  replacement: unknown,
): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return replacement;
  if (value === null || typeof value !== 'object' || !Object.hasOwn(value, head)) return value;
  const copy = (Array.isArray(value) ? [...value] : { ...value }) as Record<
    string | number,
    unknown
  >;
  copy[head] = setIn(copy[head], rest, replacement);
  return copy;
}

/** Query parameters whose values are credentials (the HTTP target redacts the same names). */
const SENSITIVE_PARAM =
  /authorization|api[-_]?key|token|secret|cookie|password|passwd|signature|sig$|^key$/i;

function paramName(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}

/**
 * `url` with its credentials replaced by `[redacted]`: the user and password before the host
 * (`http://user:pass@host` -> `http://[redacted]@host`) and the values of query parameters
 * named like a credential (`?api_key=...`, `token`, `sig`...). Scheme, host, path and the other
 * parameters are kept, so the URL still says where a run went. Text that is not an absolute URL
 * is returned unchanged.
 *
 * @example
 * ```ts
 * redactUrl('https://bob:s3cret@dify.example/v1?token=abc&x=1');
 * // 'https://[redacted]@dify.example/v1?token=[redacted]&x=1'
 * ```
 */
export function redactUrl(url: string): string {
  // WHATWG parsing also takes `http:user:pass@host` and backslashes for slashes.
  const scheme = /^\s*[A-Za-z][A-Za-z0-9+.-]*:[/\\]*/.exec(url);
  if (scheme === null) return url;
  const start = scheme[0].length;
  const stop = url.slice(start).search(/[/?#\\]/);
  const end = stop < 0 ? url.length : start + stop;
  // The last `@` of the authority ends the user info (a password may hold an unescaped `@`).
  const at = url.lastIndexOf('@', end - 1);
  let out = at < start ? url : `${url.slice(0, start)}${REDACTED}@${url.slice(at + 1)}`;
  const query = out.indexOf('?');
  if (query < 0) return out;
  const hash = out.indexOf('#', query);
  const qEnd = hash < 0 ? out.length : hash;
  const params = out
    .slice(query + 1, qEnd)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq >= 0 && SENSITIVE_PARAM.test(paramName(pair.slice(0, eq)))
        ? `${pair.slice(0, eq)}=${REDACTED}`
        : pair;
    });
  out = `${out.slice(0, query + 1)}${params.join('&')}${out.slice(qEnd)}`;
  return out;
}

/**
 * A copy of a plain JSON value with the secrets written in it literally replaced: the string
 * value of every key named like a credential (`Authorization`, `api_key`, `token`, `password`,
 * `secret`, `cookie`...: `isSensitiveHeader`) becomes `'[redacted]'`, and every string that is a
 * URL loses its credentials (`redactUrl`). For what is stored or shown of values a plan author
 * wrote by hand (an action step's arguments), where no `${VAR}` marks the secret. Numbers,
 * booleans and other keys are kept, so `max_tokens: 100` stays.
 *
 * @example
 * ```ts
 * redactLiterals({ headers: { Authorization: 'Bearer abc' }, url: 'https://u:p@h/x', n: 1 });
 * // { headers: { Authorization: '[redacted]' }, url: 'https://[redacted]@h/x', n: 1 }
 * ```
 */
export function redactLiterals(value: unknown): unknown {
  if (typeof value === 'string') return redactUrl(value);
  if (Array.isArray(value)) return value.map(redactLiterals);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = typeof v === 'string' && isSensitiveHeader(key) ? REDACTED : redactLiterals(v);
  }
  return out;
}

/**
 * A copy of the manifest with every secret (`RunManifest.secrets`: the API key, credential
 * headers, headers from `${...}`) replaced by `'[redacted]'`, and the credentials of the
 * target's URL (`redactUrl`: user info, credential query parameters) too: safe to log, store or
 * report.
 *
 * @example
 * ```ts
 * JSON.stringify(redact(manifest).target); // ... "apiKey":"[redacted]" ...
 * ```
 */
export function redact(manifest: RunManifest): RunManifest {
  let out: unknown = manifest;
  for (const secret of manifest.secrets) out = setIn(out, secret.path, REDACTED);
  const target = manifest.target;
  if (target?.type === 'dify' || target?.type === 'openai')
    out = setIn(out, ['target', 'baseUrl'], redactUrl(target.baseUrl));
  else if (target?.type === 'http') out = setIn(out, ['target', 'url'], redactUrl(target.url));
  return out as RunManifest;
}
