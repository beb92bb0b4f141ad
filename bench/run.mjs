/**
 * Stride against p-limit and p-queue, side by side, in one run.
 *
 *   npm run bench                         # build, then every scenario, 3 repetitions
 *   npm run bench -- --only S1,S3 --reps 5
 *
 * Every measurement is a fresh child process (bench/scenario.mjs) so that peak RSS and CPU time
 * belong to one library alone. Repetitions are interleaved (A B C, A B C, ...) rather than
 * grouped, so a machine that slows down part-way penalises every library alike. The table
 * (markdown) goes to stdout and bench/results/latest.md; every repetition's raw figures go to
 * bench/results/latest.json.
 */

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { ensureCasesFile, ensurePlanFile } from './cases-file.mjs';
import { CLI_NODE_FLAGS } from './cli-flags.mjs';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const SCENARIO_SCRIPT = here('./scenario.mjs');
const RESULTS_DIR = here('./results/');

// ---------------------------------------------------------------- what is measured

/** Shorthands for the figures each scenario reports. */
const cpuPerTask = {
  label: 'CPU µs per task',
  get: (r) => r.cpuUs / r.tasks,
  digits: 2,
};
const tasksPerSec = {
  label: 'tasks/s',
  get: (r) => r.tasks / (r.wallMs / 1000),
  digits: 0,
};
const peakRss = { label: 'peak RSS MB', get: (r) => r.maxRssMB, digits: 0 };
const cpuMs = { label: 'CPU ms (all threads)', get: (r) => r.cpuUs / 1000, digits: 0 };
const events = {
  label: 'transition events seen',
  get: (r) => r.events,
  digits: 0,
  noRatio: true,
};
const makespan = (idealMs) => ({
  label: `makespan / ideal ${idealMs / 1000} s`,
  get: (r) => r.wallMs / idealMs,
  digits: 4,
});
const makespanMs = { label: 'makespan ms', get: (r) => r.wallMs, digits: 1 };

/**
 * Window maxima are a guarantee, not a speed: one repetition over the bound is a violation, so
 * the table shows the worst repetition rather than the median.
 */
const windowMax = (label, key) => ({
  label: `${label} (worst of reps)`,
  get: (r) => r[key],
  digits: 0,
  aggregate: 'max',
});

const S3_IDEAL_MS = ((300 - 10) / 50) * 1000;

const SCENARIOS = [
  {
    id: 'S1',
    title: '200,000 no-op tasks, concurrency 64',
    variants: ['stride', 'stride no listener', 'p-limit', 'p-queue'],
    ratios: [
      ['stride', 'p-limit'],
      ['stride', 'p-queue'],
      ['stride no listener', 'p-limit'],
    ],
    metrics: [cpuPerTask, tasksPerSec, peakRss, events],
  },
  {
    id: 'S2',
    title: '2,000 tasks of setTimeout(20), concurrency 50; ideal 2000 / 50 × 20 ms = 0.8 s',
    variants: ['stride', 'p-limit', 'p-queue', 'floor'],
    ratios: [
      ['stride', 'p-limit'],
      ['stride', 'p-queue'],
      ['stride', 'floor'],
    ],
    metrics: [makespanMs, makespan(800), cpuMs, peakRss],
  },
  {
    id: 'S3',
    title:
      '300 instant tasks at 50/s, burst 10; ideal (300 − 10) / 50 = 5.8 s; bound 60 per 1 s, 15 per 100 ms',
    variants: [
      'stride',
      'p-queue 50/1000ms',
      'p-queue 50/1000ms strict',
      'p-queue 5/100ms',
      'p-queue 5/100ms strict',
    ],
    ratios: [
      ['stride', 'p-queue 50/1000ms'],
      ['stride', 'p-queue 5/100ms strict'],
    ],
    metrics: [
      makespanMs,
      makespan(S3_IDEAL_MS),
      windowMax('most starts in any 1 s', 'max1s'),
      windowMax('most starts in any 100 ms', 'max100ms'),
      cpuMs,
    ],
  },
  {
    id: 'S4',
    title: '1,000,000 no-op tasks, concurrency 128',
    variants: ['stride stream', 'stride stream+retain', 'p-limit', 'p-queue'],
    ratios: [
      ['stride stream', 'p-limit'],
      ['stride stream+retain', 'p-limit'],
      ['stride stream', 'p-queue'],
    ],
    metrics: [tasksPerSec, peakRss, cpuPerTask, events],
  },
  {
    id: 'S5',
    title: 'plan streaming: 1,000,000 cases from a JSONL file, no-op target, concurrency 64',
    variants: [
      'stride plan',
      'stride plan (CLI flags)',
      'stride plan, no pre-check',
      'readCases only',
      'p-limit readFile',
    ],
    ratios: [
      ['stride plan', 'p-limit readFile'],
      ['stride plan (CLI flags)', 'p-limit readFile'],
      ['stride plan, no pre-check', 'p-limit readFile'],
      ['stride plan, no pre-check', 'readCases only'],
    ],
    metrics: [tasksPerSec, cpuPerTask, peakRss, events],
    /** S5 needs the plan reader (src/plans), which a build may not have yet. */
    async unavailable() {
      try {
        const plans = await import('../dist/plans/cases.js');
        if (typeof plans.readCases === 'function') {
          // Written here, once, so no measured process pays for it.
          await ensurePlanFile(await ensureCasesFile(1_000_000));
          return undefined;
        }
        return 'dist/plans/cases.js has no readCases export';
      } catch (err) {
        return `no streaming case reader in this build (${err.code ?? err.message})`;
      }
    },
  },
];

/**
 * The targets, checked against the medians (worst repetition for window maxima). A
 * figure is printed next to each so a near miss reads as one.
 */
const TARGETS = [
  {
    scenario: 'S1',
    digits: 2,
    text: 'S1 CPU per task ≤ p-limit',
    check: (f) => [f('stride', cpuPerTask), f('p-limit', cpuPerTask), (a, b) => a <= b],
  },
  {
    scenario: 'S2',
    digits: 4,
    text: 'S2 makespan ≤ 1.02 × ideal',
    check: (f) => [f('stride', makespan(800)), 1.02, (a, b) => a <= b],
  },
  {
    scenario: 'S3',
    digits: 4,
    text: 'S3 makespan ≤ 1.005 × ideal',
    check: (f) => [f('stride', makespan(S3_IDEAL_MS)), 1.005, (a, b) => a <= b],
  },
  {
    scenario: 'S3',
    digits: 0,
    text: 'S3 starts in any 1 s ≤ 10 + 50 × 1',
    check: (f) => [f('stride', windowMax('', 'max1s')), 60, (a, b) => a <= b],
  },
  {
    scenario: 'S3',
    digits: 0,
    text: 'S3 starts in any 100 ms ≤ 10 + 50 × 0.1',
    check: (f) => [f('stride', windowMax('', 'max100ms')), 15, (a, b) => a <= b],
  },
  {
    scenario: 'S4',
    digits: 0,
    text: 'S4 peak RSS ≤ 0.5 × p-limit ("well under")',
    check: (f) => [f('stride stream', peakRss), 0.5 * f('p-limit', peakRss), (a, b) => a <= b],
  },
  {
    scenario: 'S4',
    digits: 0,
    text: 'S4 tasks/s ≥ p-limit',
    check: (f) => [f('stride stream', tasksPerSec), f('p-limit', tasksPerSec), (a, b) => a >= b],
  },
];

// ---------------------------------------------------------------- running

function parseArgs(argv) {
  const args = { reps: 3, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--reps') args.reps = Number(argv[++i]);
    else if (argv[i] === '--only') args.only = new Set(argv[++i].split(','));
    else throw new Error(`unknown argument ${argv[i]} (use --reps N, --only S1,S2)`);
  }
  if (!Number.isInteger(args.reps) || args.reps < 1) throw new Error('--reps needs an integer ≥ 1');
  return args;
}

/** Runs one measurement in its own process and returns its JSON line. */
function measure(scenario, variant) {
  return new Promise((resolve, reject) => {
    // A "(CLI flags)" variant runs with the V8 flags the stride command sets for itself.
    const flags = variant.endsWith('(CLI flags)') ? CLI_NODE_FLAGS : [];
    const child = spawn(
      process.execPath,
      [...flags, '--expose-gc', SCENARIO_SCRIPT, scenario, variant],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    // A hung library must fail the bench loudly, not stall it forever.
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${scenario} ${variant}: exit ${code ?? signal}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)));
    });
  });
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function aggregate(runs, metric) {
  const values = runs.map(metric.get);
  if (values.some((v) => v === undefined)) return undefined;
  return metric.aggregate === 'max' ? Math.max(...values) : median(values);
}

/** Relative spread (max − min) / median: how far to trust a row on a noisy machine. */
function spread(runs, metric) {
  const values = runs.map(metric.get);
  if (values.some((v) => v === undefined)) return undefined;
  const m = median(values);
  return m === 0 ? 0 : (Math.max(...values) - Math.min(...values)) / m;
}

// ---------------------------------------------------------------- reporting

const num = (v, digits) =>
  v === undefined
    ? '–'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function scenarioTable(def, runsOf) {
  const head = [
    'figure',
    ...def.variants,
    ...def.ratios.map(([a, b]) => `${a} / ${b}`),
    'max spread',
  ];
  const rows = def.metrics.map((metric) => {
    const value = (v) => aggregate(runsOf(def.id, v), metric);
    const ratios = def.ratios.map(([a, b]) => {
      const x = value(a);
      const y = value(b);
      return metric.noRatio || x === undefined || y === undefined || y === 0
        ? '–'
        : `${(x / y).toFixed(2)}x`;
    });
    const spreads = def.variants
      .map((v) => spread(runsOf(def.id, v), metric))
      .filter((s) => s !== undefined);
    const worst = spreads.length === 0 ? '–' : `${(100 * Math.max(...spreads)).toFixed(1)}%`;
    return [
      metric.label,
      ...def.variants.map((v) => num(value(v), metric.digits)),
      ...ratios,
      worst,
    ];
  });
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [
    `### ${def.id}: ${def.title}`,
    '',
    line(head),
    line(head.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
  ].join('\n');
}

function targetsTable(scenarioIds, runsOf) {
  const targets = TARGETS.filter((x) => scenarioIds.has(x.scenario));
  if (targets.length === 0) return '';
  const lines = ['### Targets', '', '| target | Stride | bound | met |', '|---|---:|---:|---|'];
  for (const t of targets) {
    const f = (variant, metric) => aggregate(runsOf(t.scenario, variant), metric);
    const [value, bound, ok] = t.check(f);
    const cells = [
      t.text,
      num(value, t.digits),
      num(bound, t.digits),
      ok(value, bound) ? 'yes' : 'NO',
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function version(pkg) {
  return JSON.parse(readFileSync(here(`../node_modules/${pkg}/package.json`), 'utf8')).version;
}

function machine() {
  let commit = 'unknown';
  try {
    const git = (...a) => execFileSync('git', a, { encoding: 'utf8', cwd: here('..') }).trim();
    commit = git('rev-parse', '--short', 'HEAD');
    // Figures from a tree with uncommitted engine changes must not pass for the commit's.
    if (git('status', '--porcelain', '--', 'src') !== '')
      commit += ' + uncommitted changes in src/';
  } catch {
    // Not a git checkout (a tarball): the rest of the header still identifies the run.
  }
  return [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.platform()} ${os.release()}`,
    `- node ${process.version}; stride commit ${commit}; p-limit ${version('p-limit')}; p-queue ${version('p-queue')}`,
  ].join('\n');
}

// ---------------------------------------------------------------- main

const args = parseArgs(process.argv.slice(2));
const requested = SCENARIOS.filter((s) => args.only === undefined || args.only.has(s.id));
const skipped = [];
const scenarios = [];
for (const def of requested) {
  const why = await def.unavailable?.();
  if (why === undefined) scenarios.push(def);
  else skipped.push(`- ${def.id} (${def.title}) skipped: ${why}`);
}
const results = [];
const runsOf = (scenario, variant) =>
  results.filter((r) => r.scenario === scenario && r.variant === variant);

for (const def of scenarios) {
  for (let rep = 1; rep <= args.reps; rep++) {
    for (const variant of def.variants) {
      process.stderr.write(`${def.id} rep ${rep}/${args.reps} ${variant} ... `);
      const r = await measure(def.id, variant);
      process.stderr.write(`${(r.wallMs / 1000).toFixed(2)} s\n`);
      results.push({ ...r, rep });
    }
  }
}
const idle = [];
for (let rep = 1; rep <= args.reps; rep++) idle.push(await measure('idle', 'node'));

const report = [
  '## Results',
  '',
  machine(),
  args.reps === 1
    ? '- every figure is from a single run in a fresh process'
    : `- every figure is the median of ${args.reps} runs, each in a fresh process, unless marked otherwise`,
  `- an idle process that loaded the same modules peaks at ${num(median(idle.map((r) => r.maxRssMB)), 0)} MB RSS; every peak RSS below includes it`,
  '',
  ...scenarios.map((def) => `${scenarioTable(def, runsOf)}\n`),
  ...(skipped.length > 0 ? [...skipped, ''] : []),
  targetsTable(new Set(scenarios.map((s) => s.id)), runsOf),
  '',
].join('\n');

console.log(report);
mkdirSync(RESULTS_DIR, { recursive: true });
writeFileSync(`${RESULTS_DIR}latest.md`, report);
writeFileSync(
  `${RESULTS_DIR}latest.json`,
  `${JSON.stringify({ args: { reps: args.reps }, idle, results }, null, 2)}\n`,
);
