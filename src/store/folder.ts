/**
 * The journal's folder, made and checked synchronously (the store opens in its constructor):
 * one level at a time, because Node 20's `mkdirSync(dir, { recursive: true })` reports ENOENT
 * for a read-only mount and never returns for a path under /proc; and the reason SQLite's
 * `unable to open database file` does not give.
 */

import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { diskReason, errnoOf } from '../core/errno.js';

/** An error keeping the code of `cause`, with a message that says why in words. */
function because(cause: unknown, message: string): Error {
  return Object.assign(new Error(message, { cause }), { code: errnoOf(cause) });
}

/**
 * Creates the absolute folder `dir` and its missing parents. Throws an error whose message says
 * why and where: `the file system is read-only (EROFS) at /mnt/ro/runs`.
 */
export function makeFolderSync(dir: string): void {
  const missing: string[] = [];
  for (let p = dir; ; p = dirname(p)) {
    try {
      if (statSync(p).isDirectory()) break;
      throw Object.assign(new Error(`${p} is a file, not a folder`), { code: 'ENOTDIR' });
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || dirname(p) === p)
        throw because(err, `${diskReason(err)} at ${p}`);
      missing.push(p);
    }
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') continue;
      // ENOENT for a folder whose parent exists: a file system that creates nothing (/proc).
      const why =
        errnoOf(err) === 'ENOENT' ? 'the file system does not allow it (ENOENT)' : diskReason(err);
      throw because(err, `${why} at ${p}`);
    }
  }
}

/**
 * Why SQLite could not open `file` (it says only `unable to open database file`): the file or
 * its folder cannot be written. `undefined` when no reason is found.
 */
export function whyNotOpened(file: string): string | undefined {
  const [target, what] = existsSync(file) ? [file, 'the file'] : [dirname(file), 'its folder'];
  try {
    accessSync(target, constants.R_OK | constants.W_OK);
  } catch (err) {
    return `${what}: ${diskReason(err)}`;
  }
  return undefined;
}

/** SQLite's open error, with the reason `whyNotOpened` finds added to its message. */
export function openError(err: unknown, file: string): unknown {
  if (errnoOf(err) !== 'SQLITE_CANTOPEN') return err;
  const why = whyNotOpened(file);
  if (why === undefined) return err;
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(`${message} (${why})`, { cause: err }), {
    code: 'SQLITE_CANTOPEN',
  });
}
