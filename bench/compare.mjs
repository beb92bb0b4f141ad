/**
 * `stride compare` on two journaled runs of N cases (docs/benchmarks.md, "Comparing runs").
 *
 * Builds a SQLite journal with two runs of one plan, made by the real engine (ExecutorService,
 * a function target answering ~400 characters per case): between them 2 % of the cases turn to
 * failures, 1 % are fixed, 30 % answer differently, one case is dropped and one added. Then
 * times the whole command, `stride compare <base> <head> --json` in a child process with the
 * bin's node flags (wall clock, and peak RSS from /usr/bin/time), `--reps` times, and prints
 * the median.
 *
 *   npm run build && node bench/compare.mjs --cases 100000 --reps 3
 *   node bench/compare.mjs --cases 2000 --reps 5
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadPlan } from '../dist/plans/index.js';
import { ExecutorService } from '../dist/runner/executor-service.js';
import { RunHistory } from '../dist/runner/history.js';
import { SqliteStore } from '../dist/store/index.js';
import { CLI_NODE_FLAGS } from './cli-flags.mjs';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    reps: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    // Reuse a journal made by an earlier --keep run (its runs `base` and `head`).
    db: { type: 'string' },
  },
});
const N = Number(values.cases);
const REPS = Number(values.reps);
const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'stride-bench-compare-'));
const db = values.db ?? join(dir, 'bench.db');

const FILLER =
  'Thank you for your question. Our refund policy allows returns within thirty days of purchase, ' +
  'provided the item is unused and in its original packaging. Refunds go back to the original ' +
  'payment method within five to seven business days. ';

/** The case file of one run: ids c0..c{N-1} minus `drop`, plus `add`. */
function writeCases(file, { drop, add }) {
  const lines = [];
  const line = (id, i) =>
    JSON.stringify({
      id,
      dataset: i % 3 === 0 ? 'refunds' : i % 3 === 1 ? 'orders' : 'smalltalk',
      inputs: { query: `question ${i} about order ${1000 + i}`, n: i },
      expected: { contains: 'refund' },
    });
  for (let i = 0; i < N; i++) if (`c${i}` !== drop) lines.push(line(`c${i}`, i));
  if (add !== undefined) lines.push(line(add, N));
  writeFileSync(file, `${lines.join('\n')}\n`);
}

function planText() {
  return [
    'workflow_id: bench-compare',
    'target: { type: function, name: bot }',
    'cases: cases.jsonl',
    'execution_policy: { concurrency: 64, retry_policy: { max_attempts: 1 } }',
    '',
  ].join('\n');
}

/** version 1 or 2 of the app: v2 breaks 2 % of the cases, fixes 1 %, rewords 30 %. */
function bot(version) {
  return async (c) => {
    const n = c.inputs.n;
    const broken = version === 1 ? n % 100 === 7 : n % 50 === 3;
    if (broken)
      return `Sorry, I cannot help with ${c.inputs.query}. ${FILLER.replace(/refund/gi, 'r.')}`;
    const reworded = version === 2 && n % 10 < 3;
    return `${reworded ? 'Hello! ' : ''}About ${c.inputs.query}: ${FILLER}`;
  };
}

async function makeRun(version, runId) {
  const store = new SqliteStore({ path: db });
  const history = new RunHistory({
    store,
    service: new ExecutorService({ functions: { bot: bot(version) } }),
  });
  writeCases(
    join(dir, 'cases.jsonl'),
    version === 1 ? { drop: 'none' } : { drop: 'c5', add: 'new-case' },
  );
  writeFileSync(join(dir, 'plan.yaml'), planText());
  const t = performance.now();
  await history.run(await loadPlan(join(dir, 'plan.yaml'), { checkCases: false }), {
    runId,
    retainResults: false,
  });
  await store.close();
  return (performance.now() - t) / 1000;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

if (values.db === undefined) {
  const setup1 = await makeRun(1, 'base');
  const setup2 = await makeRun(2, 'head');
  console.log(
    `journal: 2 runs of ${N} cases made in ${setup1.toFixed(1)} s + ${setup2.toFixed(1)} s`,
  );
}

const walls = [];
const cpus = [];
const rss = [];
let summary;
for (let i = 0; i < REPS; i++) {
  const rssFile = join(dir, 'rss.txt');
  const t = performance.now();
  // /usr/bin/time -o FILE writes the child's peak RSS (KB) and CPU seconds (user, system) to FILE.
  const out = execFileSync(
    '/usr/bin/time',
    [
      '-f',
      '%M %U %S',
      '-o',
      rssFile,
      process.execPath,
      ...CLI_NODE_FLAGS,
      BIN,
      'compare',
      'base',
      'head',
      '--db',
      db,
      '--json',
    ],
    { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' },
  );
  walls.push((performance.now() - t) / 1000);
  summary = JSON.parse(out).summary;
  const [kb, user, sys] = readFileSync(rssFile, 'utf8').trim().split(/\s+/).map(Number);
  rss.push(kb / 1024);
  cpus.push(user + sys);
}
console.log(
  JSON.stringify({
    cases: N,
    reps: REPS,
    wall_s: { median: median(walls), all: walls.map((w) => Number(w.toFixed(3))) },
    cpu_s: { median: median(cpus), all: cpus },
    peak_rss_mb: { median: median(rss), all: rss.map((r) => Number(r.toFixed(1))) },
    counts: summary.counts,
    p_value: summary.p_value,
    node: process.version,
    // The machine is shared: wall time under load says little without it.
    load_average: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  }),
);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
else console.log(`kept ${dir}`);
