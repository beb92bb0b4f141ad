#!/usr/bin/env node
/**
 * The suite under load: runs `npm test` N times in a row (default 5) while CPU hogs (default
 * 2, one per core here) keep every core busy, and prints one line per round and a summary.
 * Exit 0 only when every round passed. A test that depends on the machine's speed fails here.
 *
 *   npm run test:stress                # 5 rounds, 2 hogs
 *   npm run test:stress -- --rounds 3 --hogs 4
 *   npm run test:stress -- --vitest    # vitest only (no lint, typecheck, build)
 */

import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    hogs: { type: 'string', default: String(Math.max(2, availableParallelism())) },
    vitest: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const hogCount = Number(values.hogs);
for (const [flag, n] of [
  ['--rounds', rounds],
  ['--hogs', hogCount],
]) {
  if (!Number.isInteger(n) || n < (flag === '--hogs' ? 0 : 1)) {
    console.error(`stress: ${flag} must be a whole number (got ${JSON.stringify(String(n))})`);
    process.exit(2);
  }
}

const hogs = Array.from({ length: hogCount }, () =>
  spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
);
const stopHogs = () => {
  for (const h of hogs) h.kill('SIGKILL');
};
process.on('exit', stopHogs);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stopHogs();
    process.exit(130);
  });
}

/** Runs one round; resolves with its exit code, duration and the runner's summary lines. */
function round() {
  const started = Date.now();
  const [cmd, args] = values.vitest ? ['npx', ['vitest', 'run']] : ['npm', ['test']];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let log = '';
  child.stdout.on('data', (c) => {
    log += c;
  });
  child.stderr.on('data', (c) => {
    log += c;
  });
  return new Promise((resolve) => {
    child.on('close', (code) => {
      // Vitest's own summary (files, tests) and the names of failed tests, without colours.
      const plain = log.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
      const summary = plain
        .split('\n')
        .filter((l) => /^\s*(Test Files|Tests)\s/.test(l))
        .map((l) => l.trim());
      const failed = plain
        .split('\n')
        .filter((l) => /^\s*(FAIL|×)\s/.test(l))
        .map((l) => l.trim());
      resolve({ code, seconds: (Date.now() - started) / 1000, summary, failed, log: plain });
    });
  });
}

console.log(
  `stress: ${rounds} round(s) of ${values.vitest ? 'vitest run' : 'npm test'} with ${hogCount} CPU hog(s) on ${availableParallelism()} core(s)`,
);
const results = [];
for (let i = 1; i <= rounds; i++) {
  const r = await round();
  results.push(r);
  console.log(
    `round ${i}: ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`} in ${r.seconds.toFixed(0)} s | ${r.summary.join(' | ')}`,
  );
  for (const f of new Set(r.failed)) console.log(`  ${f}`);
  if (r.code !== 0 && r.summary.length === 0) console.log(r.log.split('\n').slice(-30).join('\n'));
}
stopHogs();
const passed = results.filter((r) => r.code === 0).length;
const secs = results.map((r) => r.seconds).sort((a, b) => a - b);
console.log(
  `stress: ${passed}/${rounds} rounds passed; seconds per round min ${secs[0].toFixed(0)}, median ${secs[Math.floor(secs.length / 2)].toFixed(0)}, max ${secs.at(-1).toFixed(0)}`,
);
process.exit(passed === rounds ? 0 : 1);
