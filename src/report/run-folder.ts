/**
 * One folder per run under `--out` (issue #18 item 14: every run used to overwrite
 * `./stride-out`, so an action-plan run replaced the demo's reports). A run writes to
 * `<out>/<run-id>/`; `<out>/latest` is a symbolic link to the folder of the run that wrote there
 * last, so scripts keep one stable path (`stride-out/latest/report.html`).
 *
 * Where a symbolic link cannot be made (a file system without them, Windows without the
 * privilege: Windows is not a target, but a FAT-formatted USB stick is), `<out>/latest.txt`
 * names the folder instead, and the caller is told so it can say it.
 */

import { readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoOf } from '../core/errno.js';
import { makeDirectory, reportIoError } from './disk.js';

/** The link to the latest run's folder, inside `--out`. */
export const LATEST_LINK = 'latest';
/** Written instead of the link where links cannot be made: the latest run's folder name. */
export const LATEST_INDEX = 'latest.txt';

/**
 * The folder of run `runId`'s reports under `out`. Run ids are single path segments (no `/`,
 * no leading `.`: store/run-id.ts), so this stays inside `out`.
 *
 * @example
 * ```ts
 * runFolder('stride-out', '20261203-191500-ab12'); // 'stride-out/20261203-191500-ab12'
 * ```
 */
export function runFolder(out: string, runId: string): string {
  return join(out, runId);
}

/** Where `latest` points after `pointLatest`: a link, or an index file where links fail. */
export interface LatestPointer {
  readonly kind: 'link' | 'index';
  readonly path: string;
  /** Why no link was made (only for `index`). */
  readonly reason?: string;
}

/** What `pointLatest` uses to make a link (a test passes one that fails as Windows would). */
export type MakeLink = (target: string, path: string) => Promise<void>;

/**
 * Creates run `runId`'s folder under `out` and points `<out>/latest` at it. Returns the folder
 * and where `latest` is. Throws REPORT_IO when the folder cannot be made; a `latest` that cannot
 * be updated (a real folder named `latest`: a run whose id is `latest`) is left alone.
 */
export async function openRunFolder(
  out: string,
  runId: string,
  makeLink: MakeLink = (target, path) => symlink(target, path, 'dir'),
): Promise<{ dir: string; latest: LatestPointer | undefined }> {
  const dir = runFolder(out, runId);
  await makeDirectory(dir);
  return { dir, latest: await pointLatest(out, runId, makeLink) };
}

/**
 * Points `<out>/latest` at `<out>/<runId>`: a relative link (the folder can be moved or
 * mounted elsewhere), made under a temporary name and renamed over the old one, so a reader
 * never finds `latest` missing and two runs ending together leave one of them, whole.
 */
export async function pointLatest(
  out: string,
  runId: string,
  makeLink: MakeLink,
): Promise<LatestPointer | undefined> {
  if (runId === LATEST_LINK) return undefined;
  const path = join(out, LATEST_LINK);
  const temp = join(out, `.${LATEST_LINK}-${process.pid}-${Date.now()}`);
  try {
    await makeLink(runId, temp);
  } catch (err) {
    const code = errnoOf(err);
    // Links unsupported or not allowed here: say it with an index file instead.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      const index = join(out, LATEST_INDEX);
      try {
        await writeFile(`${index}.tmp`, `${runId}\n`);
        await rename(`${index}.tmp`, index);
      } catch (e) {
        throw reportIoError('write', index, e);
      }
      return { kind: 'index', path: index, reason: code };
    }
    throw reportIoError('link', path, err);
  }
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    // `latest` is a real folder or file (not ours): keep it, the run's folder is still written.
    if (errnoOf(err) === 'EISDIR' || errnoOf(err) === 'ENOTEMPTY') return undefined;
    throw reportIoError('link', path, err);
  }
  return { kind: 'link', path };
}

/** The run folder `<out>/latest` names, from the link or the index file; undefined if none. */
export async function latestRunId(out: string): Promise<string | undefined> {
  try {
    return await readlink(join(out, LATEST_LINK));
  } catch {
    // No link: the index file written where links cannot be made, if any.
  }
  try {
    const text = (await readFile(join(out, LATEST_INDEX), 'utf8')).trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}
