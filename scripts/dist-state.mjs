// Whether dist/ is older than src/: shared by the suite's global set-up (test/setup/build.ts,
// which builds before any test when a bare `npx vitest run` finds it stale) and `npm test`'s
// pre-test steps (scripts/pretest.mjs, which build it beside the lint and the type-check).
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function* sources(dir) {
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
export function staleSource(root) {
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
