/**
 * Issue #15 item 6: what a run costs after its last case, and what `stride report` costs for
 * every format against one. Real processes: `stride mock --latency 0` in a child, `stride run`
 * and `stride report` as children of the built bin.
 *
 *   npm run build && node bench/post-run.mjs [--cases 100000] [--concurrency 128] [--reps 3]
 *
 * - post-run: from the run's end as the journal dates it (runs.finished_at) to the exit of the
 *   `stride run` process (default reports: every format), against the run's own time
 *   (finished_at - started_at). Budget: <= 5 %.
 * - report: `stride report ID --format jsonl` and `--format json,csv,junit,html,jsonl`,
 *   interleaved, `--reps` of each, wall time to exit; the ratio of the medians. Budget: <= 1.6.
 * The load (`uptime`) is printed with the figures: the machine is shared.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI_NODE_FLAGS } from './cli-flags.mjs';

const BIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '128' },
    reps: { type: 'string', default: '3' },
  },
});

function stride(args, env = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [...CLI_NODE_FLAGS, BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err, started, exited: Date.now() }));
  });
}

async function startMock() {
  const child = spawn(process.execPath, [BIN, 'mock', '--port', '0', '--latency', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve) => {
    let text = '';
    child.stdout.on('data', (c) => {
      text += c;
      const m = /listening on (\S+)/.exec(text);
      if (m) resolve(m[1]);
    });
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const cases = Number(values.cases);
const dir = mkdtempSync(join(tmpdir(), 'stride-post-run-'));
const lines = [];
for (let i = 0; i < cases; i++) {
  lines.push(
    JSON.stringify({
      id: `c${i}`,
      inputs: { query: `question ${i}` },
      expected: { field: 'text', contains: 'question' },
    }),
  );
}
writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
const mock = await startMock();
const base = mock.url.replace(/\/$/, '');
writeFileSync(
  join(dir, 'plan.yaml'),
  [
    'workflow_id: post-run-bench',
    'target:',
    '  type: dify',
    `  base_url: ${base}/v1`,
    '  api_key: app-bench',
    '  app: workflow',
    '  response_mode: blocking',
    'cases: cases.jsonl',
    'execution_policy:',
    `  concurrency: ${values.concurrency}`,
    '  timeout: 60s',
    '',
  ].join('\n'),
);
const db = join(dir, 'stride.db');
try {
  const run = await stride([
    'run',
    join(dir, 'plan.yaml'),
    '--db',
    db,
    '--out',
    join(dir, 'out'),
    '--json',
    '--no-progress',
  ]);
  if (run.code !== 0 && run.code !== 1)
    throw new Error(`stride run exited ${run.code}: ${run.err}`);
  const summary = JSON.parse(run.out);
  const { SqliteStore } = await import('../dist/store/index.js');
  const store = new SqliteStore({ path: db });
  const record = await store.getRun(summary.runId);
  await store.close();
  const runMs = record.finishedAt - record.startedAt;
  const postMs = run.exited - record.finishedAt;
  const loadRun = loadavg()[0];

  const timings = { jsonl: [], all: [] };
  for (let r = 0; r < Number(values.reps); r++) {
    for (const [name, formats] of [
      ['jsonl', 'jsonl'],
      ['all', 'json,csv,junit,html,jsonl'],
    ]) {
      const t = await stride([
        'report',
        summary.runId,
        '--db',
        db,
        '--format',
        formats,
        '-o',
        join(dir, `report-${name}-${r}/`),
      ]);
      if (t.code !== 0) throw new Error(`stride report exited ${t.code}: ${t.err}`);
      timings[name].push(t.exited - t.started);
    }
  }
  const loadReport = loadavg()[0];
  const mj = median(timings.jsonl);
  const ma = median(timings.all);
  process.stdout.write(
    [
      `| figure | value | budget |`,
      `| --- | --- | --- |`,
      `| ${cases.toLocaleString('en-US')}-case run (-j ${values.concurrency}, mock at 0 ms): run's own time | ${(runMs / 1000).toFixed(1)} s | |`,
      `| post-run (run end to exit, all five reports) | ${(postMs / 1000).toFixed(2)} s = ${((100 * postMs) / runMs).toFixed(1)} % of the run | <= 5 % |`,
      `| stride report --format jsonl (median of ${timings.jsonl.length}: ${timings.jsonl.map((t) => (t / 1000).toFixed(2)).join(', ')} s) | ${(mj / 1000).toFixed(2)} s | |`,
      `| stride report, all five formats (median of ${timings.all.length}: ${timings.all.map((t) => (t / 1000).toFixed(2)).join(', ')} s) | ${(ma / 1000).toFixed(2)} s = ${(ma / mj).toFixed(2)}x jsonl | <= 1.6x |`,
      '',
      `load (1 min): ${loadRun.toFixed(1)} during the run, ${loadReport.toFixed(1)} after the reports; ${summary.passed} passed of ${summary.total}`,
      '',
    ].join('\n'),
  );
} finally {
  mock.stop();
}
