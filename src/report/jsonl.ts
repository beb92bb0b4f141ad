/**
 * JSONL: one TestResult per line, for tools (jq, pandas, a data warehouse) and for streaming
 * results to disk while a run goes.
 */

import { StrideError } from '../core/index.js';
import type { TestResult } from './convert.js';
import { FileSink, type ResultSource, StagedFile, writeFileStreamed } from './sink.js';
import type { ReportSummary } from './summary.js';
import { resultRecord, safeJson } from './text.js';
import type { FormatWriter, ResultRow } from './writer.js';

/**
 * One result as a JSONL line (with its `\n`): the TestResult's keys, the timestamp as an ISO
 * string, unknown values as `null`.
 *
 * @example
 * ```ts
 * process.stdout.write(jsonlLine(result)); // {"workflowId":"support-bot","executionId":"refund-1",...}\n
 * ```
 */
export function jsonlLine(result: TestResult): string {
  return `${safeJson(resultRecord(result))}\n`;
}

/**
 * The JSONL report fed one result at a time. `live`: written straight under its name as results
 * arrive (a reader can follow it while the run goes; after a failure the file stays, cut where
 * it was, for `keepWholeLines`); otherwise under a temporary name renamed when complete.
 */
class JsonlWriter implements FormatWriter {
  private constructor(
    readonly path: string,
    private readonly file: StagedFile | FileSink,
  ) {}

  static async open(path: string, live: boolean): Promise<JsonlWriter> {
    // Live: each line handed to the stream at once (chunk 0), so the file follows the run.
    return new JsonlWriter(path, live ? await FileSink.open(path, 0) : await StagedFile.open(path));
  }

  add(row: ResultRow): Promise<void> {
    return this.file.write(`${row.json}\n`);
  }

  finish(): Promise<void> {
    return this.file instanceof StagedFile ? this.file.commit() : this.file.close();
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

/** Opens a JSONL report writer for `path` (report/fanout.ts feeds it). */
export function openJsonlWriter(
  path: string,
  options: { live?: boolean } = {},
): Promise<FormatWriter> {
  return JsonlWriter.open(path, options.live === true);
}

/**
 * Writes `results.jsonl`: one JSON object per result, in the source's order, timestamps as ISO
 * strings, unknown values as `null`. The summary is not part of the file (use the JSON report).
 *
 * @example
 * ```ts
 * await writeJsonl('out/results.jsonl', summary, () => results);
 * ```
 */
export async function writeJsonl(
  path: string,
  _summary: ReportSummary,
  source: ResultSource,
): Promise<void> {
  await writeFileStreamed(path, async (sink) => {
    for await (const result of source()) await sink.write(jsonlLine(result));
  });
}

/**
 * Appends results to a JSONL file while a run goes, so a long run's results are on disk as they
 * arrive. Each `write` hands its line to the file stream at once (Node batches lines written
 * while a write is in flight) and waits for 'drain' when the stream is over its high-water
 * mark: await it, and a slow disk slows the producer instead of filling memory. `close` flushes
 * without fsync: the run journal, not this file, is what survives a power cut.
 *
 * @example
 * ```ts
 * const out = await JsonlStreamWriter.open('.stride/runs/r1/results.jsonl');
 * try {
 *   for await (const result of service.streamTestPlan(manifest)) await out.write(result);
 * } finally {
 *   await out.close();
 * }
 * ```
 */
export class JsonlStreamWriter {
  private closed = false;
  private count = 0;

  private constructor(private readonly sink: FileSink) {}

  /** Creates (or truncates) `path`; rejects if it cannot be opened. */
  static async open(path: string): Promise<JsonlStreamWriter> {
    return new JsonlStreamWriter(await FileSink.open(path, 0));
  }

  /** Lines written so far. */
  get written(): number {
    return this.count;
  }

  /** Writes one result as a line; resolves when the stream can take more. */
  async write(result: TestResult): Promise<void> {
    if (this.closed) throw new StrideError('INVALID_STATE', 'JsonlStreamWriter.write after close');
    await this.sink.write(jsonlLine(result));
    this.count++;
  }

  /** Flushes and closes the file. Calling it again does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sink.close();
  }
}
