import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function mtime(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/**
 * The first source whose build output is missing or older than it, or undefined when `dist/` is
 * current. Per file is exact here: with `isolatedModules` each output depends on its own source
 * (and the compiler options), so a file-by-file comparison never misses a change, and leftover
 * outputs of deleted sources do not force a rebuild.
 */
export function staleSource(root = ROOT): string | undefined {
  const options = Math.max(
    mtime(join(root, 'tsconfig.json')) ?? 0,
    mtime(join(root, 'tsconfig.build.json')) ?? 0,
  );
  const src = join(root, 'src');
  for (const file of sources(src)) {
    const out = join(root, 'dist', relative(src, file).replace(/\.ts$/, '.js'));
    const built = mtime(out);
    if (built === undefined || built < Math.max(options, mtime(file) ?? 0)) {
      return relative(root, file);
    }
  }
  return undefined;
}

/** Runs `tsc -p tsconfig.build.json` when `dist/` is missing or older than a source. */
export function ensureBuilt(root = ROOT): void {
  const stale = staleSource(root);
  if (stale === undefined) return;
  process.stderr.write(`[test set-up] building dist/ (${stale} is newer than its build)\n`);
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: root,
    encoding: 'utf8',
    stdio: 'pipe',
  });
  if (r.status !== 0) {
    throw new Error(`building dist/ failed (tsc -p tsconfig.build.json):\n${r.stdout}${r.stderr}`);
  }
}
