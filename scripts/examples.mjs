#!/usr/bin/env node
// Runs every example on its documented command, against the built-in mock, and checks that each
// ends with the exit code its header documents (`npm run examples`; `npm test` runs it through
// test/examples/examples.test.ts).
//
// An example is a plan.yaml under examples/. Its header (the leading comment lines) documents:
//   #   stride mock <flags> &                         optional: the mock it runs against
//   #   stride run <plan> [flags]   # exits <code>     the command and the exit code it ends with
// For each example this script starts the mock in process with those flags (on a free port, not
// the documented 5001, so examples run side by side and never meet another program on 5001),
// points every `${VAR:-http://127.0.0.1:5001...}` of the plan at it, removes the plan's other
// `${VAR}`s from the environment (so a real key in the shell never reaches a provider), runs the
// command with dist/cli/main.js in a copy of examples/ (nothing is written into the checkout)
// and stops the mock.
//
//   node scripts/examples.mjs [--dir <examples dir>] [--only <substring>] [--verbose] [--no-build]
//
// dist/ is rebuilt first when a source is newer than dist/cli/main.js (--no-build: never).
//
// Exit code: 0 when every example ended with its documented code, 1 otherwise, 2 for a header
// this script cannot read (no `# exits N` line, two mock lines).

import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: join(root, 'examples') },
    only: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    // The test suite's global set-up has built dist/ already (test/setup/global.ts).
    'no-build': { type: 'boolean', default: false },
  },
});
const examplesDir = resolve(values.dir);
const TIMEOUT_MS = 120_000;

/** Splits a command line the way a POSIX shell would for these simple lines (quotes, no $). */
function words(line) {
  const out = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (const m of line.matchAll(re)) out.push(m[1]?.replace(/\\(.)/g, '$1') ?? m[2] ?? m[3]);
  return out;
}

/** The documented commands of one plan file, from its leading comment block. */
function readHeader(text, file) {
  const header = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    header.push(line.slice(1).trim());
  }
  const mocks = header.filter((l) => l.startsWith('stride mock '));
  const runs = header
    .map((l) => /^stride run (.+?)\s+#\s*exits (\d+)\b/.exec(l))
    .filter((m) => m !== null);
  if (runs.length !== 1)
    throw new Error(
      `${file}: expected one "stride run ... # exits N" line in the header, found ${runs.length}`,
    );
  if (mocks.length > 1) throw new Error(`${file}: more than one "stride mock" line in the header`);
  const mock =
    mocks[0] === undefined ? undefined : words(mocks[0].replace(/\s*&\s*$/, '')).slice(2);
  return { mock, run: ['run', ...words(runs[0][1])], exit: Number(runs[0][2]) };
}

/** Every plan.yaml under `dir`, sorted. */
async function plans(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === 'plan.yaml')
      out.push(join(entry.parentPath ?? entry.path, entry.name));
  }
  return out.sort();
}

/** dist/ must be built from today's sources: rebuilds it when a source is newer. */
async function ensureBuilt() {
  const main = join(root, 'dist', 'cli', 'main.js');
  const built = existsSync(main) ? statSync(main).mtimeMs : 0;
  let newest = 0;
  for (const entry of await readdir(join(root, 'src'), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  if (built >= newest) return;
  process.stderr.write('examples: dist/ is older than src/, building it (npm run build)\n');
  const code = await new Promise((done) => {
    const child = spawn('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
    child.on('exit', (c) => done(c ?? 1));
  });
  if (code !== 0) throw new Error('npm run build failed');
}

/** The plan's environment: its base URLs at the mock, its other variables unset. */
function environment(planText, mockUrl) {
  const env = { ...process.env };
  for (const m of planText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) delete env[m[1]];
  if (mockUrl !== undefined) {
    const local = /\$\{([A-Za-z_][A-Za-z0-9_]*):-http:\/\/127\.0\.0\.1:5001([^}]*)\}/g;
    for (const m of planText.matchAll(local)) env[m[1]] = `${mockUrl}${m[2]}`;
  }
  // Plain progress lines, no colours: the output is only shown when an example fails.
  env.CI = '1';
  env.NO_COLOR = '1';
  return env;
}

function run(args, cwd, env) {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => {
      output += c;
    });
    child.stderr.on('data', (c) => {
      output += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? (signal === 'SIGKILL' ? 'timeout' : signal), output });
    });
  });
}

async function example(file, work, mockApi) {
  // As the documented command names it: relative to the checkout's root.
  const rel = join('examples', relative(examplesDir, file));
  const text = await readFile(file, 'utf8');
  const header = readHeader(text, rel);
  // Each example in its own copy: its journal (.stride/) and reports (stride-out/) stay apart.
  const cwd = await mkdtemp(join(work, 'example-'));
  await cp(examplesDir, join(cwd, 'examples'), { recursive: true });
  let mock;
  if (header.mock !== undefined) {
    const { quiet: _, port: __, host: ___, ...options } = mockApi.parseMockArgsIn(header.mock, cwd);
    mock = await mockApi.startMock({ ...options, port: 0 });
  }
  const started = performance.now();
  try {
    const result = await run(header.run, cwd, environment(text, mock?.url));
    return { rel, header, ...result, seconds: (performance.now() - started) / 1000 };
  } finally {
    await mock?.close();
  }
}

async function main() {
  if (!values['no-build']) await ensureBuilt();
  const { parseMockArgs, startMock } = await import(join(root, 'dist', 'mock', 'index.js'));
  // The mock's flags name files relative to the checkout's root (the documented command runs
  // there); here they are read from the example's copy.
  const mockApi = {
    startMock,
    parseMockArgsIn: (args, cwd) => {
      const here = process.cwd();
      process.chdir(cwd);
      try {
        return parseMockArgs(args);
      } finally {
        process.chdir(here);
      }
    },
  };
  let files = await plans(examplesDir);
  if (values.only !== undefined) files = files.filter((f) => f.includes(values.only));
  if (files.length === 0) throw new Error(`no plan.yaml under ${examplesDir}`);
  const work = await mkdtemp(join(tmpdir(), 'stride-examples-'));
  try {
    // Side by side: the examples mostly wait (on rate limits, latency), so they share the time.
    const results = await Promise.all(files.map((f) => example(f, work, mockApi)));
    let failed = 0;
    for (const r of results) {
      const ok = r.code === r.header.exit;
      if (!ok) failed++;
      process.stdout.write(
        `${ok ? 'ok  ' : 'FAIL'} ${r.rel}: stride ${r.header.run.join(' ')} exited ${r.code} (documented ${r.header.exit}) in ${r.seconds.toFixed(1)} s\n`,
      );
      if (!ok || values.verbose) process.stdout.write(`${r.output.replace(/^/gm, '     | ')}\n`);
    }
    process.stdout.write(
      `${results.length - failed} of ${results.length} examples ended as documented\n`,
    );
    return failed === 0 ? 0 : 1;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`examples: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
