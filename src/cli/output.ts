/**
 * The report folder a command writes to, checked before anything runs: a folder that cannot be
 * created or written (a read-only mount, a path under a file, /proc) is bad input, exit 2, found
 * before the journal is opened or a request is paid for.
 */

import { isStrideError, StrideError } from '../core/index.js';
import { checkWritableDirectory, keepWholeLines } from '../report/disk.js';
import type { RunHistory } from '../runner/history.js';
import { StoreError } from '../store/errors.js';
import type { Journal } from '../store/journal.js';

/**
 * Creates `dir` if needed and proves a file can be written in it; otherwise throws an
 * INVALID_OPTION (exit 2) naming `flag`, the folder and the reason:
 * `--out /mnt/ro/out: cannot create the folder /mnt/ro/out: the file system is read-only (EROFS)`.
 */
export async function prepareOutput(flag: string, dir: string): Promise<void> {
  try {
    await checkWritableDirectory(dir);
  } catch (err) {
    throw new StrideError(
      'INVALID_OPTION',
      `${flag} ${dir}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err, retryable: false },
    );
  }
}

/** `results.jsonl` when streaming it failed: what is left of it, and why. */
export interface JsonlFailure {
  readonly path: string;
  readonly error: unknown;
  /** The whole lines written before the failure, moved here; absent if no file was made. */
  readonly partial?: { readonly path: string; readonly lines: number };
}

/**
 * After `results.jsonl` failed while the run went (a full disk): its whole lines are kept in
 * `results.partial.jsonl`, so no reader takes a cut file for the run's results.
 */
export async function keepPartialJsonl(path: string, error: unknown): Promise<JsonlFailure> {
  const partialPath = path.replace(/(\.jsonl)?$/, '.partial.jsonl');
  const lines = await keepWholeLines(path, partialPath).catch(() => undefined);
  return lines === undefined
    ? { path, error }
    : { path, error, partial: { path: partialPath, lines } };
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One sentence on a JSONL failure: the file, the reason, where its lines are. */
export function describeJsonlFailure(f: JsonlFailure): string {
  const kept =
    f.partial === undefined
      ? ''
      : `; its first ${f.partial.lines} whole line(s) are kept in ${f.partial.path}`;
  return `${messageOf(f.error)}${kept}`;
}

/** Where a session's run lives, for the commands a failure message suggests. */
export interface SessionPlace {
  readonly runId: string;
  readonly history: RunHistory;
  readonly resumeCommand: string;
  /** The session's journal: after a failure it says what it kept (`Journal.failure`). */
  readonly journal?: Journal;
}

function dbFile(history: RunHistory): string | undefined {
  const file = (history.store as { file?: unknown }).file;
  return typeof file === 'string' ? file : undefined;
}

/** What a session streamed to results.jsonl: the file and how many verdicts and cancels. */
export interface JsonlStreamed {
  readonly path: string;
  /** Results with a verdict (succeeded, failed, timeout, error) this session wrote. */
  readonly verdicts: number;
  readonly cancelled: number;
}

/**
 * The error a session ends with when its journal failed (STORE_IO: a full disk): the database
 * file and the reason, what the journal keeps, where the answers it could not take are, and
 * the resume command. The buffered part of the journal is written once more first (the disk
 * may have room by now: then nothing that came back is lost), and the store is closed here, so
 * its closing cannot replace this message with an echo of the same failure.
 */
export async function journalFailure(
  err: unknown,
  place: SessionPlace | undefined,
  jsonl: JsonlStreamed | JsonlFailure | undefined,
): Promise<unknown> {
  if (!(err instanceof StoreError) || err.failure !== 'io' || place === undefined) return err;
  const { history, runId, journal } = place;
  const inFlight = journal?.failure?.inFlight;
  const parts = [
    `${err.message}. The run was stopped: nothing more was sent${inFlight === undefined ? '' : `, and the ${inFlight} request(s) in flight were let finish, not aborted (they were paid for)`}.`,
  ];
  let flushed = true;
  try {
    // Once more (the disk may have room by now): the journal writes what it kept in memory.
    await (journal ?? history.store).flush();
  } catch {
    flushed = false;
  }
  await history.store.close().catch(() => undefined);
  const missing = flushed ? [] : (journal?.failure?.unwritten ?? []);
  parts.push(
    flushed
      ? 'Written once the run had stopped, the journal keeps every result that came back.'
      : missing.length > 0
        ? `The journal keeps what it had written before; ${missing.length} answered case(s) may be missing from it (${missing.slice(0, 10).join(', ')}${missing.length > 10 ? `, and ${missing.length - 10} more` : ''}): a resume sends them again.`
        : journal === undefined
          ? 'The journal keeps what it had written before; what came back after could not be written to it.'
          : 'The journal keeps what it had written before; no answer came back after that.',
  );
  if (jsonl !== undefined) {
    parts.push(
      'error' in jsonl
        ? `${describeJsonlFailure(jsonl)}.`
        : `${jsonl.path} has this session's ${jsonl.verdicts} verdict(s) (and ${jsonl.cancelled} cancelled case(s)).`,
    );
  }
  parts.push(
    `Free space, then resume with: ${place.resumeCommand.replace('{id}', runId)} (cases without a result in the journal are sent again).`,
  );
  return new StoreError('io', err.file, parts.join('\n'), err);
}

/**
 * The error a session ends with when its reports could not be written (REPORT_IO): the file and
 * the reason, then how to write them again from the journal, which has every result.
 */
export function reportFailure(
  err: unknown,
  place: SessionPlace,
  options: {
    readonly out: string;
    readonly formats: readonly string[];
    /** results.jsonl, when streaming it had failed already. */
    readonly jsonl?: JsonlFailure | undefined;
  },
): unknown {
  if (!isStrideError(err) || err.code !== 'REPORT_IO') return err;
  const partial = options.jsonl?.partial;
  const kept =
    partial === undefined
      ? ''
      : `\nThe first ${partial.lines} result(s), streamed while the run went, are in ${partial.path}.`;
  const db = dbFile(place.history);
  const command = `stride report ${place.runId}${db === undefined ? '' : ` --db ${db}`} --format ${options.formats.join(',')} -o ${options.out.endsWith('/') ? options.out : `${options.out}/`}`;
  return new StrideError(
    'REPORT_IO',
    `${err.message}${kept}\nEvery result of run ${place.runId} is in the journal: once there is room, write the reports again with: ${command}`,
    { cause: err, retryable: false },
  );
}
