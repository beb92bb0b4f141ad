/**
 * `{{ name }}` templates over a case's input, for the HTTP target's URL, headers and body.
 *
 * - A name is a dotted path into the variables (`{{ query }}`, `{{ inputs.user.id }}`,
 *   `{{ items.0 }}`); `{{ $taskId }}` and `{{ $attempt }}` name the attempt.
 * - In a body object, a string that is exactly one placeholder is replaced by the value itself,
 *   keeping its type (a number stays a number, an object an object); placeholders inside longer
 *   strings are interpolated (objects as JSON).
 * - In a URL, interpolated values are percent-encoded.
 * - A placeholder whose name is missing is an error: a case that can never be sent right.
 */

import { ValidationError } from '../../core/index.js';

const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;
const WHOLE = /^\{\{\s*([^{}\s]+)\s*\}\}$/;

export type TemplateVars = Readonly<Record<string, unknown>>;

function lookup(vars: TemplateVars, name: string): unknown {
  let value: unknown = vars;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function resolve(vars: TemplateVars, name: string, where: string): unknown {
  const value = lookup(vars, name);
  if (value === undefined)
    throw new ValidationError(
      `template ${where} uses {{${name}}}, which the case input does not have`,
    );
  return value;
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Interpolates a string template; `encode` is applied to each inserted value. */
export function renderString(
  template: string,
  vars: TemplateVars,
  where: string,
  encode: (s: string) => string = (s) => s,
): string {
  if (!template.includes('{{')) return template;
  return template.replace(PLACEHOLDER, (_, name: string) =>
    encode(asText(resolve(vars, name, where))),
  );
}

/** Renders a JSON-like template: strings are interpolated, a lone placeholder keeps its type. */
export function renderValue(template: unknown, vars: TemplateVars, where: string): unknown {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (whole !== null) return resolve(vars, whole[1]!, where);
    return renderString(template, vars, where);
  }
  if (Array.isArray(template))
    return template.map((v, i) => renderValue(v, vars, `${where}[${i}]`));
  if (typeof template === 'object' && template !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(template)) out[k] = renderValue(v, vars, `${where}.${k}`);
    return out;
  }
  return template;
}

/** True when the template has at least one placeholder anywhere. */
export function hasPlaceholder(template: unknown): boolean {
  if (typeof template === 'string') return template.includes('{{');
  if (Array.isArray(template)) return template.some(hasPlaceholder);
  if (typeof template === 'object' && template !== null)
    return Object.values(template).some(hasPlaceholder);
  return false;
}
