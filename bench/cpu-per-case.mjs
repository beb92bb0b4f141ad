/**
 * Issue #15, "Numbers": CPU per case of a whole `stride run` (cases against `stride mock
 * --latency 0`, concurrency 128, default reports) against a plain loop over the same cases file
 * and mock: a concurrency limiter (what p-limit does: N workers pulling from one iterator, no
 * dependency added for it) around undici's `request`, parsing each answer and checking its
 * `contains`. Budget: stride's CPU <= 2x the loop's.
 *
 *   npm run build && node bench/cpu-per-case.mjs [--cases 20000] [--concurrency 128] [--reps 2] [--prof DIR]
 *     [--baseline OLD/dist/cli/main.js]
 *
 * Both sides are whole child processes under GNU time (user + system CPU of the process, not of
 * the mock, which runs in its own process); they alternate, `--reps` of each, in one run, and the
 * ratio is of the medians. `--prof DIR` adds `--cpu-prof` to the stride runs. `--baseline` adds a
 * third side, an older build's bin (a worktree at the commit before a change, built), in the same
 * interleaved rounds: before and after in one run, each against the same loop. Say the load
 * (printed before and after) next to the figures: the machine is shared.
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI_NODE_FLAGS } from './cli-flags.mjs';

const BIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '128' },
    reps: { type: 'string', default: '2' },
    prof: { type: 'string' },
    loop: { type: 'string' }, // internal: run the plain loop against this base URL
    file: { type: 'string' },
    baseline: { type: 'string' },
  },
});

// ------------------------------------------------------------------ the plain loop (a child)
if (values.loop !== undefined) {
  const { Agent, request } = await import('undici');
  const { createReadStream } = await import('node:fs');
  const { createInterface } = await import('node:readline');
  const conc = Number(values.concurrency);
  const dispatcher = new Agent({ connections: conc, pipelining: 1, keepAliveTimeout: 10_000 });
  const lines = createInterface({ input: createReadStream(values.file), crlfDelay: Infinity });
  const it = lines[Symbol.asyncIterator]();
  let passed = 0;
  let failed = 0;
  async function worker() {
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      if (next.value === '') continue;
      const c = JSON.parse(next.value);
      const res = await request(`${values.loop}/v1/workflows/run`, {
        method: 'POST',
        dispatcher,
        headers: { authorization: 'Bearer app-bench', 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: c.inputs, response_mode: 'blocking', user: 'bench' }),
      });
      const body = await res.body.json();
      const text = String(body?.data?.outputs?.text ?? body?.answer ?? JSON.stringify(body));
      if (res.statusCode === 200 && text.includes(c.expected.contains)) passed++;
      else failed++;
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
  await dispatcher.close();
  process.stdout.write(`${JSON.stringify({ passed, failed })}\n`);
  process.exit(0);
}

// ------------------------------------------------------------------ the parent
const GNU_TIME = '/usr/bin/time';
if (!existsSync(GNU_TIME)) throw new Error('this bench needs GNU time (/usr/bin/time)');

function timed(argv, env = {}) {
  const usage = join(dir, `usage-${Math.random().toString(36).slice(2)}.txt`);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(GNU_TIME, ['-o', usage, '-f', '%U %S %M', ...argv], {
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
    child.on('exit', (code) => {
      const [u, s, kb] = readFileSync(usage, 'utf8').trim().split('\n').at(-1).split(' ');
      resolve({
        code,
        out,
        err,
        wall: Date.now() - t0,
        cpu: (Number(u) + Number(s)) * 1000,
        rss: Number(kb) / 1024,
      });
    });
  });
}

const cases = Number(values.cases);
const dir = mkdtempSync(join(tmpdir(), 'stride-cpu-per-case-'));
const casesFile = join(dir, 'cases.jsonl');
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
writeFileSync(casesFile, `${lines.join('\n')}\n`);

const mock = spawn(process.execPath, [BIN, 'mock', '--port', '0', '--latency', '0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((resolve, reject) => {
  let text = '';
  mock.stdout.on('data', (c) => {
    text += c;
    const m = /listening on (\S+)/.exec(text);
    if (m) resolve(m[1].replace(/\/$/, ''));
  });
  mock.on('exit', (code) => reject(new Error(`stride mock exited ${code}`)));
});
writeFileSync(
  join(dir, 'plan.yaml'),
  [
    'workflow_id: cpu-per-case-bench',
    'target:',
    '  type: dify',
    `  base_url: ${url}/v1`,
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

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const self = fileURLToPath(import.meta.url);
const loadBefore = loadavg().map((l) => l.toFixed(1));
const got = { stride: [], loop: [], baseline: [] };
const sides = values.baseline === undefined ? ['loop', 'stride'] : ['loop', 'stride', 'baseline'];
try {
  for (let r = 0; r < Number(values.reps); r++) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      if (side === 'loop') {
        const t = await timed([
          process.execPath,
          self,
          '--loop',
          url,
          '--file',
          casesFile,
          '--concurrency',
          values.concurrency,
        ]);
        if (t.code !== 0) throw new Error(`loop exited ${t.code}: ${t.err}`);
        const { passed } = JSON.parse(t.out);
        if (passed !== cases) throw new Error(`loop: ${passed} of ${cases} passed`);
        got.loop.push(t);
      } else {
        const prof =
          values.prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values.prof}`];
        const t = await timed([
          process.execPath,
          ...CLI_NODE_FLAGS,
          ...prof,
          side === 'baseline' ? values.baseline : BIN,
          'run',
          join(dir, 'plan.yaml'),
          '--db',
          join(dir, `${side}-${r}.db`),
          '--out',
          join(dir, `out-${side}-${r}`),
          '--json',
          '--no-progress',
        ]);
        if (t.code !== 0) throw new Error(`${side} run exited ${t.code}: ${t.err}`);
        const summary = JSON.parse(t.out);
        if (summary.passed !== cases)
          throw new Error(`${side}: ${summary.passed} of ${cases} passed`);
        got[side].push(t);
      }
    }
  }
  const row = (name, ts) =>
    `| ${name} | ${median(ts.map((t) => t.cpu)).toFixed(0)} | ${((median(ts.map((t) => t.cpu)) * 1000) / cases).toFixed(1)} | ${median(ts.map((t) => t.wall)).toFixed(0)} | ${Math.max(...ts.map((t) => t.rss)).toFixed(1)} |`;
  const cpu = (ts) => median(ts.map((t) => t.cpu));
  const ratio = cpu(got.stride) / cpu(got.loop);
  const before =
    got.baseline.length === 0
      ? []
      : [
          row('baseline stride run (--baseline)', got.baseline),
          `CPU ratio baseline / loop: ${(cpu(got.baseline) / cpu(got.loop)).toFixed(2)}x; stride / baseline: ${(cpu(got.stride) / cpu(got.baseline)).toFixed(2)}x`,
        ];
  process.stdout.write(
    [
      `load before: ${loadBefore.join(' ')}; ${cases} cases, concurrency ${values.concurrency}, ${values.reps} reps each, interleaved`,
      '| side | CPU ms (median) | CPU µs per case | wall ms (median) | peak RSS MB |',
      '| --- | --- | --- | --- | --- |',
      row('stride run (default reports)', got.stride),
      row('plain loop (limiter + undici)', got.loop),
      `CPU ratio stride / loop: ${ratio.toFixed(2)}x (budget <= 2x)`,
      ...before,
      `load after: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
      '',
    ].join('\n'),
  );
} finally {
  mock.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
