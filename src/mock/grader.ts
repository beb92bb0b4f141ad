/**
 * The mock as a grader and an embedder (issue #20 item 6), so graded assertions run offline:
 * - a chat completion for a grader model (`grader.models`, default `stride-grader`), or one that
 *   carries `x-mock-grade` / `metadata.__grade`, is answered with a verdict decided by a rule the
 *   test sets: pass when the graded output contains a keyword, with fixed scores and reason;
 * - `POST /v1/embeddings` answers vectors computed from a hash of the words of each text: equal
 *   texts have cosine 1, texts sharing no word about 0 (± 1/√dimensions), texts sharing words in
 *   between. OpenAI's response shape, with `usage`.
 */

import { createHash } from 'node:crypto';
import { InvalidOptionError } from '../core/index.js';

/**
 * How the mock grades. The graded output is the text between the last `<output>` and
 * `</output>` of the last user message (the layout of Stride's grading prompt), else that whole
 * message. Keywords match case-insensitively.
 */
export interface MockGraderRule {
  /** Chat requests for these models are graded. @default ['stride-grader'] */
  readonly models?: readonly string[];
  /** Pass when the graded output contains this text; without it every grade passes. */
  readonly passWhenContains?: string;
  /** Answer an unparsable verdict (prose, no JSON) when the graded output contains this text. */
  readonly garbleWhenContains?: string;
  /**
   * Never answer a grading whose graded output contains this text (a hung grader): a test kills
   * the run while such gradings are in flight, with no timing race.
   */
  readonly hangWhenContains?: string;
  /** @default 1 */
  readonly passScore?: number;
  /** @default 0 */
  readonly failScore?: number;
  /** The verdict's reason; by default it says whether the keyword was found. */
  readonly reason?: string;
}

export interface ResolvedGraderRule {
  readonly models: ReadonlySet<string>;
  readonly passWhenContains: string | undefined;
  readonly garbleWhenContains: string | undefined;
  readonly hangWhenContains: string | undefined;
  readonly passScore: number;
  readonly failScore: number;
  readonly reason: string | undefined;
}

function score(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1))
    throw new InvalidOptionError(field, value, 'a score in [0, 1]');
  return value;
}

function keyword(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '')
    throw new InvalidOptionError(field, value, 'a non-empty string');
  return value;
}

/** Validates a grader rule; throws InvalidOptionError naming the bad field. */
export function resolveGraderRule(rule: MockGraderRule | undefined): ResolvedGraderRule {
  const r = rule ?? {};
  if (typeof r !== 'object' || r === null)
    throw new InvalidOptionError('grader', r, '{ models?, passWhenContains?, ... }');
  const models = r.models ?? ['stride-grader'];
  if (!Array.isArray(models) || !models.every((m) => typeof m === 'string' && m !== ''))
    throw new InvalidOptionError('grader.models', models, 'a list of model ids');
  if (r.reason !== undefined && typeof r.reason !== 'string')
    throw new InvalidOptionError('grader.reason', r.reason, 'a string');
  return {
    models: new Set(models),
    passWhenContains: keyword(r.passWhenContains, 'grader.passWhenContains'),
    garbleWhenContains: keyword(r.garbleWhenContains, 'grader.garbleWhenContains'),
    hangWhenContains: keyword(r.hangWhenContains, 'grader.hangWhenContains'),
    passScore: score(r.passScore, 'grader.passScore', 1),
    failScore: score(r.failScore, 'grader.failScore', 0),
    reason: r.reason,
  };
}

/** The rule says this grading never gets an answer (`hangWhenContains`). */
export function gradingHangs(rule: ResolvedGraderRule, prompt: string): boolean {
  const kw = rule.hangWhenContains;
  return kw !== undefined && gradedText(prompt).toLowerCase().includes(kw.toLowerCase());
}

/** The text a grading prompt asks about: its last `<output>` block, else the whole prompt. */
export function gradedText(prompt: string): string {
  const end = prompt.lastIndexOf('</output>');
  const start = end < 0 ? -1 : prompt.lastIndexOf('<output>', end);
  if (start < 0) return prompt;
  return prompt.slice(start + '<output>'.length, end).trim();
}

/**
 * The verdict the mock gives: the text of the assistant's message. `override` is the request's
 * `x-mock-grade` / `metadata.__grade`: `pass`, `fail`, `garbage` or a score (passes at >= 0.5).
 */
export function mockVerdict(rule: ResolvedGraderRule, prompt: string, override?: string): string {
  const output = gradedText(prompt).toLowerCase();
  const garble =
    override === 'garbage' ||
    (override === undefined &&
      rule.garbleWhenContains !== undefined &&
      output.includes(rule.garbleWhenContains.toLowerCase()));
  if (garble) return 'I think this answer is mostly fine, but I would not put a number on it.';
  let pass: boolean;
  let value: number;
  let reason: string;
  const forced = override === undefined || override === '' ? Number.NaN : Number(override);
  if (override === 'pass' || override === 'fail') {
    pass = override === 'pass';
    value = pass ? rule.passScore : rule.failScore;
    reason = rule.reason ?? `forced ${override} by the request`;
  } else if (Number.isFinite(forced)) {
    value = Math.min(1, Math.max(0, forced));
    pass = value >= 0.5;
    reason = rule.reason ?? `forced score ${value} by the request`;
  } else if (rule.passWhenContains === undefined) {
    pass = true;
    value = rule.passScore;
    reason = rule.reason ?? 'the mock passes every answer';
  } else {
    const kw = rule.passWhenContains;
    pass = output.includes(kw.toLowerCase());
    value = pass ? rule.passScore : rule.failScore;
    reason =
      rule.reason ?? (pass ? `the answer mentions "${kw}"` : `the answer does not mention "${kw}"`);
  }
  return JSON.stringify({ pass, score: value, reason });
}

/** Words of a text, lower-cased: what the embedding is built from. */
function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

const wordVectors = new Map<string, Float64Array>();

/** A word's pseudo-random direction, from the SHA-256 of the word (stable across runs and hosts). */
function wordVector(word: string, dims: number): Float64Array {
  const key = `${dims}:${word}`;
  const hit = wordVectors.get(key);
  if (hit !== undefined) return hit;
  const v = new Float64Array(dims);
  let block = 0;
  let bytes = Buffer.alloc(0);
  for (let i = 0; i < dims; i++) {
    if ((i * 2) % 32 === 0) bytes = createHash('sha256').update(`${word}#${block++}`).digest();
    // Two bytes per component, centred on 0.
    const off = (i * 2) % 32;
    v[i] = (bytes.readUInt16BE(off) - 32767.5) / 32768;
  }
  if (wordVectors.size < 50_000) wordVectors.set(key, v);
  return v;
}

/**
 * The mock's embedding of a text: the sum of its words' directions, normalized (unit length).
 * A text without words gets the direction of its whole text, so it is still a unit vector.
 */
export function mockEmbedding(text: string, dims: number): number[] {
  const ws = words(text);
  const sum = new Float64Array(dims);
  for (const w of ws.length > 0 ? ws : [text]) {
    const v = wordVector(w, dims);
    for (let i = 0; i < dims; i++) sum[i]! += v[i]!;
  }
  let norm = 0;
  for (let i = 0; i < dims; i++) norm += sum[i]! * sum[i]!;
  norm = Math.sqrt(norm);
  return Array.from(sum, (x) => (norm === 0 ? 0 : x / norm));
}

/** Tokens OpenAI would count for an embedding input, about a quarter of its characters. */
export function embeddingTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
