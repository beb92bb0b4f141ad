/**
 * `stride compare`, `stride run --baseline` and `stride runs --plan` in child processes against
 * the mock (in this process, port 0). Two runs of one plan: between them the case file turns two
 * passing cases into failures, fixes one, drops one and adds one. The JSON lists exactly those
 * ids; the gate exits 1 only when asked; the markdown and the HTML page (opened in headless
 * Chromium) are read back; bad input exits 2 naming the run or flag and writes nothing.
 */

import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { makePlan, spawnStride, strideHere } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let mock: MockServer;
/** One Chromium for the file (a launch per test before), started with the mock. */
let browser: Browser;
beforeAll(async () => {
  [mock, browser] = await Promise.all([
    startMock({ port: 0, latencyMs: 2 }),
    chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await mock.close();
});

type Kind = 'ok' | 'fail' | 'error';

/** Rewrites the plan's case file: `fail` cases expect what the mock never says. */
function writeCases(dir: string, cases: Record<string, Kind>): void {
  const lines = Object.entries(cases).map(([id, kind]) =>
    JSON.stringify({
      id,
      dataset: id.startsWith('x') ? 'extra' : 'main',
      inputs: {
        query: `question ${id}`,
        __case: id,
        ...(kind === 'error' ? { __fault: '400' } : {}),
      },
      expected: { field: 'text', contains: kind === 'fail' ? 'never said' : 'question' },
    }),
  );
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
}

const BASE: Record<string, Kind> = {
  a: 'ok',
  b: 'ok',
  c: 'ok',
  d: 'fail',
  e: 'ok',
  gone: 'ok',
  stuck: 'fail',
  x1: 'ok',
};
const HEAD: Record<string, Kind> = {
  a: 'ok',
  b: 'fail', // regression: an assertion breaks
  c: 'error', // regression: the target errs
  d: 'ok', // fix
  e: 'ok',
  stuck: 'fail',
  x1: 'ok',
  new: 'ok', // added; `gone` removed
};

async function run(args: string[], dir: string, target: MockServer = mock) {
  const child = spawnStride(args, { cwd: dir, env: { MOCK_URL: target.baseUrl } });
  const code = await child.exited;
  return { code, out: child.stdout(), err: child.stderr() };
}

/** Flags whose value is a path: made absolute for an in-process command (no cwd of its own). */
const PATH_FLAGS = new Set(['--db', '-o']);

/**
 * `stride compare ...` in this process (`strideHere`), the paths made absolute. The comparisons
 * only read a finished journal and write a file; what a process adds (the bin's shebang, its
 * exit) is covered by the runs here and test/cli/e2e.test.ts, and the 18 children they were
 * cost 5.3 s of CPU (17.0 -> 11.8 s for the file, load 21-26).
 */
function compare(args: string[], dir: string) {
  return strideHere(args.map((a, i) => (PATH_FLAGS.has(args[i - 1] ?? '') ? join(dir, a) : a)));
}

async function twoRuns() {
  const { dir, plan } = makePlan({ cases: [] });
  writeCases(dir, BASE);
  const first = await run(['run', plan, '--db', 'j.db', '--quiet', '--out', 'out1'], dir);
  expect(first.code).toBe(1); // d and stuck fail
  writeCases(dir, HEAD);
  const second = await run(['run', plan, '--db', 'j.db', '--quiet', '--out', 'out2'], dir);
  expect(second.code).toBe(1);
  const id = (text: string) => /^(\S+) completed/.exec(text)![1]!;
  return { dir, plan, base: id(first.out), head: id(second.out) };
}

/**
 * The two runs are made once for the file (two child processes each test used to repeat); each
 * test gets its own copy of the folder, journal and reports included, to add runs to.
 */
let made: Promise<Awaited<ReturnType<typeof twoRuns>>> | undefined;
async function twoRunsCopy(): Promise<Awaited<ReturnType<typeof twoRuns>>> {
  made ??= twoRuns();
  const template = await made;
  const dir = mkdtempSync(join(tmpdir(), 'stride-cmp-'));
  cpSync(template.dir, dir, { recursive: true });
  return { ...template, dir, plan: join(dir, 'plan.yaml') };
}

const ids = (list: { id: string }[]) => list.map((c) => c.id);

// The tests run side by side: each works in its own copy of the two runs' folder; the one that
// counts requests sends its runs to a mock of its own.
describe.concurrent('stride compare', () => {
  it('lists exactly the changed cases; the gate exits 1 only when asked; md and HTML read back', {
    timeout: 120_000,
  }, async () => {
    const { dir, base, head } = await twoRunsCopy();
    const db = ['--db', 'j.db'];
    // The seven comparisons only read the journal: they run side by side (one after another
    // they were most of this test's time), and each is judged on its own below.
    const [json, gate, significant, reverse, plain, md, html] = await Promise.all([
      compare(['compare', 'latest~1', 'latest', '--plan', 'cli-test', ...db, '--json'], dir),
      compare(['compare', base, head, ...db, '--fail-on-regression'], dir),
      compare(['compare', base, head, ...db, '--fail-on-regression=significant'], dir),
      compare(['compare', head, base, ...db, '--fail-on-regression'], dir),
      compare(['compare', base, head, ...db], dir),
      compare(['compare', base, head, ...db, '--format', 'md', '-o', 'cmp/comment.md'], dir),
      compare(['compare', base, head, ...db, '--format', 'html', '-o', 'cmp/compare.html'], dir),
    ]);
    expect(json.code, json.err).toBe(0);
    const c = JSON.parse(json.out);
    expect(ids(c.regressions)).toEqual(['b', 'c']);
    expect(ids(c.fixes)).toEqual(['d']);
    expect(ids(c.added)).toEqual(['new']);
    expect(ids(c.removed)).toEqual(['gone']);
    expect(ids(c.still_failing)).toEqual(['stuck']);
    expect(c.changed).toEqual([]);
    for (const key of ['regressions', 'fixes', 'added', 'removed', 'still_failing', 'changed']) {
      for (const item of c[key])
        expect(Object.keys(item)).toEqual(expect.arrayContaining(['id', 'dataset']));
    }
    expect(c.summary.base.runs[0].id).toBe(base);
    expect(c.summary.head.runs[0].id).toBe(head);
    expect(c.summary.base.pass_rate).toBeCloseTo(6 / 8, 12);
    expect(c.summary.head.pass_rate).toBeCloseTo(5 / 8, 12);
    expect(c.summary.delta.pass_rate).toBeCloseTo(-1 / 8, 12);
    expect(c.summary.p_value).toBe(1); // 2 regressed vs 1 fixed: 2 * (1 + 3 + 3) / 8 capped at 1
    expect(c.summary.datasets.map((d: { name: string }) => d.name)).toEqual(['extra', 'main']);
    const b = c.regressions[0];
    expect(b).toMatchObject({
      dataset: 'main',
      verdict: 'regressed',
      inputs: { query: 'question b' },
      base: { status: 'success', output: 'question b' },
      head: { status: 'failed', output: 'question b', error_code: 'TASK_FAILED' },
      assertion: { type: 'contains', passed: false },
    });
    expect(c.regressions[1].head).toMatchObject({ status: 'error' });

    // The gate: any regression, or only a significant one (2 vs 1 is not).
    expect(gate.code).toBe(1);
    expect(gate.err).toContain('--fail-on-regression: 2 regression(s) (b, c)');
    expect(gate.out).toContain('REGRESSIONS: passed in base, not in head (2)');
    expect(significant.code).toBe(0);
    expect(reverse.code).toBe(1); // d regressed in that direction
    expect(plain.code).toBe(0);
    expect(plain.out.indexOf('REGRESSIONS')).toBeLessThan(plain.out.indexOf('FIXES'));

    // Markdown, parsed back: the tables of each list hold exactly the ids.
    expect(md.code, md.err).toBe(0);
    const text = readFileSync(join(dir, 'cmp', 'comment.md'), 'utf8');
    expect(text.startsWith(`### Stride compare: \`${base}\` → \`${head}\``)).toBe(true);
    const table = (title: string) => {
      const at = text.indexOf(`#### ${title} (`);
      if (at === -1) return [];
      const rows = text.slice(at).split('\n').slice(4);
      const out: string[] = [];
      for (const row of rows) {
        if (!row.startsWith('| ')) break;
        out.push(/^\| `([^`]*)`/.exec(row)![1]!);
      }
      return out;
    };
    expect(table('Regressions')).toEqual(['b', 'c']);
    expect(table('Fixes')).toEqual(['d']);
    expect(table('Added')).toEqual(['new']);
    expect(table('Removed')).toEqual(['gone']);
    expect(table('Still failing')).toEqual(['stuck']);
    expect(text).toMatch(
      /\| pass rate \| 75\.0% \[[\d.]+–[\d.]+%\] \| 62\.5% \[[\d.]+–[\d.]+%\] \| −12\.5 pts \|/,
    );

    // HTML, in Chromium: regressions first, each list's ids, side-by-side outputs, no script.
    expect(html.code, html.err).toBe(0);
    const page = await browser.newPage();
    try {
      const remote: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) remote.push(r.url());
      });
      await page.goto(pathToFileURL(join(dir, 'cmp', 'compare.html')).href);
      const lists = await page.$$eval('[data-testid="list"]', (els) =>
        els.map((e) => e.getAttribute('data-list')),
      );
      expect(lists).toEqual(['regressions', 'fixes', 'added', 'removed', 'still_failing']);
      const inList = (list: string) =>
        page.$$eval(`[data-testid="case"][data-list="${list}"]`, (els) =>
          els.map((e) => e.getAttribute('data-case-id')),
        );
      expect(await inList('regressions')).toEqual(['b', 'c']);
      expect(await inList('fixes')).toEqual(['d']);
      expect(await inList('added')).toEqual(['new']);
      expect(await inList('removed')).toEqual(['gone']);
      const num = async (id: string) =>
        Number(await page.getAttribute(`[data-testid="${id}"]`, 'data-value'));
      expect(await num('regressions-count')).toBe(2);
      expect(await num('fixes-count')).toBe(1);
      expect(await num('p-value')).toBe(1);
      expect(await num('base-pass-rate')).toBeCloseTo(0.75, 12);
      const outputs = await page.$$eval('[data-case-id="b"] .cols2 pre', (els) =>
        els.map((e) => e.textContent),
      );
      expect(outputs).toEqual(['question b', 'question b']);
      expect(await page.textContent('[data-case-id="b"] [data-testid="head-status"]')).toBe(
        'failed',
      );
      expect(await page.locator('[data-case-id="b"] [data-testid="diff"]').count()).toBeGreaterThan(
        0,
      );
      expect(await page.locator('script').count()).toBe(0);
      expect(remote).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('run --baseline compares at the end: summary after the run, files beside the reports, the gate, the trend', {
    timeout: 120_000,
  }, async () => {
    const { dir, plan, base, head } = await twoRunsCopy();
    writeCases(dir, { ...HEAD, b: 'ok', e: 'fail' }); // b fixed, e regressed, against `head`
    const r = await run(
      [
        'run',
        plan,
        '--db',
        'j.db',
        '--baseline',
        'latest',
        '--fail-on-regression',
        '--no-progress',
      ],
      dir,
    );
    expect(r.code, r.err).toBe(1);
    const runAt = r.out.indexOf('Run ');
    const cmpAt = r.out.indexOf(`Compare ${head} → `);
    expect(runAt).toBeGreaterThanOrEqual(0);
    expect(cmpAt).toBeGreaterThan(runAt);
    expect(r.out).toContain('--fail-on-regression: 1 regression(s) (e)');
    // Beside the run's report.html, in the run's own folder (stride-out/latest is that run).
    const out = join(dir, 'stride-out', 'latest');
    for (const f of ['compare.json', 'compare.md', 'compare.html', 'report.html']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const c = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    expect(ids(c.regressions)).toEqual(['e']);
    expect(ids(c.fixes)).toEqual(['b']);

    // --json: one object, the run's summary with the comparison in it.
    writeCases(dir, HEAD);
    const j = await run(
      [
        'run',
        plan,
        '--db',
        'j.db',
        '--baseline',
        base,
        '--json',
        '--out',
        'o3',
        '--fail-on-regression=significant',
      ],
      dir,
    );
    expect(j.code).toBe(1); // the run itself has failures
    const summary = JSON.parse(j.out);
    expect(summary.comparison).toMatchObject({
      baseline: [base],
      regressions: [
        { id: 'b', dataset: 'main' },
        { id: 'c', dataset: 'main' },
      ],
      gate: 'passed',
    });

    // The two `stride runs` read the journal while the page is checked (they ran after it).
    const [runs, runsJson] = await Promise.all([
      run(['runs', '--plan', 'cli-test', '--db', 'j.db'], dir),
      run(['runs', '--plan', 'cli-test', '--db', 'j.db', '--json'], dir),
    ]);

    // The run's HTML report: the plan's pass-rate trend and the link to the comparison.
    const page = await browser.newPage();
    try {
      await page.goto(pathToFileURL(join(dir, 'o3', summary.runId, 'report.html')).href);
      const points = await page.$$eval('[data-testid="trend-point"]', (els) =>
        els.map((e) => [e.getAttribute('data-run-id'), Number(e.getAttribute('data-value'))]),
      );
      expect(points).toHaveLength(4);
      expect(points[0]).toEqual([base, 0.75]);
      expect(points[1]).toEqual([head, 0.625]);
      expect(points[3]![0]).toBe(summary.runId);
      expect(await page.getAttribute('[data-testid="comparison-link"]', 'href')).toBe(
        'compare.html',
      );
    } finally {
      await page.close();
    }

    // stride runs --plan: pass rate, cost, p50 per run and the sparkline, oldest to newest.
    expect(runs.code).toBe(0);
    const lines = runs.out.split('\n');
    expect(lines[0]).toMatch(/^RUN\s+STATUS\s+CASES\s+PASS RATE\s+COST\s+P50$/);
    expect(lines.filter((l) => l.includes(' completed '))).toHaveLength(4);
    expect(runs.out).toContain(`${base}  completed      8      75.0%`);
    expect(runs.out).toMatch(/pass rate, oldest → newest: █▁\S▁ \(62\.5% to 75\.0%\)/);
    const asJson = JSON.parse(runsJson.out);
    expect(asJson.map((f: { id: string }) => f.id).slice(2)).toEqual([head, base]);
    expect(asJson[3]).toMatchObject({ passRate: 0.75, total: 8 });
  });

  it('bad input exits 2 naming the run or flag, and writes nothing', {
    timeout: 120_000,
  }, async () => {
    const { dir, plan, base, head } = await twoRunsCopy();
    const db = ['--db', 'j.db'];
    const before = readdirSync(dir).sort();
    const cases: [string[], RegExp][] = [
      [
        ['compare', base, 'nope', ...db, '-o', 'x.json', '--json'],
        /head: no run "nope" in the store/,
      ],
      [
        ['compare', 'latest', head, '--plan', 'other', ...db, '-o', 'x.md', '--format', 'md'],
        /base latest: plan "other" has no completed run/,
      ],
      [
        ['compare', 'latest~1', 'latest', ...db],
        /invalid option base: "latest~1" \(expected a run id, or the plan to take the latest run of \(--plan NAME\)\)/,
      ],
      [
        ['compare', 'latest~9', 'latest', '--plan', 'cli-test', ...db],
        /base latest~9: plan "cli-test" has only 2 completed run\(s\)/,
      ],
      [
        ['compare', base, head, ...db, '--fail-on-regression=maybe'],
        /option '--fail-on-regression \[when\]' argument 'maybe' is invalid/,
      ],
      [
        ['compare', base, head, ...db, '--format', 'pdf'],
        /option '--format <format>' argument 'pdf' is invalid/,
      ],
      [['compare', base, head, ...db, '--format', 'html'], /--format html needs -o FILE/],
      [['compare', base, head, '--db', 'missing.db'], /--db \S*\/missing.db: no such run journal/],
      [['compare', base, `${head},${head}`, ...db], /each run once/],
      [['run', plan, ...db, '--baseline', 'nope', '--out', 'never'], /--baseline: no run "nope"/],
      [
        ['run', plan, ...db, '--fail-on-regression', '--out', 'never'],
        /--fail-on-regression needs --baseline/,
      ],
    ];
    // Every command here is refused before it reads or sends anything: all of them side by
    // side (the refused runs were one at a time), the runs against a mock of their own, which
    // must see no request at all.
    const own = await startMock({ port: 0, latencyMs: 2 });
    let results: Awaited<ReturnType<typeof run>>[];
    try {
      results = await Promise.all(
        cases.map(([args]) => (args[0] === 'compare' ? compare(args, dir) : run(args, dir, own))),
      );
      expect(own.stats().requests).toBe(0); // the refused runs sent nothing
    } finally {
      await own.close();
    }
    cases.forEach(([args, message], i) => {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
      expect(r.err, args.join(' ')).toMatch(message);
    });
    expect(readdirSync(dir).sort()).toEqual(before); // no -o file, no report folder

    // Runs that share no case: both named. A damaged journal (a file that is not SQLite) is
    // refused beside that run.
    writeCases(dir, { z1: 'ok' });
    writeFileSync(join(dir, 'bad.db'), 'this is not a database at all, just text of some length');
    const [other, damaged] = await Promise.all([
      run(['run', plan, ...db, '--quiet', '--out', 'out3'], dir),
      compare(['compare', base, head, '--db', 'bad.db'], dir),
    ]);
    const third = /^(\S+) completed/.exec(other.out)![1]!;
    const disjoint = await compare(['compare', base, third, ...db, '-o', 'y.json'], dir);
    expect(disjoint.code).toBe(2);
    expect(disjoint.err).toContain(
      `runs ${base} (8 cases) and ${third} (1 cases) share no case id`,
    );
    expect(existsSync(join(dir, 'y.json'))).toBe(false);
    expect(damaged.code).toBe(2);
    expect(damaged.err).toMatch(/bad\.db is not a SQLite database/);
  });
});
