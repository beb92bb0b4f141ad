/**
 * The `stride` command in process: flags, usage errors, validate, run against the mock on a real
 * socket, runs / show / report / prune over a real SQLite journal, rerun --errors.
 * Child-process behaviour (signals, exit codes of the bin) is in e2e.test.ts.
 */

import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import {
  durationArg,
  intArg,
  listArg,
  maxFailuresArg,
  rangeArg,
  rateArg,
  shareArg,
} from '../../src/cli/flags.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { newRunId } from '../../src/store/run-id.js';
import { parseCsv } from '../report/helpers.js';
import { captureIo, makePlan } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 5 });
});
afterAll(async () => {
  await mock.close();
});

function env(): NodeJS.ProcessEnv {
  return { MOCK_URL: mock.baseUrl };
}

describe('flag parsers', () => {
  it('accept what the help says and reject the rest with what was expected', () => {
    expect(intArg(1)('8')).toBe(8);
    expect(() => intArg(1)('0')).toThrow('expected an integer >= 1');
    expect(() => intArg(1)('2.5')).toThrow('expected an integer >= 1');
    expect(rateArg('600')).toBe(600);
    expect(rateArg('600/min')).toBe(600);
    expect(rateArg('10/s')).toBe(600);
    expect(rateArg('3600/h')).toBe(60);
    expect(() => rateArg('fast')).toThrow('expected a rate');
    expect(durationArg('30s')).toBe(30_000);
    expect(durationArg('1500ms')).toBe(1500);
    expect(durationArg('45')).toBe(45_000);
    expect(() => durationArg('soon')).toThrow('expected a duration');
    expect(shareArg('95%')).toBeCloseTo(0.95);
    expect(shareArg('0.8')).toBe(0.8);
    expect(() => shareArg('120%')).toThrow('between 0 and 1');
    expect(maxFailuresArg('10')).toBe(10);
    expect(maxFailuresArg('20%')).toBeCloseTo(0.2);
    expect(() => maxFailuresArg('100%')).toThrow('a count');
    // issue #18 item 16: every refusal names both forms (it said "expected an integer >= 1")
    for (const bad of ['-1', '0', 'many', '1.5', '-5%', '2.5x']) {
      expect(() => maxFailuresArg(bad), bad).toThrow(
        'expected a count >= 1 (10) or a share between 0 and 1 (0.2, 20%)',
      );
    }
    expect(rangeArg('5-10')).toEqual({ from: 5, to: 10 });
    expect(rangeArg('50-')).toEqual({ from: 50 });
    expect(rangeArg('7')).toEqual({ from: 7, to: 7 });
    expect(() => rangeArg('10-5')).toThrow('FROM-TO');
    expect(listArg('a,b', ['x'])).toEqual(['x', 'a', 'b']);
    expect(newRunId(new Date(2026, 10, 24, 21, 30, 5))).toMatch(/^20261124-213005-[0-9a-f]{4}$/);
  });
});

describe('usage errors exit 2 and name the flag and the value', () => {
  it('--report pdf exits 2 and writes nothing: no journal, no report folder (issue #18 item 12)', async () => {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const db = join(dir, 'fresh.db');
    const out = join(dir, 'never');
    const { io, text } = captureIo({ MOCK_URL: mock.baseUrl });
    expect(await main(['run', plan, '--db', db, '--out', out, '--report', 'pdf'], io)).toBe(2);
    expect(text.err).toContain('--report');
    expect(text.err).toContain('"pdf"');
    expect(existsSync(db)).toBe(false);
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    [
      ['run', 'plan.yaml', '-j', 'many'],
      "option '-j, --concurrency <n>' argument 'many' is invalid",
    ],
    [['run', 'plan.yaml', '--rate', 'fast'], "option '--rate <rate>' argument 'fast' is invalid"],
    [['run', 'plan.yaml', '--turbo'], "unknown option '--turbo'"],
    [['runz'], "unknown command 'runz'"],
    [['run'], "missing required argument 'plan'"],
    [['report', 'r1', '--format', 'pdf', '--db', 'x.db'], 'pdf'],
    [['run', 'plan.yaml', '--batch', '0'], "option '--batch <n>' argument '0' is invalid"],
  ])('%j', async (argv, message) => {
    const { io, text } = captureIo();
    expect(await main(argv, io)).toBe(2);
    expect(text.err).toContain(message);
  });

  it('a flag that needs another one', async () => {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const { io, text } = captureIo(env());
    expect(await main(['run', plan, '--seed', '3', '--db', join(dir, 'db')], io)).toBe(2);
    expect(text.err).toContain('--seed 3: it seeds --sample');
    expect(existsSync(join(dir, 'db'))).toBe(false); // nothing was written
  });

  it('--batch without --dispatch bullmq', async () => {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const { io, text } = captureIo(env());
    expect(await main(['run', plan, '--batch', '4', '--db', join(dir, 'db')], io)).toBe(2);
    expect(text.err).toContain('--batch applies to --dispatch bullmq only');
    expect(existsSync(join(dir, 'db'))).toBe(false);
  });

  it('a plan with a bad value: file, line and field, nothing run, nothing stored', async () => {
    const { dir, plan } = makePlan({ cases: ['ok'], extra: '  rate_control: { per_minute: -5 }' });
    const { io, text } = captureIo(env());
    expect(await main(['run', plan, '--db', join(dir, 'db'), '--out', join(dir, 'out')], io)).toBe(
      2,
    );
    expect(text.err).toMatch(
      /plan\.yaml:13:\d+: execution_policy\.rate_control\.per_minute: -5 is invalid/,
    );
    expect(text.err).toContain('per_minute');
    expect(text.err).toContain('-5');
    expect(existsSync(join(dir, 'db'))).toBe(false);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    expect(mock.stats().byCase.c0).toBeUndefined();
  });
});

describe('--help', () => {
  it.each([
    'run',
    'resume',
    'rerun',
    'runs',
    'show',
    'report',
    'validate',
    'prune',
    'demo',
    'worker',
  ])('%s --help shows its usage with an example, exit 0', async (command) => {
    const { io, text } = captureIo();
    expect(await main([command, '--help'], io)).toBe(0);
    expect(text.out).toContain(`Usage: stride ${command}`);
    expect(text.out).toContain(`$ stride ${command}`);
  });

  it('lists every command', async () => {
    const { io, text } = captureIo();
    expect(await main(['--help'], io)).toBe(0);
    for (const c of [
      'run',
      'resume',
      'rerun',
      'runs',
      'show',
      'report',
      'validate',
      'mock',
      'demo',
    ]) {
      expect(text.out).toMatch(new RegExp(`\\n\\s+${c}\\b`));
    }
  });
});

describe('stride validate', () => {
  it('counts the cases and runs nothing', async () => {
    const { plan } = makePlan({ cases: ['ok', 'ok', 'fail'] });
    const { io, text } = captureIo(env());
    expect(await main(['validate', plan, '--json'], io)).toBe(0);
    expect(JSON.parse(text.out)).toMatchObject({
      plan: 'cli-test',
      valid: true,
      total: 3,
      selected: 3,
    });
  });
});

describe('stride run, runs, show, report, rerun', () => {
  it('runs a plan against the mock: exit 1 on failures, reports, the journal, and --fail-under', async () => {
    const { dir, plan } = makePlan({
      cases: ['ok', 'ok', 'fail', 'ok', 'error', 'ok', 'ok', 'ok'],
    });
    const db = join(dir, 'stride.db');
    const run1 = captureIo(env());
    expect(
      await main(
        ['run', plan, '--db', db, '--out', join(dir, 'out'), '--json', '--no-progress'],
        run1.io,
      ),
    ).toBe(1);
    const summary = JSON.parse(run1.text.out) as Record<string, unknown>;
    expect(summary).toMatchObject({
      plan: 'cli-test',
      status: 'completed',
      total: 8,
      passed: 6,
      failed: 1,
      error: 1,
      exitCode: 1,
    });
    const runId = summary.runId as string;
    const out = join(dir, 'out', runId); // the run's own folder under --out

    // JUnit parsed back: one testcase per case, grouped by dataset, failures and errors apart.
    const junit = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(
      await readFile(join(out, 'junit.xml'), 'utf8'),
    );
    expect(junit.testsuites).toMatchObject({ tests: '8', failures: '1', errors: '1' });
    const suites = [junit.testsuites.testsuite].flat() as { name: string; tests: string }[];
    expect(suites.map((s) => [s.name, s.tests]).sort()).toEqual([
      ['even', '4'],
      ['odd', '4'],
    ]);
    // The CSV parsed back: a header and one row per case with its status.
    const rows = parseCsv(await readFile(join(out, 'results.csv'), 'utf8'));
    const header = rows[0]!;
    const byId = new Map(
      rows.slice(1).map((r) => [r[header.indexOf('id')], r[header.indexOf('status')]]),
    );
    expect(byId.size).toBe(8);
    expect(byId.get('c2')).toBe('failed');
    expect(byId.get('c4')).toBe('error');
    expect(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n')).toHaveLength(8);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('cli-test');
    // The key never reaches the reports.
    for (const f of ['junit.xml', 'results.csv', 'results.json', 'results.jsonl', 'report.html']) {
      expect(readFileSync(join(out, f), 'utf8')).not.toContain('app-cli-secret-123');
    }

    // runs and show read the same journal.
    const runs = captureIo();
    expect(await main(['runs', '--db', db, '--json'], runs.io)).toBe(0);
    expect(JSON.parse(runs.text.out)).toEqual([
      expect.objectContaining({
        id: runId,
        status: 'completed',
        counts: expect.objectContaining({ total: 8, succeeded: 6 }),
      }),
    ]);
    const show = captureIo();
    expect(await main(['show', runId, '--db', db], show.io)).toBe(0);
    expect(show.text.out).toContain(
      'cases      8: 6 succeeded, 1 failed, 0 timeout, 1 error, 0 cancelled',
    );
    const missing = captureIo();
    expect(await main(['show', 'nope', '--db', db], missing.io)).toBe(2);
    expect(missing.text.err).toContain(`no run "nope" in the store (latest: ${runId})`);

    // report writes any format of a past run from the journal.
    const rep = captureIo();
    const junitFile = join(dir, 'again', 'junit.xml');
    expect(
      await main(['report', runId, '--db', db, '--format', 'junit', '-o', junitFile], rep.io),
    ).toBe(0);
    expect(await readFile(junitFile, 'utf8')).toBe(await readFile(join(out, 'junit.xml'), 'utf8'));
    // Several formats with -o naming a file: exit 2, explained, and no directory named x.xml/.
    const several = captureIo();
    const xFile = join(dir, 'x.xml');
    expect(
      await main(['report', runId, '--db', db, '--format', 'junit,html', '-o', xFile], several.io),
    ).toBe(2);
    expect(several.text.err).toContain(
      `--output "${xFile}" names a file, but --format junit,html writes 2 files`,
    );
    expect(existsSync(xFile)).toBe(false);
    // A directory the user names, with or without the trailing slash, takes them.
    const intoDir = captureIo();
    const reportsDir = join(dir, 'reports-dir');
    expect(
      await main(
        ['report', runId, '--db', db, '--format', 'junit,csv', '-o', reportsDir],
        intoDir.io,
      ),
    ).toBe(0);
    expect(existsSync(join(reportsDir, 'junit.xml'))).toBe(true);

    // rerun --errors sends exactly the errored case again, as a new run linked to the first.
    const before = { ...mock.stats().byCase };
    const rerun = captureIo(env());
    expect(
      await main(
        [
          'rerun',
          runId,
          '--errors',
          '--db',
          db,
          '--out',
          join(dir, 'rr'),
          '--json',
          '--no-progress',
        ],
        rerun.io,
      ),
    ).toBe(1);
    const after = mock.stats().byCase;
    const resent = Object.keys(after).filter((k) => k.startsWith('c') && after[k] !== before[k]);
    expect(resent).toEqual(['c4']);
    expect(JSON.parse(rerun.text.out)).toMatchObject({ parentId: runId, total: 1, error: 1 });

    // --fail-under: 6 of 8 passed (75%).
    const lenient = captureIo(env());
    expect(
      await main(
        ['run', plan, '--db', db, '--out', join(dir, 'out'), '--fail-under', '70%', '--quiet'],
        lenient.io,
      ),
    ).toBe(0);
    expect(lenient.text.out).toMatch(
      /completed: 8 cases: 6 passed, 1 failed, 1 error, 0 timeout \(pass rate 75\.0%, --fail-under 70\.0%\)/,
    );
    const strict = captureIo(env());
    expect(
      await main(
        ['run', plan, '--db', db, '--out', join(dir, 'out'), '--fail-under', '0.8', '--quiet'],
        strict.io,
      ),
    ).toBe(1);

    // prune keeps the newest.
    const prune = captureIo();
    expect(await main(['prune', '--db', db, '--keep', '1'], prune.io)).toBe(0);
    expect(prune.text.out).toBe('pruned 3 run(s)\n');
  });

  it('flags override the plan: selection by tag-free range and repeat, concurrency', async () => {
    const { dir, plan } = makePlan({ cases: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] });
    const { io, text } = captureIo(env());
    const code = await main(
      [
        'run',
        plan,
        '--db',
        join(dir, 'db'),
        '--out',
        join(dir, 'out'),
        '--range',
        '2-4',
        '--repeat',
        '2',
        '-j',
        '1',
        '--json',
        '--report',
        'json',
      ],
      io,
    );
    expect(code).toBe(0);
    expect(JSON.parse(text.out)).toMatchObject({ total: 6, passed: 6 });
    const json = JSON.parse(readFileSync(join(dir, 'out', 'latest', 'results.json'), 'utf8')) as {
      results: { executionId: string }[];
    };
    expect(json.results.map((r) => r.executionId).sort()).toEqual([
      'c1#1',
      'c1#2',
      'c2#1',
      'c2#2',
      'c3#1',
      'c3#2',
    ]);
    expect(existsSync(join(dir, 'out', 'latest', 'junit.xml'))).toBe(false); // only those asked
  });
});

describe('the bin', () => {
  it('sets the same V8 flags the benchmark measures with', async () => {
    const bin = await readFile(new URL('../../src/cli/main.ts', import.meta.url), 'utf8');
    const { CLI_NODE_FLAGS } = (await import(
      new URL('../../bench/cli-flags.mjs', import.meta.url).href
    )) as { CLI_NODE_FLAGS: string[] };
    const shebangFlags = bin.split('\n')[0]?.replace('#!/usr/bin/env -S node', '').trim();
    expect(shebangFlags).toBe(CLI_NODE_FLAGS.join(' '));
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(pkg.scripts.start).toContain(`node ${CLI_NODE_FLAGS.join(' ')} dist/cli/main.js`);
  });
});
