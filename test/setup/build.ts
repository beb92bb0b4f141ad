import { spawnSync } from 'node:child_process';
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
