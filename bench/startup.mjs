/**
 * Start-up of the `stride` bin, whole processes, against a bare `node -e ''` in the same run
 * (issue #15, "Numbers"):
 * - `stride --help`;
 * - a one-case run against the mock (`stride mock`, started once beforehand in its own process),
 *   default reports, `-q`;
 * each as the bin starts after `npm run build` (from its esbuild bundle with V8's code cache,
 * src/cli/bundle.ts) and, as "unbundled", from dist/'s files (STRIDE_NO_BUNDLE=1), in the same
 * rounds; with --other PATH, also another build's bin (an A/B against an older commit).
 *
 *   npm run build && node bench/startup.mjs [--rounds 40] [--other /tmp/old/dist/cli/main.js] [--only help,run]
 *
 * Each round runs every command once, in a rotating order (so no command always follows the
 * same one); a command's wall time is spawn to exit on this process's clock, its CPU time (user +
 * system) and peak RSS come from GNU time (/usr/bin/time; "unknown" without it). Each ratio to
 * bare node is the median of the per-round ratios: a round's commands ran within a second or two
 * of each other, so a load swing moves both sides. CPU is the steadier figure on a loaded
 * machine (others' work stretches wall time, not the command's own CPU). Module counts come from one
 * run of each under bench/module-count.mjs (the bundle is one file compiled through vm.Script and
 * not counted: what it counts there is what stays outside, such as better-sqlite3). Say the
 * load (`uptime`, printed first) next to any figure.
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
    rounds: { type: 'string', default: '40' },
    other: { type: 'string' },
    only: { type: 'string', default: 'help,run' },
  },
});
const ROUNDS = Number(values.rounds);
const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const COUNTER = fileURLToPath(new URL('./module-count.mjs', import.meta.url));
const node = process.execPath;

/** GNU time, when the machine has it: each child's own user + system CPU seconds and peak RSS. */
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * Runs one command to its exit; resolves with its wall time in ms and, under GNU time, its CPU
 * ms and peak RSS in MB (rejects on a bad exit).
 */
function time(argv, env = process.env) {
  const usage = join(work, 'usage.txt');
  const full = GNU_TIME === undefined ? argv : [GNU_TIME, '-o', usage, '-f', '%U %S %M', ...argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(full[0], full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const wall = performance.now() - t0;
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
      if (GNU_TIME === undefined) return resolve({ wall, cpu: Number.NaN, rss: Number.NaN });
      const [user, sys, kb] = readFileSync(usage, 'utf8').trim().split('\n').at(-1).split(' ');
      resolve({ wall, cpu: (Number(user) + Number(sys)) * 1000, rss: Number(kb) / 1024 });
    });
  });
}

/** The modules `argv` (a node command) loads: ES and CommonJS, each file once. */
async function moduleCount(argv, env) {
  const log = join(work, `modules-${Math.random().toString(36).slice(2)}.txt`);
  await time([argv[0], '--import', COUNTER, ...argv.slice(1)], { ...env, STRIDE_MODULE_LOG: log });
  const files = new Set(
    readFileSync(log, 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((u) => u !== undefined && !u.startsWith('data:') && !u.endsWith(COUNTER)),
  );
  return files.size;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---------------------------------------------------------------- the mock and the plan

const work = mkdtempSync(join(tmpdir(), 'stride-startup-'));
const mock = spawn(node, [MAIN, 'mock', '--port', '0', '--latency', '0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const mockUrl = await new Promise((resolve, reject) => {
  let out = '';
  mock.stdout.on('data', (d) => {
    out += d;
    const m = /listening on (\S+)/.exec(out);
    if (m !== null) resolve(m[1]);
  });
  mock.on('exit', (code) => reject(new Error(`stride mock exited ${code}`)));
});

try {
  writeFileSync(
    join(work, 'cases.jsonl'),
    `${JSON.stringify({ id: 'c1', inputs: { query: 'question 1' }, expected: { contains: 'question' } })}\n`,
  );
  writeFileSync(
    join(work, 'plan.yaml'),
    [
      'workflow_id: startup-bench',
      'target:',
      '  type: dify',
      `  base_url: ${mockUrl}/v1`,
      '  api_key: app-bench',
      '  app: workflow',
      '  response_mode: streaming',
      'cases: cases.jsonl',
      '',
    ].join('\n'),
  );
  const db = join(work, 'stride.db');
  const out = join(work, 'out');
  const cli = (entry) => [node, ...CLI_NODE_FLAGS, entry];
  const runArgs = ['run', join(work, 'plan.yaml'), '--db', db, '--out', out, '-q'];
  const only = new Set(values.only.split(','));
  const unbundled = { ...process.env, STRIDE_NO_BUNDLE: '1' };
  const entries = [
    ['stride', MAIN, process.env],
    ['unbundled', MAIN, unbundled],
    ...(values.other === undefined ? [] : [['other', values.other, process.env]]),
  ];
  const commands = [{ name: "node -e ''", argv: [node, '-e', ''], env: process.env }];
  for (const [label, entry, env] of entries) {
    if (only.has('help'))
      commands.push({ name: `${label} --help`, argv: [...cli(entry), '--help'], env });
    if (only.has('run'))
      commands.push({ name: `${label} run (1 case)`, argv: [...cli(entry), ...runArgs], env });
  }

  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`load average before: ${load}; ${ROUNDS} rounds\n`);
  for (const c of commands) await time(c.argv, c.env); // warm-up: the disk cache, the journal's schema
  const times = commands.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < commands.length; k++) {
      const i = (r + k) % commands.length;
      times[i].push(await time(commands[i].argv, commands[i].env));
    }
  }
  const counts = [];
  for (const c of commands) counts.push(await moduleCount(c.argv, c.env));
  const loadAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

  const bare = times[0];
  const fmt = (x, d = 0) => (Number.isNaN(x) ? 'unknown' : x.toFixed(d));
  const rows = commands.map((c, i) => {
    const wall = times[i].map((t) => t.wall);
    const cpu = times[i].map((t) => t.cpu);
    const paired = (key) => median(times[i].map((t, r) => t[key] / bare[r][key]));
    return [
      c.name,
      String(counts[i]),
      fmt(Math.min(...wall)),
      fmt(median(wall)),
      `${fmt(paired('wall'), 2)}×`,
      fmt(median(cpu)),
      `${fmt(paired('cpu'), 2)}×`,
      fmt(Math.max(...times[i].map((t) => t.rss)), 1),
    ];
  });
  const header = [
    'command',
    'modules',
    'wall min ms',
    'wall median ms',
    'wall ratio',
    'cpu median ms',
    'cpu ratio',
    'peak RSS MB',
  ];
  const lines = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`);
  process.stdout.write(`${lines.join('\n')}\nload average after: ${loadAfter}\n`);
} finally {
  mock.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
