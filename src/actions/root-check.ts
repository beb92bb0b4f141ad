/**
 * Warnings about an action plan's file sandbox (`tools.root`). A root is legal anywhere, so these
 * never stop a plan; they say when the sandbox confines nothing: the root of the file system,
 * or a folder outside the plan's own (often through a symbolic link, such as a root that is a
 * link to /etc), where `file.write` can change files the plan's author may not have meant.
 */

import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, parse, relative, resolve, sep } from 'node:path';
import type { ActionPlanFile } from './load.js';

async function real(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  // Another drive (Windows) gives an absolute `rel`; `..x` is a name, `..` a step up.
  return !isAbsolute(rel) && rel.split(sep)[0] !== '..';
}

/**
 * What is worth a warning about `file.fileRoot`, each message naming the plan file and
 * `tools.root`. Empty when the plan has no file tools or its root stays inside its folder.
 *
 * @example
 * ```ts
 * for (const w of await fileRootWarnings(file)) console.error(`warning: ${w}`);
 * ```
 */
export async function fileRootWarnings(file: ActionPlanFile): Promise<string[]> {
  const root = file.fileRoot;
  if (root === undefined) return [];
  const where = `${file.file ?? '<plan>'}: tools.root`;
  const realRoot = await real(root);
  if (realRoot === undefined) {
    return [
      `${where}: ${root} does not exist or cannot be read; file.read and file.write will fail`,
    ];
  }
  const shown = realRoot === root ? root : `${root} (really ${realRoot})`;
  if (parse(realRoot).root === realRoot) {
    return [
      `${where} is ${shown}, the root of the file system: file.write can change any file this user may write`,
    ];
  }
  const folder = resolve(dirname(file.file ?? 'plan'));
  const realFolder = (await real(folder)) ?? folder;
  if (inside(realFolder, realRoot)) return [];
  return [
    `${where} is ${shown}, outside the plan's folder ${realFolder}: file.write can change files there`,
  ];
}
