/**
 * The journal bench on two builds of Stride, interleaved in one run: what a change costs.
 *
 *   # two trees, each built (npm run build), e.g. the commits before and after a change:
 *   git archive COMMIT^ | tar -x -C /tmp/a && ln -s "$PWD/node_modules" /tmp/a/node_modules
 *   (cd /tmp/a && npx tsc -p tsconfig.build.json)         # the same for /tmp/b at COMMIT
 *   node bench/journal-ab.mjs --reps 7 /tmp/a /tmp/b
 *
 * Each measurement is one fresh process of THIS tree's bench/journal.mjs `one <variant>`, copied
 * into the tree it measures (so both builds are driven by the same bench code and import their
 * own dist/). Repetitions alternate which tree goes first, so a load that changes during the run
 * falls on both. Prints, per variant, the median CPU µs per task of each tree, the ratio of the
 * medians and the median of the per-repetition ratios (B / A), and the send gate's commits.
 */

import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const VARIANTS = ['S1 journal off', 'S1 journal on', 'S1 journal on, test-plan rows'];

function measure(tree, variant) {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', join(tree, 'bench', 'journal-ab-one.mjs'), 'one', variant],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.on('close', (code, signal) => {
      if (code !== 0) fail(new Error(`${tree} ${variant}: exit ${code ?? signal}`));
      else done(JSON.parse(out.trim().split('\n').at(-1)));
    });
  });
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

async function main(argv) {
  let reps = 5;
  const trees = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--reps') reps = Number(argv[++i]);
    else trees.push(resolve(argv[i]));
  }
  if (trees.length !== 2 || !(reps >= 1)) {
    throw new Error('usage: node bench/journal-ab.mjs [--reps N] TREE_A TREE_B');
  }
  const bench = join(fileURLToPath(new URL('.', import.meta.url)), 'journal.mjs');
  for (const tree of trees) copyFileSync(bench, join(tree, 'bench', 'journal-ab-one.mjs'));
  const runs = new Map(VARIANTS.map((v) => [v, [[], []]]));
  for (let r = 0; r < reps; r++) {
    for (const variant of VARIANTS) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      for (const t of order) {
        const m = await measure(trees[t], variant);
        runs.get(variant)[t].push(m);
        process.stderr.write(
          `rep ${r + 1} ${variant} ${t === 0 ? 'A' : 'B'}: ${(m.cpuUs / m.tasks).toFixed(2)} µs/task\n`,
        );
      }
    }
  }
  console.log(`A = ${trees[0]}\nB = ${trees[1]}\n`);
  console.log(
    '| variant | A CPU µs/task | B CPU µs/task | B / A (medians) | B / A (median of pairs) | commits A / B |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [variant, [a, b]] of runs) {
    const perTask = (ms) => ms.map((m) => m.cpuUs / m.tasks);
    const ma = median(perTask(a));
    const mb = median(perTask(b));
    const pairs = a.map((m, i) => b[i].cpuUs / m.cpuUs);
    const commits = (ms) =>
      ms[0].commits === undefined ? '–' : String(median(ms.map((m) => m.commits)));
    console.log(
      `| ${variant} | ${ma.toFixed(2)} | ${mb.toFixed(2)} | ${(mb / ma).toFixed(2)}x | ${median(pairs).toFixed(2)}x | ${commits(a)} / ${commits(b)} |`,
    );
  }
}

await main(process.argv.slice(2));
