/**
 * Writing a report file as a stream: small writes are gathered into chunks, the stream's
 * backpressure is honoured (a full buffer waits for 'drain'), and a finished file appears under
 * its name in one rename, so a reader (or a crash) never sees half a report.
 */

import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { TestResult } from './convert.js';
import { reportIoError } from './disk.js';

/**
 * Where a writer reads results from: a function that returns a fresh iterable on every call
 * (an array, `() => store.results(runId)`, a generator function).
 *
 * A function rather than an iterable because some formats read the results more than once: the
 * JUnit writer reads them once per dataset (a `<testsuite>`'s counts come before its cases, and
 * grouping a million cases in memory is what bounded memory rules out).
 */
export type ResultSource = () => Iterable<TestResult> | AsyncIterable<TestResult>;

/** Bytes gathered before a chunk is handed to the stream: fewer, larger writes. */
const CHUNK = 64 * 1024;

/**
 * A text file written through a stream. `write` resolves once the text is accepted; when the
 * stream's buffer is full it waits for 'drain', so a fast producer cannot grow memory.
 */
export class FileSink {
  private pending: string[] = [];
  private pendingLength = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly stream: WriteStream,
    private readonly chunk: number,
    private readonly name: string,
  ) {
    // Kept rather than thrown from an event handler: the next write or close rethrows it.
    stream.on('error', (e) => this.fail(e));
  }

  /** Keeps the first failure, naming the file: Node's says only `ENOSPC: ..., write`. */
  private fail(e: unknown): Error {
    this.failure ??= reportIoError('write', this.name, e);
    return this.failure;
  }

  /**
   * Opens (creates or truncates) `path`. Rejects if the file cannot be opened.
   * `chunk` is how many characters to gather before writing; 0 writes through at once.
   * Errors (REPORT_IO) name `name`: the file the user asked for, when `path` is a temporary one.
   */
  static async open(path: string, chunk = CHUNK, name = path): Promise<FileSink> {
    const stream = createWriteStream(path, { encoding: 'utf8' });
    try {
      await once(stream, 'ready');
    } catch (err) {
      throw reportIoError('write', name, err);
    }
    return new FileSink(stream, chunk, name);
  }

  /** Appends `text`. Await it: it waits while the stream is over its high-water mark. */
  async write(text: string): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.pending.push(text);
    this.pendingLength += text.length;
    if (this.pendingLength >= this.chunk) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingLength === 0) return;
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    // `once` rejects if 'error' is emitted while we wait, so a full disk cannot hang us here.
    try {
      if (!this.stream.write(text)) await once(this.stream, 'drain');
    } catch (e) {
      throw this.fail(e);
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** Writes what is gathered and closes the file. No fsync: a report can be written again. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.stream.end();
      await finished(this.stream).catch((e: unknown) => this.fail(e));
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** Closes the file after a failure, without flushing; never throws. */
  async abort(): Promise<void> {
    this.pending = [];
    this.pendingLength = 0;
    this.stream.destroy();
    await finished(this.stream).catch(() => undefined);
  }
}

/**
 * A report file written under a temporary name (`path.<pid>.tmp`) and renamed over `path` by
 * `commit`, so no reader (or crash) sees half a report; `abort` removes the temporary file and
 * leaves the old `path`, if any, as it was. The push-style face of `writeFileStreamed`, for
 * writers fed one result at a time (report/fanout.ts).
 */
export class StagedFile {
  private constructor(
    readonly path: string,
    private readonly temp: string,
    readonly sink: FileSink,
  ) {}

  static async open(path: string, chunk = CHUNK): Promise<StagedFile> {
    const temp = `${path}.${process.pid}.tmp`;
    return new StagedFile(path, temp, await FileSink.open(temp, chunk, path));
  }

  write(text: string): Promise<void> {
    return this.sink.write(text);
  }

  /** Closes the file and renames it to its name. On failure the temporary file is removed. */
  async commit(): Promise<void> {
    try {
      await this.sink.close();
      await rename(this.temp, this.path).catch((e: unknown) => {
        throw reportIoError('write', this.path, e);
      });
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Drops what was written; never throws. */
  async abort(): Promise<void> {
    await this.sink.abort();
    await rm(this.temp, { force: true }).catch(() => undefined);
  }
}

/**
 * Appends the text of `file` to `sink` (a report's body, kept aside until its head, which
 * needs the summary, could be written). Rejects with REPORT_IO naming `name`.
 */
export async function copyInto(sink: FileSink, file: string, name: string): Promise<void> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: CHUNK });
  try {
    for await (const text of stream) await sink.write(text as string);
  } catch (e) {
    throw reportIoError('write', name, e);
  } finally {
    stream.destroy();
  }
}

/**
 * Writes `path` with `fill`: into `path.<pid>.tmp` first, renamed over `path` when complete;
 * on failure the temporary file is removed and the old `path`, if any, is left as it was.
 */
export async function writeFileStreamed(
  path: string,
  fill: (sink: FileSink) => Promise<void>,
): Promise<void> {
  const file = await StagedFile.open(path);
  try {
    await fill(file.sink);
  } catch (e) {
    await file.abort();
    throw e;
  }
  await file.commit();
}
