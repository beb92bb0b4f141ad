/**
 * Report files on a disk that says no: errors that name the file and the reason in words
 * (`cannot write out/results.jsonl: no space left on the device (ENOSPC)`), folders created
 * without Node's recursive mkdir, and what is left of a stream cut short.
 *
 * Node 20's `mkdir(dir, { recursive: true })` reports ENOENT instead of EROFS on a read-only
 * mount and never settles for a path under /proc, so folders are made one level at a time.
 */

import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { diskReason, errnoOf } from '../core/errno.js';
import { isStrideError, StrideError } from '../core/index.js';

/**
 * The REPORT_IO error for `path`: `cannot <doing> <path>: <reason>`. An error that already is
 * one is returned as it is, so a wrapped failure keeps the file it first named.
 */
export function reportIoError(doing: string, path: string, err: unknown): StrideError {
  if (isStrideError(err) && err.code === 'REPORT_IO') return err;
  return new StrideError('REPORT_IO', `cannot ${doing} ${path}: ${diskReason(err)}`, {
    cause: err,
    retryable: false,
  });
}

/**
 * Creates `dir` and its missing parents, one level at a time. Throws REPORT_IO naming `dir`,
 * and the level that failed when it is not `dir` itself.
 */
export async function makeDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    try {
      if ((await stat(p)).isDirectory()) break;
      throw new StrideError('REPORT_IO', `cannot create the folder ${dir}: ${p} is a file`, {
        retryable: false,
      });
    } catch (err) {
      if (isStrideError(err)) throw err;
      if (errnoOf(err) !== 'ENOENT' || dirname(p) === p)
        throw reportIoError('create the folder', dir, err);
      missing.push(p);
    }
  }
  for (const p of missing.reverse()) {
    try {
      await mkdir(p);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'EEXIST') continue; // made meanwhile by someone else: fine if a folder
      // ENOENT for a folder whose parent exists: a file system that creates nothing (/proc).
      const why =
        code === 'ENOENT' ? `the file system does not allow it (${code})` : diskReason(err);
      const at = p === resolve(dir) ? '' : ` (at ${p})`;
      throw new StrideError('REPORT_IO', `cannot create the folder ${dir}${at}: ${why}`, {
        cause: err,
        retryable: false,
      });
    }
  }
}

/**
 * Makes `dir` and proves a file can be created in it (a read-only mount, a folder of another
 * user): writing a report there would otherwise fail only once the run's answers are paid for.
 * A full disk still lets an empty file be created; that is found when writing.
 */
export async function checkWritableDirectory(dir: string): Promise<void> {
  await makeDirectory(dir);
  const probe = join(dir, `.stride-write-check-${process.pid}`);
  try {
    // One byte, not an empty file: a full file system still creates an empty file (no block
    // needed), and then the run would pay for every request before its reports fail.
    const handle = await open(probe, 'w');
    try {
      await handle.write('x');
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw reportIoError('write in the folder', dir, err);
  }
  await rm(probe, { force: true });
}

/**
 * What is left of a file a stream could not finish: cut back to its last whole line and moved
 * to `partial` (neither needs free space), so no reader takes the cut file for a complete one
 * and nothing already written is thrown away. Resolves with the whole lines kept, or
 * `undefined` when there was no file.
 */
export async function keepWholeLines(path: string, partial: string): Promise<number | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r+');
  } catch {
    return undefined;
  }
  let lines = 0;
  try {
    const { size } = await handle.stat();
    const chunk = Buffer.alloc(64 * 1024);
    let end = -1;
    // Backwards from the end to the last newline: the cut line after it is dropped.
    for (let to = size; to > 0 && end < 0; ) {
      const from = Math.max(0, to - chunk.length);
      const { bytesRead } = await handle.read(chunk, 0, to - from, from);
      const at = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (at >= 0) end = from + at + 1;
      to = from;
    }
    await handle.truncate(Math.max(0, end));
    // Then forwards, counting the lines kept.
    for (let pos = 0; pos < end; ) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, end - pos), pos);
      for (let i = 0; i < bytesRead; i++) if (chunk[i] === 0x0a) lines++;
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  await rename(path, partial);
  return lines;
}
