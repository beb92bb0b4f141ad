/**
 * References to earlier steps' outputs in a step's arguments: `${steps.<id>.output}` and
 * `${steps.<id>.output.<path>}` (a JSONPath tail such as `.items[0].name`), resolved when the
 * step starts. A string that is exactly one reference takes the referenced value with its type;
 * a reference inside a longer string is replaced by its text (JSON for objects).
 */

import { evalJsonPath, ValidationError } from '../core/index.js';

const WHOLE = /^\$\{steps\.([^.}[\]]+)\.output((?:\.[^}]*|\[[^}]*)?)\}$/;
const INNER = /\$\{steps\.([^.}[\]]+)\.output((?:\.[^}]*|\[[^}]*)?)\}/g;

/** True for the body of a `${...}` reference that names a step output (kept by env interpolation). */
export function isStepReference(body: string): boolean {
  return body.startsWith('steps.');
}

function lookup(
  outputs: ReadonlyMap<string, unknown>,
  id: string,
  tail: string,
  stepId: string,
  ref: string,
): unknown {
  if (!outputs.has(id)) {
    throw new ValidationError(
      `step "${stepId}": ${ref} refers to step "${id}", which has no output (is it a dependency?)`,
    );
  }
  const output = outputs.get(id);
  if (tail === '') return output;
  const found = evalJsonPath(output, `$${tail}`);
  if (!found.found)
    throw new ValidationError(`step "${stepId}": ${ref} is not in the output of step "${id}"`);
  return found.value;
}

/**
 * Resolves every reference in `args` against `outputs` (by step id).
 *
 * @example
 * ```ts
 * resolveArguments({ user: '${steps.create.output.id}' }, new Map([['create', { id: 7 }]]), 'mail');
 * // { user: 7 }
 * ```
 * @throws ValidationError naming the step and the reference when a referenced output is missing.
 */
export function resolveArguments(
  args: Readonly<Record<string, unknown>>,
  outputs: ReadonlyMap<string, unknown>,
  stepId: string,
): Record<string, unknown> {
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') {
      if (!value.includes('${steps.')) return value;
      const whole = WHOLE.exec(value);
      if (whole !== null) return lookup(outputs, whole[1]!, whole[2] ?? '', stepId, value);
      return value.replace(INNER, (ref, id: string, tail: string) => {
        const v = lookup(outputs, id, tail ?? '', stepId, ref);
        return typeof v === 'string' ? v : JSON.stringify(v);
      });
    }
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    }
    return value;
  };
  return walk(args) as Record<string, unknown>;
}
