/**
 * `llm_rubric` (issue #20 item 1): the grading prompt, the robust reading of the grader's
 * verdict, and the port through which assertions reach a grader. The grader's calls themselves
 * are engine tasks (runner/grader.ts); nothing here does I/O.
 */

import { StrideError } from '../core/errors.js';

/** What a grader is asked: the case's input, the output and the rubric. */
export interface GradeRequest {
  readonly caseId: string;
  readonly rubric: string;
  readonly input: unknown;
  readonly output: string;
  /** Another model of the grader, for this assertion. */
  readonly model?: string;
}

/** A grader's verdict, read from its answer. */
export interface Verdict {
  readonly pass: boolean;
  /** 0..1 */
  readonly score: number;
  readonly reason: string;
}

/** What a grading cost, kept apart from the app's usage ("grading cost"). */
export interface GradeUsage {
  /** Grader calls started, retries included. */
  readonly attempts: number;
  readonly tokens?: number;
  readonly cost?: number;
}

/** A grade: the verdict and what it took. */
export interface Grade extends Verdict {
  readonly usage: GradeUsage;
}

/**
 * The port assertions grade through (`EvaluateOptions.grader`). Rejects with a StrideError when
 * the grading could not be done: `GRADE_UNPARSABLE` (an answer without a verdict), or the
 * grader call's own error after its retries.
 */
export interface Grader {
  grade(request: GradeRequest, signal?: AbortSignal): Promise<Grade>;
  /**
   * The embedding of `text` (`similar`, issue #20 item 2), from the grader's `/v1/embeddings`.
   * A grader computes each distinct text once per run: `usage` is the call's for the first
   * asker and `{ attempts: 0 }` for the ones that shared it. Absent: `similar` cannot be judged.
   */
  embed?(text: string, signal?: AbortSignal): Promise<Embedding>;
}

/** An embedding and what it took (nothing when it was computed for an earlier case). */
export interface Embedding {
  readonly vector: readonly number[];
  readonly usage: GradeUsage;
}

/**
 * The cosine similarity of two vectors, -1..1 (0 when either is all zeros).
 *
 * @example
 * ```ts
 * cosineSimilarity([1, 0], [1, 0]); // 1
 * cosineSimilarity([1, 0], [0, 1]); // 0
 * ```
 */
export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length)
    throw new Error(`embeddings of different lengths (${a.length} and ${b.length})`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 || nb === 0) return 0;
  // Clamped: rounding can put equal vectors a hair above 1.
  return Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
}

/** The system message of a grading: the grader answers with JSON only. */
export const GRADER_SYSTEM =
  'You grade an answer against a rubric. Reply with JSON only: ' +
  '{"pass": true or false, "score": a number from 0 to 1, "reason": "one sentence"}.';

/**
 * The user message of a grading. The output sits between `<output>` tags (the mock's grader
 * reads it there), the rubric and the input before it.
 */
export function gradingPrompt(r: GradeRequest): string {
  const input = typeof r.input === 'string' ? r.input : JSON.stringify(r.input ?? null);
  return `<rubric>\n${r.rubric}\n</rubric>\n<input>\n${input}\n</input>\n<output>\n${r.output}\n</output>`;
}

/** The first balanced `{...}` of a text that parses as JSON, or undefined. */
function firstJsonObject(text: string): unknown {
  for (let start = text.indexOf('{'); start >= 0; start = text.indexOf('{', start + 1)) {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        try {
          return JSON.parse(text.slice(start, i + 1));
        } catch {
          break;
        }
      }
    }
  }
  return undefined;
}

function readPass(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toLowerCase();
  if (['pass', 'passed', 'true', 'yes'].includes(s)) return true;
  if (['fail', 'failed', 'false', 'no'].includes(s)) return false;
  return undefined;
}

function readScore(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= 1 ? n : undefined;
}

/**
 * Reads a grader's answer: the first JSON object in it (prose and ```json fences around it are
 * ignored), with `pass` (a boolean, or "pass"/"fail"/"yes"/"no") and/or `score` (0..1, a number
 * or numeric string), and `reason`. A missing score is 1 or 0 from `pass`; a missing `pass` is
 * `score >= 0.5`. Undefined when there is no such object, or a score outside 0..1.
 *
 * @example
 * ```ts
 * parseVerdict('Sure!\n```json\n{"pass": "yes", "score": "0.8"}\n```');
 * // { pass: true, score: 0.8, reason: '' }
 * ```
 */
export function parseVerdict(text: string): Verdict | undefined {
  const o = firstJsonObject(text);
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const r = o as Record<string, unknown>;
  const pass = readPass(r.pass ?? r.passed ?? r.verdict);
  const hasScore = r.score !== undefined && r.score !== null;
  const score = hasScore ? readScore(r.score) : undefined;
  if (hasScore && score === undefined) return undefined;
  if (pass === undefined && score === undefined) return undefined;
  const reason = typeof r.reason === 'string' ? r.reason : '';
  return {
    pass: pass ?? (score as number) >= 0.5,
    score: score ?? (pass ? 1 : 0),
    reason,
  };
}

/** The error of a grading whose answer holds no verdict: the case ends `error`, not `failed`. */
export function unparsableGrade(answer: string): StrideError {
  const shown = answer.length > 200 ? `${answer.slice(0, 197)}...` : answer;
  return new StrideError(
    'GRADE_UNPARSABLE',
    `the grader's answer has no verdict (expected JSON {"pass", "score", "reason"}): ${JSON.stringify(shown)}`,
    { retryable: false },
  );
}
