/**
 * Telling an action plan from a test plan by its text, apart from the action-plan loader: the
 * CLI asks this of every plan, and the loader's zod schemas cost start-up a test plan never
 * needs (issue #15, start-up).
 */

import { parseDocument } from 'yaml';

/** True when a parsed plan document is an action plan (it has `steps`, or `kind: action`). */
export function isActionPlanData(data: unknown): boolean {
  return (
    typeof data === 'object' &&
    data !== null &&
    !Array.isArray(data) &&
    ('steps' in data || (data as { kind?: unknown }).kind === 'action')
  );
}

/**
 * Which kind of plan a file holds, from its text: `action` (it has `steps:`) or `test`.
 * Invalid YAML is judged by what the parser recovered: a file whose partial tree has `steps` is
 * `action` (the action-plan loader then reports the YAML error with its position), anything else
 * `test` (the test-plan loader reports it).
 */
export function planKindOf(text: string): 'action' | 'test' {
  try {
    const doc = parseDocument(text, { prettyErrors: false });
    return isActionPlanData(doc.toJS()) ? 'action' : 'test';
  } catch {
    return 'test';
  }
}
