import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleSource as staleIn } from '../../scripts/dist-state.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The first source whose build output is missing or older than it, or undefined when `dist/` is
 * current (scripts/dist-state.mjs: `npm test`'s pre-test steps use the same rule).
 */
export function staleSource(root = ROOT): string | undefined {
  return staleIn(root);
}

/**
 * Runs `npm run build`'s two steps as needed: `tsc -p tsconfig.build.json` when `dist/` is
 * missing or older than a source, then scripts/bundle.mjs (the bin's bundle and code cache) when
 * tsc ran or the bundle is missing or older than tsc's output, so the spawned bin runs the code
 * under test whichever way it starts.
 */
export function ensureBuilt(root = ROOT): void {
  const stale = staleSource(root);
  if (stale !== undefined) {
    process.stderr.write(`[test set-up] building dist/ (${stale} is newer than its build)\n`);
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    run(root, [tsc, '-p', 'tsconfig.build.json'], 'tsc -p tsconfig.build.json');
  }
  const bundle = mtime(join(root, 'dist', 'cli', 'stride.cjs'));
  const cache = mtime(join(root, 'dist', 'cli', 'stride.cjs.cache'));
  const entry = mtime(join(root, 'dist', 'cli', 'entry.js')) ?? 0;
  if (stale !== undefined || bundle === undefined || cache === undefined || bundle < entry) {
    if (stale === undefined) process.stderr.write('[test set-up] bundling dist/cli/stride.cjs\n');
    run(root, [join(root, 'scripts', 'bundle.mjs')], 'node scripts/bundle.mjs');
  }
}

function mtime(path: string): number | undefined {
  return statSync(path, { throwIfNoEntry: false })?.mtimeMs;
}

function run(root: string, args: string[], what: string): void {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  if (r.status !== 0) throw new Error(`building dist/ failed (${what}):\n${r.stdout}${r.stderr}`);
}
