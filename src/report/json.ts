/**
 * JSON: one document with the summary and every result, for tools that want a single file.
 * Streamed: the results array is written element by element, never built as one string.
 */

import { type ResultSource, writeFileStreamed } from './sink.js';
import type { ReportSummary } from './summary.js';
import { resultRecord, safeJson } from './text.js';

/**
 * Writes `{ "summary": ReportSummary, "results": [ ... ] }`: the summary indented, each result
 * on one line (the JSONL record), so the file is both valid JSON and readable with `grep`.
 *
 * @example
 * ```ts
 * await writeJson('out/results.json', summary, () => results);
 * const { summary: s, results: r } = JSON.parse(await readFile('out/results.json', 'utf8'));
 * ```
 */
export async function writeJson(
  path: string,
  summary: ReportSummary,
  source: ResultSource,
): Promise<void> {
  await writeFileStreamed(path, async (sink) => {
    const head = safeJson(summary, 2).replaceAll('\n', '\n  ');
    await sink.write(`{\n  "summary": ${head},\n  "results": [`);
    let first = true;
    for await (const result of source()) {
      await sink.write(`${first ? '\n    ' : ',\n    '}${safeJson(resultRecord(result))}`);
      first = false;
    }
    await sink.write(first ? ']\n}\n' : '\n  ]\n}\n');
  });
}
