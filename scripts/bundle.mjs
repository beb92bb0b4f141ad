/**
 * `npm run build`'s second step, after tsc: the bin's bundle and its V8 code cache
 * (src/cli/bundle.ts says how the bin uses them; docs/architecture.md, "CLI start-up", why).
 *
 *   node scripts/bundle.mjs            # needs dist/ from `tsc -p tsconfig.build.json`
 *
 * 1. esbuild bundles dist/cli/entry.js into dist/cli/stride.cjs (CommonJS: Node 20 can feed a
 *    code cache to a script, not to an ES module). better-sqlite3 (native), BullMQ and ioredis
 *    (the distributed commands only), re2js (a worker thread loads it by path) and uPlot (the
 *    dashboard serves its files) stay in
 *    node_modules. Each dist/ file's `import.meta.url` becomes the URL of that file as tsc wrote
 *    it, so paths built from it (the demo plan, the dashboard's browser files) are unchanged;
 *    `createRequire(import.meta.url)` becomes the bundle's `require`, so what it loads (undici's
 *    Agent files, ajv, diff) is bundled too and still loaded at first use.
 * 2. A training run: a one-case `stride run` of the new bundle against the built-in mock, under
 *    the bin's own flags (read from dist/cli/main.js's shebang), writes dist/cli/stride.cjs.cache
 *    at its exit.
 * A failure of either step fails the build, with what went wrong.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const CLI = join(DIST, 'cli');
const { BUNDLE, BUNDLE_HEADER, CODE_CACHE } = await import(
  pathToFileURL(join(CLI, 'bundle.js')).href
);

/** Rewrites `import.meta.url` in dist/'s own files (see the header). */
const importMeta = {
  name: 'import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(`${DIST}/`)) return undefined;
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta')) return undefined;
      const file = JSON.stringify(relative(CLI, args.path));
      const url = `require('node:url').pathToFileURL(require('node:path').join(__dirname, ${file})).href`;
      const out = text
        .replace(/^const require = createRequire\(import\.meta\.url\);$/m, '')
        .replaceAll('createRequire(import.meta.url)', 'require')
        .replaceAll('import.meta.url', url);
      if (out.includes('import.meta') || /\brequire = require\b/.test(out)) {
        throw new Error(
          `${args.path}: an import.meta use scripts/bundle.mjs does not rewrite (or a local named require)`,
        );
      }
      return { contents: out, loader: 'js' };
    });
  },
};

/** undici's package index stays outside: only undici-agent.ts's fallback names it (never taken
 * in the bundle, whose build would have failed on the files that fallback stands in for). */
const undiciIndex = {
  name: 'undici-index',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', external: true }));
  },
};

rmSync(CODE_CACHE, { force: true });
const id = randomBytes(8).toString('hex');
await build({
  entryPoints: [join(CLI, 'entry.js')],
  outfile: BUNDLE,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['better-sqlite3', 'bullmq', 'ioredis', 're2js', 'uplot'],
  plugins: [importMeta, undiciIndex],
  // A comment only: the "use strict" esbuild writes next must stay the first statement.
  banner: { js: `${BUNDLE_HEADER}${id} (scripts/bundle.mjs; do not edit)` },
  legalComments: 'none',
  minifyWhitespace: true,
  logLevel: 'warning',
});
// ---------------------------------------------------------------- the training run

const bin = join(CLI, 'main.js');
const shebang = readFileSync(bin, 'utf8').split('\n')[0];
const flags = shebang.replace('#!/usr/bin/env -S node', '').trim().split(/\s+/).filter(Boolean);
const { startMock } = await import(pathToFileURL(join(DIST, 'mock', 'index.js')).href);
const work = mkdtempSync(join(tmpdir(), 'stride-bundle-'));
const mock = await startMock({ port: 0, latencyMs: 0 });
try {
  writeFileSync(
    join(work, 'cases.jsonl'),
    `${JSON.stringify({ id: 'c1', inputs: { query: 'question 1' }, expected: { contains: 'question' } })}\n`,
  );
  writeFileSync(
    join(work, 'plan.yaml'),
    [
      'workflow_id: code-cache-training',
      'target:',
      '  type: dify',
      `  base_url: ${mock.url}/v1`,
      '  api_key: app-training',
      '  app: workflow',
      '  response_mode: streaming',
      'cases: cases.jsonl',
      '',
    ].join('\n'),
  );
  // Beside the final file, so the rename is atomic (one file system).
  const cache = `${CODE_CACHE}.${process.pid}.tmp`;
  const args = ['run', join(work, 'plan.yaml'), '--db', join(work, 's.db')];
  const child = spawn(
    process.execPath,
    [...flags, bin, ...args, '--out', join(work, 'out'), '-q'],
    {
      env: { ...process.env, STRIDE_CODE_CACHE_OUT: cache, STRIDE_NO_BUNDLE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`the code cache's training run exited ${code}:\n${output}`);
  renameSync(cache, CODE_CACHE);
} finally {
  rmSync(`${CODE_CACHE}.${process.pid}.tmp`, { force: true });
  await mock.close();
  rmSync(work, { recursive: true, force: true });
}
