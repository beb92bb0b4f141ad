/**
 * The YAML steps every plan loader shares (test plans, action plans): text to a document with
 * positions, the document to data, and which issues to report. Each turns a failure into a
 * positioned PlanError, never a raw exception from the parser.
 */

import { type Document, LineCounter, parseDocument } from 'yaml';
import { PlanError, type PlanIssue } from './errors.js';

/** An issue at a position that no key path names (a syntax error, an empty file). */
export function planIssue(file: string, line: number, column: number, message: string): PlanIssue {
  return { file, line, column, path: '', message };
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? message;
}

/** Parses YAML (a leading BOM dropped) keeping positions; syntax errors throw one PlanError. */
export function parseYamlDocument(
  text: string,
  file: string,
): { readonly doc: Document; readonly lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, {
    lineCounter,
    keepSourceTokens: true,
    prettyErrors: false,
    uniqueKeys: true,
  });
  if (doc.errors.length > 0) {
    throw new PlanError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return planIssue(file, pos.line, pos.col, `invalid YAML: ${firstLine(e.message)}`);
      }),
    );
  }
  return { doc, lineCounter };
}

/** The document's data. Aliases are capped (an alias bomb is a PlanError, not a crash). */
export function documentData(doc: Document, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new PlanError([planIssue(file, 1, 1, `invalid YAML: ${firstLine(String(e))}`)]);
  }
}

/**
 * Throws the issues found, if any: a missing `${VAR}` first, and no second issue at a path it
 * already explains; `ENV_MISSING` when missing variables are the only problem.
 */
export function throwIssues(
  envIssues: readonly PlanIssue[],
  others: readonly PlanIssue[],
  present: (issue: PlanIssue) => PlanIssue = (i) => i,
): void {
  const envPaths = new Set(envIssues.map((i) => i.path));
  const issues = [...envIssues, ...others.filter((i) => !envPaths.has(i.path))];
  if (issues.length === 0) return;
  const onlyEnv = issues.every((i) => i.message.startsWith('environment variable '));
  throw new PlanError(issues.map(present), onlyEnv ? 'ENV_MISSING' : 'PLAN_INVALID');
}
