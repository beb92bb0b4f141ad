/**
 * Action plans in YAML or JSON, with the seeds' snake_case keys. Problems are reported like a
 * test plan's: `file:line:column: key.path: message`, all of them, before anything runs.
 * `${VAR}` comes from the environment; `${steps.<id>.output...}` is left for the executor.
 */

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Document, isMap, isScalar, isSeq } from 'yaml';
import { z } from 'zod';
import { checkDependencies, DependencyError, type RetryPolicy } from '../core/index.js';
import { tryParseDuration } from '../plans/duration.js';
import { type Env, formatPath, interpolateDocument } from '../plans/env.js';
import { PlanError, type PlanIssue } from '../plans/errors.js';
import { type IssuePath, toPlanIssues, yamlLocator } from '../plans/issues.js';
import { didYouMean } from '../plans/suggest.js';
import { documentData, parseYamlDocument, throwIssues } from '../plans/yaml.js';
import { checkJsonSchema } from './schema.js';
import { isStepReference } from './template.js';
import type { JsonSchema } from './tool.js';

export { isActionPlanData, planKindOf } from './kind.js';

import type {
  ActionPlan,
  ActionStep,
  ResourceLimits,
  TimeoutPolicy,
  ValidationRule,
} from './types.js';

/** An action plan file, normalised: the plan and the executor settings it asks for. */
export interface ActionPlanFile {
  readonly plan: ActionPlan;
  readonly autoRollback: boolean | undefined;
  readonly failFast: boolean | undefined;
  readonly maxConcurrentSteps: number | undefined;
  readonly retryPolicy: RetryPolicy | undefined;
  readonly timeoutPolicy: TimeoutPolicy | undefined;
  readonly resourceLimits: ResourceLimits | undefined;
  /** `tools.root` resolved against the plan's folder: enables `file.read` and `file.write` in it. */
  readonly fileRoot: string | undefined;
  readonly http:
    | { readonly allowedHosts?: readonly string[]; readonly timeoutMs?: number }
    | undefined;
  /** The plan file, as given. */
  readonly file: string | undefined;
}

const duration = z.custom<string | number>((v) => tryParseDuration(v) !== undefined, {
  error: 'a duration (seconds, or a string such as "500ms", "90s", "2m")',
});
// Numbers may be written as strings, so that `${VAR}` (always a string) can give one.
const numeric = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v),
    schema,
  );
const posInt = numeric(
  z
    .number({ error: 'an integer >= 1' })
    .int({ error: 'an integer >= 1' })
    .min(1, { error: 'an integer >= 1' }),
);
const name = z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' });

const retryShape = {
  max_attempts: posInt.optional(),
  backoff_seconds: z
    .number({ error: 'a number >= 0' })
    .min(0, { error: 'a number >= 0' })
    .optional(),
  backoff_multiplier: z
    .number({ error: 'a number >= 1' })
    .min(1, { error: 'a number >= 1' })
    .optional(),
  max_backoff_seconds: z
    .number({ error: 'a number >= 0' })
    .min(0, { error: 'a number >= 0' })
    .optional(),
  jitter: z.enum(['none', 'full', 'equal'], { error: "one of 'none', 'full', 'equal'" }).optional(),
};
const timeoutShape = {
  step_timeout: duration.optional(),
  expected_duration_factor: z
    .number({ error: 'a number > 0' })
    .positive({ error: 'a number > 0' })
    .optional(),
  compensation_timeout: duration.optional(),
};
const limitsShape = {
  max_execution_time: duration.optional(),
  max_tool_invocations: posInt.optional(),
  max_network_requests: posInt.optional(),
  max_concurrent_steps: posInt.optional(),
  max_memory_mb: z.number({ error: 'a number > 0' }).positive({ error: 'a number > 0' }).optional(),
};
const httpShape = {
  allowed_hosts: z.array(name, { error: 'a list of host names' }).optional(),
  timeout: duration.optional(),
};
const toolsShape = {
  root: name.optional(),
  http: z.strictObject(httpShape, { error: 'a mapping {allowed_hosts, timeout}' }).optional(),
};
const ruleShape = {
  schema: z.record(z.string(), z.unknown(), { error: 'a JSON schema (a mapping)' }),
  path: z.string().optional(),
  message: z.string().optional(),
};
const stepShape = {
  id: name,
  tool: name,
  arguments: z
    .record(z.string(), z.unknown(), { error: 'a mapping of argument names to values' })
    .optional(),
  parameters: z.record(z.string(), z.unknown(), { error: 'a mapping' }).optional(),
  depends_on: z.array(name, { error: 'a list of step ids' }).optional(),
  timeout: duration.optional(),
  expected_duration: duration.optional(),
  retry_policy: z
    .strictObject({ max_attempts: posInt.optional() }, { error: 'a mapping {max_attempts}' })
    .optional(),
  validate: z
    .array(z.strictObject(ruleShape, { error: 'a mapping {schema, path, message}' }), {
      error: 'a list of rules',
    })
    .optional(),
};
const planShape = {
  kind: z.literal('action', { error: "'action'" }).optional(),
  id: name,
  name: z.string().optional(),
  description: z.string().optional(),
  fail_fast: z.boolean({ error: 'true or false' }).optional(),
  auto_rollback: z.boolean({ error: 'true or false' }).optional(),
  max_concurrent_steps: posInt.optional(),
  retry_policy: z.strictObject(retryShape, { error: 'a mapping' }).optional(),
  timeout_policy: z.strictObject(timeoutShape, { error: 'a mapping' }).optional(),
  resource_limits: z.strictObject(limitsShape, { error: 'a mapping' }).optional(),
  tools: z.strictObject(toolsShape, { error: 'a mapping {root, http}' }).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  steps: z
    .array(
      z.strictObject(stepShape, { error: 'a mapping {id, tool, arguments, depends_on, ...}' }),
      {
        error: 'a non-empty list of steps',
      },
    )
    .min(1, { error: 'a non-empty list of steps' }),
};
const planSchema = z.strictObject(planShape, { error: 'a mapping {id, steps, ...}' });

/** Keys allowed at a path, for "did you mean" on an unknown key. */
function keysAt(path: IssuePath): readonly string[] {
  const named = path.filter((p): p is string => typeof p === 'string');
  const last = named[named.length - 1];
  switch (last) {
    case undefined:
      return Object.keys(planShape);
    case 'steps':
      return Object.keys(stepShape);
    case 'retry_policy':
      return named.includes('steps') ? ['max_attempts'] : Object.keys(retryShape);
    case 'timeout_policy':
      return Object.keys(timeoutShape);
    case 'resource_limits':
      return Object.keys(limitsShape);
    case 'tools':
      return Object.keys(toolsShape);
    case 'http':
      return Object.keys(httpShape);
    case 'validate':
      return Object.keys(ruleShape);
    default:
      return [];
  }
}

export interface ParseActionPlanOptions {
  readonly file?: string;
  readonly env?: Env;
  /** Tool names steps may use: an unknown one is reported at its step, with a suggestion. */
  readonly tools?: readonly string[];
}

function ms(v: unknown): number | undefined {
  return v === undefined ? undefined : tryParseDuration(v);
}

/**
 * Parses an action plan.
 *
 * @example
 * ```ts
 * const { plan, autoRollback } = parseActionPlan(text, { file: 'deploy.yaml' });
 * await new Executor({ autoRollback }).executePlan(plan);
 * ```
 * @throws PlanError (`PLAN_INVALID`, or `ENV_MISSING`) listing every problem with its position.
 */
export function parseActionPlan(
  text: string,
  options: ParseActionPlanOptions = {},
): ActionPlanFile {
  const file = options.file ?? '<plan>';
  const issue = (
    line: number,
    column: number,
    path: string,
    message: string,
    value?: unknown,
  ): PlanIssue => ({
    file,
    line,
    column,
    path,
    message,
    ...(value === undefined ? {} : { value }),
  });
  const { doc, lineCounter } = parseYamlDocument(text, file);
  // `dependencies` is the library's word; `depends_on` the file's. Accept both in files: the
  // key is renamed in the document (so positions still point into the file), and messages name
  // the key as written.
  const aliased = renameDependencyKeys(doc);
  const asWritten = (p: PlanIssue): PlanIssue => {
    const m = /^steps\[(\d+)\]\.depends_on(?=$|[.[])/.exec(p.path);
    return m !== null && aliased.has(Number(m[1]))
      ? { ...p, path: `steps[${m[1]}].dependencies${p.path.slice(m[0].length)}` }
      : p;
  };
  const interpolation = interpolateDocument(doc, {
    env: options.env ?? process.env,
    file,
    lineCounter,
    keep: isStepReference,
  });
  const data = documentData(doc, file) as Record<string, unknown>;
  const locate = yamlLocator(doc, lineCounter);
  const at = (
    path: IssuePath,
    message: string,
    value?: unknown,
    where: 'key' | 'value' = 'value',
  ): PlanIssue => {
    const pos = locate(path, where);
    return issue(pos.line, pos.column, formatPath(path), message, value);
  };
  // A step the document rename could not reach (a YAML alias, a `<<` merge): renamed in the data.
  if (Array.isArray(data?.steps)) {
    for (const s of data.steps as Record<string, unknown>[]) {
      if (s !== null && typeof s === 'object' && 'dependencies' in s && !('depends_on' in s)) {
        s.depends_on = s.dependencies;
        delete s.dependencies;
      }
    }
  }
  const parsed = planSchema.safeParse(data);
  const issues: PlanIssue[] = [];
  if (!parsed.success) {
    const rest = [];
    for (const zi of parsed.error.issues) {
      if (zi.code === 'unrecognized_keys') {
        for (const key of zi.keys) {
          const path = [...(zi.path as (string | number)[]), key];
          const hint = didYouMean(key, keysAt(zi.path as IssuePath));
          const both = key === 'dependencies' && zi.path.length === 2 && zi.path[0] === 'steps';
          issues.push(
            at(
              path,
              both
                ? 'dependencies is another name for depends_on: give one of them, not both'
                : `unknown key${hint === undefined ? '' : ` (did you mean ${hint}?)`}`,
              undefined,
              'key',
            ),
          );
        }
      } else rest.push(zi);
    }
    issues.push(
      ...toPlanIssues(rest, {
        file,
        root: 'plan',
        data,
        locate,
        interpolated: interpolation.values,
      }),
    );
  }
  if (interpolation.issues.length === 0 && issues.length === 0) {
    issues.push(...graphIssues(data, at, options.tools));
  }
  throwIssues(interpolation.issues, issues, asWritten);
  // Values from `${VAR}` inside steps may be credentials: the journal stores them redacted.
  const secretPaths = [...interpolation.values.values()]
    .map((v) => v.path)
    .filter((p) => p[0] === 'steps' && (p[2] === 'arguments' || p[2] === 'parameters'));
  return normalise(planSchema.parse(data), options.file, secretPaths);
}

type Parsed = z.infer<typeof planSchema>;

/**
 * Renames each step's `dependencies` key to `depends_on` in the document (unless the step has
 * both: that is reported), keeping the key's position. Returns the indices of the steps renamed.
 */
function renameDependencyKeys(doc: Document): Set<number> {
  const renamed = new Set<number>();
  const root = doc.contents;
  if (!isMap(root)) return renamed;
  const steps = root.items.find((p) => isScalar(p.key) && p.key.value === 'steps')?.value;
  if (!isSeq(steps)) return renamed;
  steps.items.forEach((step, i) => {
    if (!isMap(step)) return;
    const keyed = (name: string) =>
      step.items.find((p) => isScalar(p.key) && p.key.value === name)?.key;
    const alias = keyed('dependencies');
    if (isScalar(alias) && keyed('depends_on') === undefined) {
      alias.value = 'depends_on';
      renamed.add(i);
    }
  });
  return renamed;
}

/** Duplicate ids, unknown dependencies and tools, cycles, bad schemas: each at its position. */
function graphIssues(
  data: Record<string, unknown>,
  at: (path: IssuePath, message: string, value?: unknown) => PlanIssue,
  tools: readonly string[] | undefined,
): PlanIssue[] {
  const steps = data.steps as Parsed['steps'];
  const issues: PlanIssue[] = [];
  const first = new Map<string, number>();
  steps.forEach((s, i) => {
    if (first.has(s.id))
      issues.push(
        at(
          ['steps', i, 'id'],
          `duplicate step id ${JSON.stringify(s.id)} (first at steps[${first.get(s.id)}])`,
          s.id,
        ),
      );
    else first.set(s.id, i);
    if (tools !== undefined && !tools.includes(s.tool)) {
      const hint = didYouMean(s.tool, tools);
      const needsRoot = s.tool.startsWith('file.') && !tools.some((t) => t.startsWith('file.'));
      const why = needsRoot
        ? ' (the file tools need `tools: { root: <folder> }`)'
        : hint === undefined
          ? ''
          : ` (did you mean ${hint}?)`;
      issues.push(
        at(
          ['steps', i, 'tool'],
          `unknown tool ${JSON.stringify(s.tool)}${why}; available: ${tools.join(', ')}`,
          s.tool,
        ),
      );
    }
    (s.depends_on ?? []).forEach((d, j) => {
      if (d === s.id)
        issues.push(
          at(['steps', i, 'depends_on', j], `step ${JSON.stringify(s.id)} depends on itself`, d),
        );
      else if (!steps.some((o) => o.id === d)) {
        const hint = didYouMean(
          d,
          steps.map((o) => o.id),
        );
        issues.push(
          at(
            ['steps', i, 'depends_on', j],
            `unknown step ${JSON.stringify(d)}${hint === undefined ? '' : ` (did you mean ${hint}?)`}`,
            d,
          ),
        );
      }
    });
    (s.validate ?? []).forEach((r, j) => {
      for (const p of checkJsonSchema(r.schema, 'schema'))
        issues.push(at(['steps', i, 'validate', j, 'schema'], p));
    });
  });
  if (issues.length > 0) return issues;
  try {
    checkDependencies(
      steps.map((s) => ({
        id: s.id,
        input: s,
        ...(s.depends_on === undefined ? {} : { dependsOn: s.depends_on }),
      })),
    );
  } catch (err) {
    if (!(err instanceof DependencyError)) throw err;
    for (const p of err.problems) {
      const cycle = /^dependency cycle: (.*)$/.exec(p);
      const firstId = cycle?.[1]?.split(' -> ')[0];
      const i = steps.findIndex((s) => s.id === firstId);
      issues.push(at(i < 0 ? ['steps'] : ['steps', i, 'depends_on'], p));
    }
  }
  return issues;
}

function normalise(
  p: Parsed,
  file: string | undefined,
  secretPaths: readonly (readonly (string | number)[])[],
): ActionPlanFile {
  const steps: ActionStep[] = p.steps.map((s) => {
    const timeoutMs = ms(s.timeout);
    const expected = ms(s.expected_duration);
    const rules: ValidationRule[] | undefined = s.validate?.map((r) => ({
      schema: r.schema as JsonSchema,
      ...(r.path === undefined ? {} : { path: r.path }),
      ...(r.message === undefined ? {} : { message: r.message }),
    }));
    return {
      id: s.id,
      tool: s.tool,
      ...(s.arguments === undefined ? {} : { arguments: s.arguments }),
      ...(s.parameters === undefined ? {} : { parameters: s.parameters }),
      ...(s.depends_on === undefined ? {} : { dependencies: s.depends_on }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(expected === undefined ? {} : { expectedDurationMs: expected }),
      ...(s.retry_policy?.max_attempts === undefined
        ? {}
        : { retryPolicy: { maxAttempts: s.retry_policy.max_attempts } }),
      ...(rules === undefined ? {} : { validationRules: rules }),
    };
  });
  const r = p.retry_policy;
  const t = p.timeout_policy;
  const l = p.resource_limits;
  const plan: ActionPlan = {
    id: p.id,
    ...(p.name === undefined ? {} : { name: p.name }),
    ...(p.description === undefined ? {} : { description: p.description }),
    ...(p.fail_fast === undefined ? {} : { failFast: p.fail_fast }),
    ...(p.metadata === undefined ? {} : { metadata: p.metadata }),
    ...(secretPaths.length === 0 ? {} : { secretPaths }),
    steps,
  };
  // Keys left undefined are dropped (exactOptionalPropertyTypes); an empty section is absent.
  const compact = <T extends object>(
    o: T,
  ): { [K in keyof T]?: Exclude<T[K], undefined> } | undefined => {
    const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    return Object.keys(out).length === 0
      ? undefined
      : (out as { [K in keyof T]?: Exclude<T[K], undefined> });
  };
  return {
    plan,
    autoRollback: p.auto_rollback,
    failFast: p.fail_fast,
    maxConcurrentSteps: p.max_concurrent_steps,
    retryPolicy:
      r === undefined
        ? undefined
        : compact({
            maxAttempts: r.max_attempts,
            backoffMs: r.backoff_seconds === undefined ? undefined : r.backoff_seconds * 1000,
            backoffMultiplier: r.backoff_multiplier,
            maxBackoffMs:
              r.max_backoff_seconds === undefined ? undefined : r.max_backoff_seconds * 1000,
            jitter: r.jitter,
          }),
    timeoutPolicy:
      t === undefined
        ? undefined
        : compact({
            stepTimeoutMs: ms(t.step_timeout),
            expectedDurationFactor: t.expected_duration_factor,
            compensationTimeoutMs: ms(t.compensation_timeout),
          }),
    resourceLimits:
      l === undefined
        ? undefined
        : compact({
            maxExecutionTimeMs: ms(l.max_execution_time),
            maxToolInvocations: l.max_tool_invocations,
            maxNetworkRequests: l.max_network_requests,
            maxConcurrentSteps: l.max_concurrent_steps,
            maxMemoryMb: l.max_memory_mb,
          }),
    fileRoot:
      p.tools?.root === undefined
        ? undefined
        : resolve(file === undefined ? '.' : dirname(file), p.tools.root),
    http:
      p.tools?.http === undefined
        ? undefined
        : (compact({
            allowedHosts: p.tools.http.allowed_hosts,
            timeoutMs: ms(p.tools.http.timeout),
          }) ?? {}),
    file,
  };
}

/** An action plan file's text; a missing or unreadable file is a `PLAN_NOT_FOUND` PlanError. */
export async function readActionPlanText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw new PlanError(
      [
        {
          file: path,
          line: 1,
          column: 1,
          path: '',
          message:
            code === 'ENOENT'
              ? 'plan file not found'
              : `cannot read the plan file (${String(code ?? e)})`,
        },
      ],
      'PLAN_NOT_FOUND',
    );
  }
}

/** Reads and parses an action plan file. */
export async function loadActionPlan(
  path: string,
  options: Omit<ParseActionPlanOptions, 'file'> = {},
): Promise<ActionPlanFile> {
  return parseActionPlan(await readActionPlanText(path), { ...options, file: path });
}
