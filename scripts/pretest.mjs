#!/usr/bin/env node
// `npm test`'s steps before the tests, side by side: the lint (`npm run lint`), the type-check of
// src, tests and bench (`npm run typecheck`) and, when dist/ is older than a source, the build
// (`npm run build`; the CLI and crash tests spawn the built bin). One after another they took
// the sum of their times; the type-check and the build are each one single-threaded tsc, so on
// two cores they take the longer of the two. Each step's output is printed when it ends; the
// exit code is 1 when any step failed (each is still run to its end, so every error is shown).
//
//   node scripts/pretest.mjs
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleSource } from './dist-state.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function step(name, script, why = '') {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(npm, ['run', '--silent', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => {
      output += c;
    });
    child.stderr.on('data', (c) => {
      output += c;
    });
    child.on('close', (code, signal) => {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const verdict = code === 0 ? 'ok' : `FAILED (${code ?? signal})`;
      process.stdout.write(`[pre-test] ${name}${why}: ${verdict} in ${seconds} s\n`);
      if (output.trim() !== '') process.stdout.write(`${output.replace(/^/gm, '  | ')}\n`);
      done(code === 0);
    });
  });
}

const stale = staleSource(root);
const steps = [step('lint', 'lint'), step('typecheck', 'typecheck')];
if (stale !== undefined) steps.push(step('build', 'build', ` (${stale} is newer than its build)`));
const ok = await Promise.all(steps);
process.exitCode = ok.every(Boolean) ? 0 : 1;
