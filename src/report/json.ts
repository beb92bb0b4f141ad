/**
 * JSON: one document with the summary and every result, for tools that want a single file.
 * Streamed: the results array is written element by element, never built as one string.
 */

import { copyInto, FileSink, type ResultSource, writeFileStreamed } from './sink.js';
import type { ReportSummary } from './summary.js';
import { safeJson } from './text.js';
import { type FormatWriter, ResultRow, removeAll, scratchPath } from './writer.js';

/**
 * The JSON report fed one result at a time. The summary comes first in the file but is known
 * last, so the results go to a scratch file beside the report and are copied in behind the
 * summary at `finish` (a file copy, not a second read of the results).
 */
class JsonWriter implements FormatWriter {
  private first = true;

  private constructor(
    readonly path: string,
    private readonly bodyPath: string,
    private readonly body: FileSink,
  ) {}

  static async open(path: string): Promise<JsonWriter> {
    const bodyPath = scratchPath(path, 'body');
    return new JsonWriter(path, bodyPath, await FileSink.open(bodyPath, undefined, path));
  }

  add(row: ResultRow): Promise<void> {
    const sep = this.first ? '\n    ' : ',\n    ';
    this.first = false;
    return this.body.write(`${sep}${row.json}`);
  }

  async finish(summary: ReportSummary): Promise<void> {
    try {
      await this.body.close();
      await writeFileStreamed(this.path, async (out) => {
        const head = safeJson(summary, 2).replaceAll('\n', '\n  ');
        await out.write(`{\n  "summary": ${head},\n  "results": [`);
        await copyInto(out, this.bodyPath, this.path);
        await out.write(this.first ? ']\n}\n' : '\n  ]\n}\n');
      });
    } finally {
      await removeAll([this.bodyPath]);
    }
  }

  async abort(): Promise<void> {
    await this.body.abort();
    await removeAll([this.bodyPath]);
  }
}

/** Opens a JSON report writer for `path` (report/fanout.ts feeds it). */
export function openJsonWriter(path: string): Promise<FormatWriter> {
  return JsonWriter.open(path);
}

/**
 * Writes `{ "summary": ReportSummary, "results": [ ... ] }`: the summary indented, each result
 * on one line (the JSONL record), so the file is both valid JSON and readable with `grep`.
 * Reads `source` once.
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
  const writer = await JsonWriter.open(path);
  try {
    for await (const result of source()) await writer.add(new ResultRow(result));
  } catch (e) {
    await writer.abort();
    throw e;
  }
  await writer.finish(summary);
}
