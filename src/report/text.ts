/**
 * Text helpers shared by the report writers: escaping for HTML and XML, JSON that never throws,
 * and the plain-JSON record of a TestResult that the JSONL and JSON reports write.
 */

import type { TestResult } from './convert.js';

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * An integer with thousands separators, as `toLocaleString('en-US')` writes it (`1234567` ->
 * `1,234,567`), without it: the first toLocaleString call loads ICU's locale data, ~190 ms of a
 * CLI run's start-up (bench/startup.mjs). Other numbers go to toLocaleString.
 *
 * @example
 * ```ts
 * groupDigits(1234567); // '1,234,567'
 * ```
 */
export function groupDigits(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US');
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * Escapes text for HTML element content and quoted attribute values. Every report value (a case
 * id, a model's answer) is untrusted: an answer of `<script>` must stay text.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** True for a UTF-16 code unit XML 1.0 forbids on its own (surrogates are checked in pairs). */
function forbiddenInXml(c: number): boolean {
  return (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0xfffe || c === 0xffff;
}

/**
 * Removes the characters XML 1.0 forbids anywhere, even escaped: C0 controls other than tab,
 * LF and CR, U+FFFE/U+FFFF, and unpaired surrogates. A parser stops at the first one, so a
 * single NUL in a model's answer would make a whole JUnit file unreadable to CI. (A loop over
 * code units rather than a regular expression: it is as fast, and lint forbids control
 * characters in patterns.)
 */
export function stripInvalidXml(text: string): string {
  let out: string[] | undefined;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let bad = forbiddenInXml(c);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair
        continue;
      }
      bad = true;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      bad = true;
    }
    if (bad) {
      out ??= [];
      out.push(text.slice(from, i));
      from = i + 1;
    }
  }
  if (out === undefined) return text;
  out.push(text.slice(from));
  return out.join('');
}

const XML_TEXT_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // In an attribute, a parser normalises raw tab/CR/LF to spaces; character references survive.
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/** Escapes text for XML element content: `& < > " '` escaped, forbidden characters removed. */
export function escapeXml(text: string): string {
  return stripInvalidXml(text).replace(/[&<>"']/g, (c) => XML_TEXT_ESCAPES[c]!);
}

/**
 * Escapes text for a double-quoted XML attribute value. Tab, CR and LF become character
 * references, so a multi-line failure message keeps its lines.
 */
export function escapeXmlAttr(text: string): string {
  return stripInvalidXml(text).replace(/[&<>"'\t\n\r]/g, (c) => XML_TEXT_ESCAPES[c]!);
}

/**
 * `JSON.stringify` that never throws: a BigInt becomes its decimal string and a cycle becomes
 * `"[Circular]"`. A target's output is whatever the target returned; one odd value must not
 * abort a report of a million cases. `undefined` (or a function) at the top gives `null`.
 */
export function safeJson(value: unknown, indent?: number): string {
  try {
    return JSON.stringify(value, null, indent) ?? 'null';
  } catch {
    const seen = new WeakSet<object>();
    const replacer = (_key: string, v: unknown): unknown => {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
      }
      return v;
    };
    try {
      return JSON.stringify(value, replacer, indent) ?? 'null';
    } catch {
      // A toJSON that throws, a getter that throws: give up on this value only.
      return JSON.stringify(String(value));
    }
  }
}

/** Cuts `text` to `max` characters, saying how much was cut. */
export function clip(text: string, max: number): string {
  return text.length > max
    ? `${text.slice(0, max)}\n... (${groupDigits(text.length - max)} more characters)`
    : text;
}

/** ISO 8601 of a Date, or null for an invalid one (toISOString would throw). */
export function isoOrNull(date: Date): string | null {
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * The case id a report shows: the id, plus `#N` for a repeated case whose id does not already
 * end with it (the plans layer appends it; a library user's own ids may not).
 */
export function caseName(result: TestResult): string {
  const r = result.metadata.repeatIndex;
  return r === undefined || result.executionId.endsWith(`#${r}`)
    ? result.executionId
    : `${result.executionId}#${r}`;
}

/** The dataset a result is counted under: its dataset, or "default". */
export function datasetOf(result: TestResult): string {
  return result.dataset ?? result.metadata.dataset ?? 'default';
}

/** A cancelled case: not a verdict, reported as skipped (JUnit) or set apart (HTML). */
export function isCancelled(result: TestResult): boolean {
  // The converter maps `cancelled` to ERROR; only that pairing counts, so the summary's counts
  // and the JUnit writer's per-case choice can never disagree.
  return result.metadata.taskStatus === 'cancelled' && result.status === 'error';
}

/**
 * A TestResult as plain JSON: the same field names, the timestamp as an ISO string, and
 * `null` (not a missing key) for what is unknown, so every line has the same keys. Beside
 * `status`, `cancelled` and `cancelReason` say which `error` cases were cancelled, not judged
 * (the summary counts them apart).
 */
export function resultRecord(result: TestResult): Record<string, unknown> {
  const m = result.metadata;
  return {
    workflowId: result.workflowId,
    executionId: result.executionId,
    timestamp: isoOrNull(result.timestamp),
    status: result.status,
    // Beside the seeds' status: a cancelled case is `error` there, and this says it was not judged.
    cancelled: isCancelled(result),
    cancelReason: result.metadata.cancelReason ?? null,
    executionTime: result.executionTime,
    tokensUsed: result.tokensUsed,
    cost: result.cost ?? null,
    inputs: result.inputs,
    outputs: result.outputs ?? null,
    errorMessage: result.errorMessage ?? null,
    dataset: result.dataset ?? null,
    metadata: {
      dataset: m.dataset ?? null,
      scenario: m.scenario ?? null,
      attemptCount: m.attemptCount,
      taskStatus: m.taskStatus,
      errorCode: m.errorCode ?? null,
      cancelReason: m.cancelReason ?? null,
      tags: m.tags,
      repeatIndex: m.repeatIndex ?? null,
    },
    assertions: result.assertions,
    score: result.score ?? null,
  };
}
