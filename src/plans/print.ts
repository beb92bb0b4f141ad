/**
 * Printing a manifest back as a plan file (YAML, the seeds' snake_case keys), every default
 * written out, so a user sees exactly what will run. `parsePlan(printPlan(m))` deep-equals `m`
 * for a manifest `m` that `parsePlan` produced (with the same `file`, `baseDir` and environment).
 *
 * Secrets are never printed: a value that came from `${VAR}` is printed as `${VAR}` again, and a
 * credential written literally in the plan (also a URL's user info and credential query
 * parameters) is printed as `[redacted]` unless `secrets: 'reveal'`.
 */

import { stringify } from 'yaml';
import { formatDuration } from './duration.js';
import { escapeReferences, REDACTED, redactUrl } from './env.js';
import type {
  Assertion,
  CasesSource,
  DatasetSpec,
  ExecutionPolicy,
  RunManifest,
  SecretRef,
  Selection,
  TargetConfig,
  TestCase,
} from './schema.js';
import { SIMILAR_THRESHOLD } from './schema.js';

type Obj = Record<string, unknown>;

/** Options of `printPlan`. */
export interface PrintPlanOptions {
  /**
   * `'template'`: secrets from `${VAR}` print as their template, literal ones as `[redacted]`.
   * `'reveal'`: literal secrets print as written (templates still print as templates).
   * @default 'template'
   */
  readonly secrets?: 'template' | 'reveal';
}

const esc = escapeReferences;

function printExpected(list: readonly Assertion[]): unknown {
  const one = (a: Assertion): Obj => {
    const field = 'field' in a && a.field !== undefined ? { field: esc(a.field) } : {};
    const ic = 'ignoreCase' in a && a.ignoreCase === true ? { ignore_case: true } : {};
    const mods = {
      ...(a.weight === undefined ? {} : { weight: a.weight }),
      ...(a.required === true ? { required: true } : {}),
    };
    return { ...kind(a, field, ic), ...mods };
  };
  const kind = (a: Assertion, field: Obj, ic: Obj): Obj => {
    switch (a.type) {
      case 'starts_with':
        return { starts_with: a.value, ...field, ...ic };
      case 'contains_all':
      case 'contains_any':
        return { [a.type]: a.values, ...field, ...ic };
      case 'levenshtein_below':
        return { levenshtein_below: { value: a.value, distance: a.distance }, ...field };
      case 'json_schema':
        return { json_schema: a.schema, ...field };
      case 'llm_rubric':
        return {
          llm_rubric:
            a.threshold === undefined && a.model === undefined
              ? a.rubric
              : {
                  rubric: a.rubric,
                  ...(a.threshold === undefined ? {} : { threshold: a.threshold }),
                  ...(a.model === undefined ? {} : { provider: a.model }),
                },
          ...field,
        };
      case 'similar':
        return {
          similar:
            a.threshold === SIMILAR_THRESHOLD
              ? a.value
              : { value: a.value, threshold: a.threshold },
          ...field,
        };
      case 'assert_module':
        return {
          assert_module: `${esc(a.module)}${a.export === 'default' ? '' : `#${a.export}`}`,
          ...field,
        };
      case 'equals':
        return { equals: a.value, ...field };
      case 'contains':
      case 'not_contains':
        return { [a.type]: a.value, ...field, ...ic };
      case 'regex':
        return { regex: a.pattern, ...field, ...ic };
      case 'is_json':
        return { is_json: true, ...field };
      case 'json_path':
        return { json_path: { path: a.path, equals: a.equals }, ...field };
      case 'latency_below':
        return { latency_below: formatDuration(a.ms) };
      case 'cost_below':
      case 'tokens_below':
        return { [a.type]: a.value };
      case 'custom':
        throw new TypeError(`custom assertion ${a.name} cannot be printed in a plan file`);
    }
  };
  const objects = list.map(one);
  // One mapping when it reads back the same: distinct types, and one `field` and one
  // `ignore_case` for all the assertions they apply to.
  const types = list.map((a) => a.type);
  const fieldable = list.filter(
    (a) => a.type !== 'latency_below' && a.type !== 'cost_below' && a.type !== 'tokens_below',
  );
  const fields = new Set(fieldable.map((a) => ('field' in a ? a.field : undefined)));
  const CASED = [
    'contains',
    'not_contains',
    'regex',
    'starts_with',
    'contains_all',
    'contains_any',
  ];
  const textual = list.filter((a) => CASED.includes(a.type));
  const cases = new Set(textual.map((a) => 'ignoreCase' in a && a.ignoreCase === true));
  // A weight or required flag applies to its whole mapping: one per assertion then.
  const modified = list.some((a) => a.weight !== undefined || a.required === true);
  if (!modified && new Set(types).size === types.length && fields.size <= 1 && cases.size <= 1) {
    return Object.assign({}, ...objects);
  }
  return objects;
}

function printCase(tc: TestCase, ds: DatasetSpec): Obj {
  const out: Obj = { id: tc.id, inputs: tc.inputs };
  if (tc.dataset !== undefined && tc.dataset !== ds.name) out.dataset = tc.dataset;
  if (tc.scenario !== undefined && tc.scenario !== ds.scenario) out.scenario = tc.scenario;
  if (tc.tags.length > 0) out.tags = tc.tags;
  if (tc.priority !== (ds.priority ?? 0)) out.priority = tc.priority;
  if (tc.timeoutMs !== undefined) out.timeout = formatDuration(tc.timeoutMs);
  if (tc.expected.length > 0) out.expected = printExpected(tc.expected);
  if (tc.threshold !== undefined) out.threshold = tc.threshold;
  if (tc.metadata !== undefined) out.metadata = tc.metadata;
  return out;
}

function printSource(source: CasesSource, ds: DatasetSpec): unknown {
  if (source.kind === 'file') return esc(source.path);
  return source.cases.map((tc) => printCase(tc, ds));
}

function secretValue(
  secrets: readonly SecretRef[],
  path: readonly string[],
  value: string,
  mode: 'template' | 'reveal',
): string {
  const ref = secrets.find(
    (s) => s.path.length === path.length && s.path.every((p, i) => p === path[i]),
  );
  if (ref === undefined) return esc(value);
  if (ref.template !== undefined) return ref.template;
  return mode === 'reveal' ? esc(value) : REDACTED;
}

function printTarget(
  t: TargetConfig,
  secrets: readonly SecretRef[],
  mode: 'template' | 'reveal',
): Obj {
  // A URL's credentials (user info, credential query parameters) are secrets written inline.
  const url = (u: string): string => esc(mode === 'reveal' ? u : redactUrl(u));
  const headers = (h: Readonly<Record<string, string>> | undefined): Obj =>
    h === undefined
      ? {}
      : {
          headers: Object.fromEntries(
            Object.entries(h).map(([k, v]) => [
              k,
              secretValue(secrets, ['target', 'headers', k], v, mode),
            ]),
          ),
        };
  switch (t.type) {
    case 'dify':
      return {
        type: 'dify',
        base_url: url(t.baseUrl),
        api_key: secretValue(secrets, ['target', 'apiKey'], t.apiKey, mode),
        app: t.app,
        response_mode: t.responseMode,
        user: esc(t.user),
        ...headers(t.headers),
      };
    case 'openai':
      return {
        type: 'openai',
        base_url: url(t.baseUrl),
        ...(t.apiKey === undefined
          ? {}
          : { api_key: secretValue(secrets, ['target', 'apiKey'], t.apiKey, mode) }),
        model: esc(t.model),
        ...(t.system === undefined ? {} : { system: esc(t.system) }),
        ...(t.temperature === undefined ? {} : { temperature: t.temperature }),
        ...(t.maxTokens === undefined ? {} : { max_tokens: t.maxTokens }),
        ...(t.responseMode === undefined ? {} : { response_mode: t.responseMode }),
        ...(t.pricePerMillion === undefined
          ? {}
          : {
              price_per_million: {
                input: t.pricePerMillion.input,
                output: t.pricePerMillion.output,
              },
            }),
        ...headers(t.headers),
      };
    case 'http':
      return { type: 'http', url: url(t.url), method: t.method, ...headers(t.headers) };
    case 'function':
      return { type: 'function', name: esc(t.name) };
  }
}

function printPolicy(p: ExecutionPolicy): Obj {
  const out: Obj = { concurrency: p.concurrency };
  if (p.batchSize !== undefined) out.batch_size = p.batchSize;
  out.backoff_seconds = p.backoffMs / 1000;
  if (p.timeoutMs !== undefined) out.timeout = formatDuration(p.timeoutMs);
  if (p.rateControl !== undefined) {
    out.rate_control = {
      per_minute: p.rateControl.perMinute,
      burst: p.rateControl.burst,
      ...(p.tokensPerMinute === undefined ? {} : { tokens_per_minute: p.tokensPerMinute }),
    };
  }
  const r = p.retryPolicy;
  out.retry_policy = {
    max_attempts: r.maxAttempts,
    backoff_seconds: r.backoffMs / 1000,
    backoff_multiplier: r.backoffMultiplier,
    max_backoff_seconds: r.maxBackoffMs / 1000,
    jitter: r.jitter,
  };
  const s = p.stopConditions;
  const stop: Obj = {};
  if (s.maxFailures !== undefined) stop.max_failures = s.maxFailures;
  if (s.deadlineMs !== undefined) stop.timeout = formatDuration(s.deadlineMs);
  if (s.maxCost !== undefined) stop.max_cost = s.maxCost;
  if (s.maxTokens !== undefined) stop.max_tokens = s.maxTokens;
  if (Object.keys(stop).length > 0) out.stop_conditions = stop;
  return out;
}

function printSelect(s: Selection): Obj | undefined {
  const out: Obj = {};
  if (s.tags !== undefined) out.tags = s.tags.map(esc);
  if (s.excludeTags !== undefined) out.exclude_tags = s.excludeTags.map(esc);
  if (s.range !== undefined) {
    out.range = s.range.to === undefined ? { from: s.range.from } : { ...s.range };
  }
  if (s.sample !== undefined) out.sample = { size: s.sample.size, seed: s.sample.seed };
  if (s.repeat !== 1) out.repeat = s.repeat;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Prints a manifest as a plan file.
 *
 * @example
 * ```ts
 * console.log(printPlan(await loadPlan('plan.yaml'))); // every default spelled out
 * ```
 * @throws TypeError for a manifest holding a custom (function) assertion.
 */
export function printPlan(manifest: RunManifest, options: PrintPlanOptions = {}): string {
  const mode = options.secrets ?? 'template';
  const out: Obj = { workflow_id: esc(manifest.workflowId) };
  if (manifest.description !== undefined) out.description = esc(manifest.description);
  if (manifest.target !== undefined) {
    out.target = printTarget(manifest.target, manifest.secrets, mode);
  }
  const [only] = manifest.datasets;
  const plain =
    manifest.datasets.length === 1 &&
    only !== undefined &&
    only.name === undefined &&
    only.weight === 1 &&
    only.scenario === undefined &&
    only.priority === undefined;
  if (plain) {
    out.cases = printSource(only.cases, only);
  } else {
    out.datasets = manifest.datasets.map((ds) => ({
      name: esc(ds.name ?? ''),
      weight: ds.weight,
      ...(ds.scenario === undefined ? {} : { scenario: esc(ds.scenario) }),
      ...(ds.priority === undefined ? {} : { priority: ds.priority }),
      ...(ds.cases.kind === 'file' ? { format: ds.cases.format } : {}),
      cases: printSource(ds.cases, ds),
    }));
  }
  out.execution_policy = printPolicy(manifest.executionPolicy);
  const select = printSelect(manifest.select);
  if (select !== undefined) out.select = select;
  return stringify(out, { lineWidth: 0, aliasDuplicateObjects: false });
}
