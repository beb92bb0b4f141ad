/**
 * The whole `stride run` process on the issue #15 workload: 200 Dify workflow cases at
 * concurrency 20 against the mock at 50 ms (started once beforehand, in its own process), default
 * reports, `-q`. The ideal is ceil(200 / 20) x 50 ms = 0.5 s; the budget is 1.5x that wall and
 * 90 MB of peak RSS, start-up, plan loading, the journal and the five reports included.
 *
 *   npm run build && node bench/cli-wall.mjs [--runs 10] [--cases 200] [--concurrency 20] [--latency 50]
 *
 * Wall time is spawn to exit on this process's clock; CPU (user + system) and peak RSS come from
 * GNU time (/usr/bin/time; "unknown" without it). The bin's flags (bench/cli-flags.mjs) apply, as
 * they do when the bin is started by its shebang. Say the load (printed) next to any figure.
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI_NODE_FLAGS } from './cli-flags.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    cases: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '20' },
    latency: { type: 'string', default: '50' },
  },
});
const RUNS = Number(values.runs);
const CASES = Number(values.cases);
const CONCURRENCY = Number(values.concurrency);
const LATENCY = Number(values.latency);
const IDEAL_MS = Math.ceil(CASES / CONCURRENCY) * LATENCY;
const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const node = process.execPath;
const work = mkdtempSync(join(tmpdir(), 'stride-cli-wall-'));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One whole CLI run: wall ms, CPU ms and peak RSS MB (NaN when GNU time is missing). */
function runOnce(argv) {
  const usage = join(work, 'usage.txt');
  const full = GNU_TIME === undefined ? argv : [GNU_TIME, '-o', usage, '-f', '%U %S %M', ...argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(full[0], full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const wall = performance.now() - t0;
      if (code !== 0) return reject(new Error(`stride run exited ${code}: ${err}`));
      if (GNU_TIME === undefined) return resolve({ wall, cpu: Number.NaN, rss: Number.NaN });
      const [user, sys, kb] = readFileSync(usage, 'utf8').trim().split('\n').at(-1).split(' ');
      resolve({ wall, cpu: (Number(user) + Number(sys)) * 1000, rss: Number(kb) / 1024 });
    });
  });
}

const mock = spawn(node, [MAIN, 'mock', '--port', '0', '--latency', String(LATENCY)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
try {
  const url = await new Promise((resolve, reject) => {
    let out = '';
    mock.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m !== null) resolve(m[1]);
    });
    mock.on('exit', (code) => reject(new Error(`stride mock exited ${code}`)));
  });
  const lines = Array.from({ length: CASES }, (_, i) =>
    JSON.stringify({
      id: `c${i + 1}`,
      inputs: { query: `question ${i + 1}: what is the refund policy?` },
      expected: { contains: 'question' },
    }),
  );
  writeFileSync(join(work, 'cases.jsonl'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(work, 'plan.yaml'),
    [
      'workflow_id: cli-wall-bench',
      'target:',
      '  type: dify',
      `  base_url: ${url}/v1`,
      '  api_key: app-bench',
      '  app: workflow',
      '  response_mode: streaming',
      'cases: cases.jsonl',
      'execution_policy:',
      `  concurrency: ${CONCURRENCY}`,
      '',
    ].join('\n'),
  );
  const argv = [
    node,
    ...CLI_NODE_FLAGS,
    MAIN,
    'run',
    join(work, 'plan.yaml'),
    '--db',
    join(work, 'stride.db'),
    '--out',
    join(work, 'out'),
    '-q',
  ];
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`load average before: ${load()}; ${RUNS} runs after 1 warm-up\n`);
  await runOnce(argv);
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runOnce(argv));
  const wall = runs.map((r) => r.wall);
  const rss = runs.map((r) => r.rss);
  const fmt = (x, d = 0) => (Number.isNaN(x) ? 'unknown' : x.toFixed(d));
  const header = [
    'workload',
    'wall min ms',
    'wall median ms',
    `median / ideal ${IDEAL_MS} ms`,
    'cpu median ms',
    'peak RSS median MB',
    'peak RSS max MB',
  ];
  const row = [
    `${CASES} cases, -j ${CONCURRENCY}, mock ${LATENCY} ms`,
    fmt(Math.min(...wall)),
    fmt(median(wall)),
    `${fmt(median(wall) / IDEAL_MS, 2)}×`,
    fmt(median(runs.map((r) => r.cpu))),
    fmt(median(rss), 1),
    fmt(Math.max(...rss), 1),
  ];
  process.stdout.write(
    `${[header, header.map(() => '---'), row].map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`,
  );
  process.stdout.write(`load average after: ${load()}\n`);
} finally {
  mock.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
