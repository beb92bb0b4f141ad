/**
 * The bin's fast start: the CLI from one bundled file, compiled from V8's code cache (decision
 * and figures in docs/architecture.md, "CLI start-up"). `npm run build` runs tsc, then
 * scripts/bundle.mjs, which writes beside this file:
 * - `stride.cjs`: esbuild's CommonJS bundle of entry.ts and everything it imports
 *   (better-sqlite3, BullMQ, ioredis and re2js stay in node_modules). Its first line names its
 *   build: `// stride bundle <16 hex digits>`. One file instead of ~350 ES and CommonJS modules
 *   spares Node's module loader most of a one-case run's start-up;
 * - `stride.cjs.cache`: the same build name, then the code V8 compiled while a one-case
 *   `stride run` of that bundle ran at build time under the bin's flags. V8 takes compiled code
 *   from it instead of parsing and compiling again. Node 20 has no compile cache for modules
 *   (`module.enableCompileCache` is Node 22.1+), so the bundle is a CommonJS script compiled
 *   through `vm.Script` with `cachedData`.
 *
 * V8 refuses a cache made under other flags (the bin's shebang flags are part of its check), and
 * the build name keeps a cache from pairing with another build's bundle: either way the bundle
 * is compiled as usual, only slower. Nothing is written at run time (an installed package may
 * be read-only), except by the build's training run (`STRIDE_CODE_CACHE_OUT`).
 *
 * The bin falls back to dist/'s own files (entry.js) when there is no bundle, when the bundle is
 * older than dist/cli/entry.js (tsc ran without the bundle step) or when STRIDE_NO_BUNDLE is set.
 */

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The bundle scripts/bundle.mjs writes. */
export const BUNDLE = join(HERE, 'stride.cjs');
/** Its code cache: the build name (16 bytes), then V8's data. */
export const CODE_CACHE = `${BUNDLE}.cache`;
/** tsc's output of entry.ts: a bundle older than it predates the last tsc build. */
const ENTRY = join(HERE, 'entry.js');
/** The bundle's first line, before its build name. */
export const BUNDLE_HEADER = '// stride bundle ';
const BUILD_LENGTH = 16;

/** What became of the code cache when the bundle was compiled. */
export type CodeCacheState = 'accepted' | 'rejected' | 'absent';

/** The compiled bundle, not yet run. */
export interface CompiledBundle {
  readonly script: Script;
  /** The build name from the bundle's first line ('' when it has none). */
  readonly build: string;
  readonly cache: CodeCacheState;
}

const set = (value: string | undefined): boolean => value !== undefined && value !== '';

/** Whether the bin runs the bundle (see the file's comment). */
export function bundleUsable(env: NodeJS.ProcessEnv = process.env): boolean {
  if (set(env.STRIDE_NO_BUNDLE)) return false;
  const bundle = statSync(BUNDLE, { throwIfNoEntry: false });
  if (bundle === undefined) return false;
  const entry = statSync(ENTRY, { throwIfNoEntry: false });
  return entry === undefined || bundle.mtimeMs >= entry.mtimeMs;
}

/**
 * Compiles the bundle, with its code cache when the cache names the same build.
 *
 * @example
 * ```ts
 * const { cache } = compileBundle(); // 'accepted' under the bin's flags after `npm run build`
 * ```
 */
export function compileBundle(): CompiledBundle {
  const source = readFileSync(BUNDLE, 'utf8');
  const build = source.startsWith(BUNDLE_HEADER)
    ? source.slice(BUNDLE_HEADER.length, BUNDLE_HEADER.length + BUILD_LENGTH)
    : '';
  let cachedData: Buffer | undefined;
  try {
    const file = readFileSync(CODE_CACHE);
    if (build !== '' && file.toString('latin1', 0, BUILD_LENGTH) === build) {
      cachedData = file.subarray(BUILD_LENGTH);
    }
  } catch {
    // No cache: compiled as usual.
  }
  // CommonJS's wrapper, on the bundle's first line so stack traces keep its line numbers.
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new Script(wrapped, {
    filename: BUNDLE,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  const cache =
    cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'accepted';
  return { script, build, cache };
}

/**
 * Runs the CLI from the bundle when it is usable; false when the caller must run dist/'s
 * entry.js instead.
 */
export function runBundle(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!bundleUsable(env)) return false;
  const { script, build } = compileBundle();
  const out = env.STRIDE_CODE_CACHE_OUT;
  if (out !== undefined && out !== '') {
    // The build's training run: the code compiled by the end of a whole run goes to the cache.
    delete env.STRIDE_CODE_CACHE_OUT;
    process.once('exit', () => {
      writeFileSync(out, Buffer.concat([Buffer.from(build, 'latin1'), script.createCachedData()]));
    });
  }
  const module = { exports: {} };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run(module.exports, createRequire(BUNDLE), module, BUNDLE, HERE);
  return true;
}
