/**
 * What linear-time regex assertions cost (issue #16): the time of one match of a typical
 * assertion pattern on re2js (how Stride matches) against V8's backtracking RegExp, and the time
 * (CPU) per case of a judged plan run with a regex assertion against the same run with `contains`.
 *
 *   npm run build && node bench/regex.mjs [--cases 20000]
 *
 * The judged runs: CASES cases on a function target (nothing but the engine and the judge), and
 * 2,000 cases on the Dify target against `stride mock` in a child process (the judge scenario
 * as a CLI run has it: HTTP, JSON, the judge).
 *
 * Prints a table and one JSON line. Each figure is a median of rounds after a warm-up round.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ExecutorService, parsePlan } from '../dist/index.js';
import { compilePattern } from '../dist/plans/pattern.js';

const casesArg = process.argv.indexOf('--cases');
const CASES = casesArg > 0 ? Number(process.argv[casesArg + 1]) : 20_000;

// A model answer of a usual size (~1 KB) and a short one.
const LONG =
  'Thank you for contacting support. I have reviewed order #10423 placed on 2026-11-02. ' +
  'The refund of $42.50 was issued to the original payment method and should appear within ' +
  '5-7 business days. ' +
  'Our records show the parcel was returned to the warehouse and inspected on arrival. '.repeat(8) +
  'If you have other questions, reply to this message. Kind regards, the support team.';
const SHORT = 'Yes, the refund was issued.';

const PATTERNS = [
  ['^yes\\b', 'i', SHORT],
  ['refund', '', LONG],
  ['order #?\\d+', '', LONG],
  ['\\d{4}-\\d{2}-\\d{2}', '', LONG],
  ['(?:sorry|cannot|unable to)', 'i', LONG],
  ['^\\s*thank you.*team\\.$', 'i', LONG],
  ['\\$\\d+(?:\\.\\d{2})?', '', LONG],
];

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function nsPerCall(fn, text) {
  let n = 2_000;
  // Grow the loop until one round takes ~50 ms, so timer resolution does not matter.
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn(text);
    const ms = performance.now() - t0;
    if (ms > 50) break;
    n *= 2;
  }
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn(text);
    rounds.push(((performance.now() - t0) * 1e6) / n);
  }
  return median(rounds);
}

const rows = [];
for (const [source, flags, text] of PATTERNS) {
  const native = new RegExp(source, flags);
  const ours = compilePattern(source, { ignoreCase: flags === 'i' });
  if (native.test(text) !== ours.test(text)) throw new Error(`verdicts differ for ${source}`);
  const nativeNs = nsPerCall((t) => native.test(t), text);
  const oursNs = nsPerCall((t) => ours.test(t), text);
  rows.push({
    pattern: `/${source}/${flags}`,
    chars: text.length,
    matched: ours.test(text),
    regexpNs: Math.round(nativeNs),
    re2jsNs: Math.round(oursNs),
    ratio: Number((oursNs / nativeNs).toFixed(2)),
  });
}

/**
 * A judged plan of `count` inline cases: on a function target answering LONG, or (with `mock`)
 * on the Dify target against `stride mock` in another process, which echoes LONG back.
 */
async function judgedRun(expected, mock, count = CASES) {
  const target =
    mock === undefined
      ? 'target: { type: function, name: answer }'
      : `target: { type: dify, base_url: "${mock}", api_key: app-bench, app: workflow, response_mode: blocking }`;
  const lines = ['workflow_id: bench-regex', target, 'cases:'];
  const inputs = mock === undefined ? '' : `inputs: { query: ${JSON.stringify(LONG)} }, `;
  const field = mock === undefined ? '' : 'field: text, ';
  for (let i = 0; i < count; i++) {
    lines.push(`  - { id: c${i}, ${inputs}expected: { ${field}${expected.slice(2)} }`);
  }
  lines.push('execution_policy: { concurrency: 16 }');
  const manifest = parsePlan(lines.join('\n'));
  const service = new ExecutorService({ functions: { answer: async () => LONG } });
  const cpu0 = process.cpuUsage();
  let n = 0;
  for await (const r of service.streamTestPlan(manifest)) {
    if (r.status !== 'success') throw new Error(`case ${r.executionId}: ${r.errorMessage}`);
    n++;
  }
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / n;
}

const variants = {
  contains: '{ contains: refund }',
  regex: "{ regex: 'order #?\\d+', ignore_case: true }",
  'regex, worst row': "{ regex: '(?:sorry|cannot|unable to|kind regards)', ignore_case: true }",
};
// Rounds alternate between the variants, so a neighbour's CPU load on this shared machine falls
// on all of them alike; the figure is CPU time (user + system) per case, not wall time.
async function measure(mock, count) {
  const rounds = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (const expected of Object.values(variants)) await judgedRun(expected, mock, count); // warm-up
  for (let r = 0; r < 7; r++) {
    for (const [name, expected] of Object.entries(variants)) {
      rounds[name].push(await judgedRun(expected, mock, count));
    }
  }
  const out = Object.fromEntries(
    Object.entries(rounds).map(([k, xs]) => [k, Number(median(xs).toFixed(2))]),
  );
  out.regexOverContains = Number((out.regex / out.contains).toFixed(3));
  out.worstOverContains = Number((out['regex, worst row'] / out.contains).toFixed(3));
  return out;
}

const judge = await measure(undefined, CASES);

// The mock in a child process, so its CPU is not billed to the run.
const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, () => {
    const { port: p } = probe.address();
    probe.close(() => resolve(p));
  });
});
const mockProcess = spawn(
  process.execPath,
  [new URL('../dist/cli/main.js', import.meta.url).pathname, 'mock', '--port', String(port)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
await once(mockProcess.stdout, 'data'); // its start-up line
let judgeMock;
try {
  judgeMock = await measure(`http://127.0.0.1:${port}/v1`, 2_000);
} finally {
  mockProcess.kill('SIGTERM');
}

console.log('pattern                               chars  RegExp ns  re2js ns  ratio');
for (const r of rows) {
  console.log(
    `${r.pattern.padEnd(36)} ${String(r.chars).padStart(6)} ${String(r.regexpNs).padStart(10)} ${String(r.re2jsNs).padStart(9)} ${r.ratio.toFixed(2).padStart(6)}`,
  );
}
console.log(
  `judged plan, ${CASES} cases, CPU µs per case: ${Object.entries(judge)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
console.log(
  `judged plan on the Dify target against stride mock, 2000 cases, CPU µs per case: ${Object.entries(
    judgeMock,
  )
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
console.log(JSON.stringify({ node: process.version, rows, judge, judgeMock }));
