/**
 * Numbers that agree (issue #18 items 1 and 2), through the `stride` bin in child processes:
 * a run against an address where nothing listens, stopped by max_failures, so some cases error
 * and the rest are cancelled. Every output says the same counts, they add up to the total, every
 * file says which cases were cancelled, and the latency is over the cases that ran only.
 */

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { startMock } from '../../src/mock/index.js';
import { closedPort, makePlan, spawnStride, strideHere } from './helpers.js';

/** A number an HTML report carries as `data-testid="<id>" data-value="<n>"`. */
function htmlValue(html: string, testid: string): number | undefined {
  const m = new RegExp(`data-testid="${testid}"[^>]*data-value="([^"]*)"`).exec(html);
  return m === null ? undefined : Number(m[1]);
}

// The two tests share nothing (own folder, journal, and address each): side by side.
describe.concurrent('cancelled cases and the numbers every output gives', () => {
  it('errored and cancelled cases: every output agrees, adds up to the total, and says which were cancelled; latency over the cases that ran', async () => {
    const port = await closedPort();
    const { dir, plan } = makePlan({
      cases: Array.from({ length: 20 }, () => 'ok' as const),
      concurrency: 2,
      extra: '  stop_conditions: { max_failures: 5 }',
    });
    const env = { MOCK_URL: `http://127.0.0.1:${port}` };
    const db = join(dir, 'j.db');

    const json = spawnStride(['run', plan, '--json', '--no-progress', '--db', db], {
      cwd: dir,
      env,
    });
    expect(await json.exited).toBe(1);
    const s = JSON.parse(json.stdout()) as Record<string, unknown> & {
      total: number;
      passed: number;
      failed: number;
      timeout: number;
      error: number;
      cancelled: number;
      runId: string;
      latencySeconds: { count: number };
    };
    expect(s.total).toBe(20);
    expect(s.cancelled).toBeGreaterThan(0);
    expect(s.error).toBeGreaterThanOrEqual(5);
    // The five counts are disjoint and add up.
    expect(s.passed + s.failed + s.timeout + s.error + s.cancelled).toBe(s.total);
    // Latency over the cases that ran to a verdict, not the cancelled ones.
    expect(s.latencySeconds.count).toBe(s.total - s.cancelled);

    const out = join(dir, 'stride-out', s.runId);
    // results.jsonl: status stays the seeds' `error`; `cancelled` and the reason beside it.
    const lines = readFileSync(join(out, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(20);
    const cancelledLines = lines.filter((l) => l.cancelled === true);
    expect(cancelledLines).toHaveLength(s.cancelled);
    for (const l of cancelledLines) {
      expect(l.status).toBe('error');
      expect(l.cancelReason).toBe('stop_rule:max_failures');
    }
    expect(lines.filter((l) => l.status === 'error' && l.cancelled === false)).toHaveLength(
      s.error,
    );

    // results.json: the same summary counts and the same per-case fields.
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      summary: { total: number; counts: Record<string, number>; cancelled: number };
      results: Record<string, unknown>[];
    };
    expect(doc.summary.counts).toEqual({
      success: s.passed,
      failed: s.failed,
      timeout: s.timeout,
      error: s.error,
    });
    expect(doc.summary.cancelled).toBe(s.cancelled);
    expect(doc.results.filter((r) => r.cancelled === true)).toHaveLength(s.cancelled);

    // results.csv: status, task_status and the cancel reason side by side.
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\r\n');
    const header = csv[0]!.split(',');
    const at = (name: string) => header.indexOf(name);
    expect(at('task_status')).toBe(at('status') + 1);
    expect(at('cancel_reason')).toBe(at('task_status') + 1);
    const rows = csv.slice(1).map((r) => r.split(','));
    const csvCancelled = rows.filter((r) => r[at('task_status')] === 'cancelled');
    expect(csvCancelled).toHaveLength(s.cancelled);
    expect(csvCancelled.every((r) => r[at('cancel_reason')] === 'stop_rule:max_failures')).toBe(
      true,
    );

    // junit.xml: errors and skipped (the cancelled) add up with failures to the tests.
    const junit = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(
      readFileSync(join(out, 'junit.xml'), 'utf8'),
    );
    expect(junit.testsuites).toMatchObject({
      tests: '20',
      failures: String(s.failed),
      errors: String(s.error + s.timeout),
      skipped: String(s.cancelled),
    });

    // report.html: the cards and the latency note say the same.
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(htmlValue(html, 'errors')).toBe(s.error);
    expect(htmlValue(html, 'cancelled')).toBe(s.cancelled);
    expect(htmlValue(html, 'failure-count')).toBe(s.error + s.failed + s.timeout);
    expect(htmlValue(html, 'latency-count')).toBe(s.total - s.cancelled);

    // The terminal summary (a second run of the same plan: the same split, as the stop rule
    // decides it) and `stride show` / `stride runs` for the first run. The three children start
    // together (they ran one after another): the second run journals into its own file, so the
    // two readers see the first run alone whenever they read.
    // `show` and `runs` only read the journal: in this process (strideHere); the run is a child.
    const show = strideHere(['show', s.runId, '--db', db]);
    const runs = strideHere(['runs', '--db', db]);
    const text = spawnStride(
      ['run', plan, '--no-progress', '--db', join(dir, 'j2.db'), '--out', 'o2'],
      { cwd: dir, env },
    );
    const shown = await show;
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(
      `cases      20: 0 succeeded, 0 failed, 0 timeout, ${s.error} error, ${s.cancelled} cancelled`,
    );
    const listed = await runs;
    expect(listed.code).toBe(0);
    const [head, row] = listed.out.trim().split('\n');
    const cells = row!.split(/\s{2,}/);
    const col = (name: string) => head!.split(/\s{2,}/).indexOf(name);
    expect(cells[col('ERROR')]).toBe(String(s.error + s.timeout));
    expect(cells[col('CANCELLED')]).toBe(String(s.cancelled));

    expect(await text.exited).toBe(1);
    const verdict =
      /20 cases: (\d+) passed, (\d+) failed, (\d+) error, (\d+) timeout, (\d+) cancelled/.exec(
        text.stdout(),
      );
    expect(verdict).not.toBeNull();
    const [p, f, e, t, c] = verdict!.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ];
    expect(p + f + e + t + c).toBe(20);
    expect(text.stdout()).toMatch(
      new RegExp(
        `latency .* \\(over ${20 - c} case\\(s\\) that ran; ${c} cancelled or not run left out\\)`,
      ),
    );
  });
});

describe.concurrent('unknown cost is not free (issue #18 item 6)', () => {
  it('an OpenAI target without prices and a blocking Dify workflow: cost_below fails saying no price is known; every output says cost unknown, never 0', async () => {
    const mock = await startMock({ port: 0, latencyMs: 1 });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'stride-cost-'));
      // A folder per plan, each with its own journal (.stride/ under it): the two are judged
      // side by side below and never share a file.
      for (const sub of ['openai', 'dify']) mkdirSync(join(dir, sub));
      const cases = [
        'cases:',
        '  - id: a',
        '    inputs: { query: hello }',
        '    expected: { field: text, contains: hello, cost_below: 0.01 }',
        '  - id: b',
        '    inputs: { query: hello again }',
        '    expected: { field: text, contains: hello }',
      ];
      writeFileSync(
        join(dir, 'openai', 'openai.yaml'),
        [
          'workflow_id: unpriced-openai',
          'target:',
          '  type: openai',
          `  base_url: ${mock.baseUrl}`,
          '  api_key: sk-test',
          '  model: gpt-4o-mini',
          ...cases,
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'dify', 'dify.yaml'),
        [
          'workflow_id: unpriced-dify',
          'target:',
          '  type: dify',
          `  base_url: ${mock.baseUrl}`,
          '  api_key: app-test',
          '  app: workflow',
          '  response_mode: blocking',
          ...cases.map((l) => l.replace('field: text, ', '')),
          '',
        ].join('\n'),
      );
      const judge = async (plan: string) => {
        const base = `out-${plan}`;
        const cwd = join(dir, plan.replace('.yaml', ''));
        const child = spawnStride(['run', plan, '--json', '--no-progress', '--out', base], {
          cwd,
          env: {},
        });
        expect(await child.exited, child.stderr()).toBe(1);
        const s = JSON.parse(child.stdout()) as Record<string, unknown>;
        // b passes on its text; a fails only on its cost_below, which has no price to compare.
        expect(s, plan).toMatchObject({ total: 2, passed: 1, failed: 1 });
        expect(s.tokens as number).toBeGreaterThan(0);
        expect(s).toMatchObject({ cost: null, costUnknownCases: 2, costPartial: 0 });
        const out = join(base, s.runId as string);

        const lines = readFileSync(join(cwd, out, 'results.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map(
            (l) =>
              JSON.parse(l) as {
                executionId: string;
                cost: unknown;
                assertions: { type: string; passed: boolean; message: string }[];
              },
          );
        expect(lines.map((l) => l.cost)).toEqual([null, null]);
        const a = lines.find((l) => l.executionId === 'a')!;
        const costCheck = a.assertions.find((x) => x.type === 'cost_below')!;
        expect(costCheck.passed).toBe(false);
        expect(costCheck.message).toMatch(/^cost unknown: no price is known/);

        const doc = JSON.parse(readFileSync(join(cwd, out, 'results.json'), 'utf8'));
        expect(doc.summary).toMatchObject({ costUnknown: 2 });
        const csv = readFileSync(join(cwd, out, 'results.csv'), 'utf8')
          .trim()
          .split('\r\n');
        const col = csv[0]!.split(',').indexOf('cost');
        expect(csv.slice(1).map((r) => r.split(',')[col])).toEqual(['', '']);
        const html = readFileSync(join(cwd, out, 'report.html'), 'utf8');
        expect(html).toMatch(/data-testid="cost" data-value="">unknown</);
        expect(html).toContain('no price known for 2 of 2 cases');

        const text = spawnStride(['run', plan, '--no-progress', '--out', `${base}-2`], {
          cwd,
          env: {},
        });
        // the stored run's faces say it too: `stride show` (beside the second run) and the
        // plan's trend (after it: it lists both runs)
        // (`show` and `runs` in this process, strideHere: they only read the journal)
        const db = join(cwd, '.stride', 'stride.db');
        const show = await strideHere(['show', s.runId as string, '--db', db]);
        expect(await text.exited).toBe(1);
        expect(text.stdout()).toContain('cost unknown (no price known for any of the 2 cases)');
        expect(show.code).toBe(0);
        expect(show.out).toMatch(
          /^usage .* · cost unknown \(no price known for any of the 2 cases\)$/m,
        );
        const workflow = plan === 'openai.yaml' ? 'unpriced-openai' : 'unpriced-dify';
        const [runs, trend] = await Promise.all([
          strideHere(['runs', '--plan', workflow, '--db', db]),
          strideHere(['runs', '--plan', workflow, '--db', db, '--json']),
        ]);
        expect(runs.code).toBe(0);
        const [head, ...rows] = runs.out.trim().split('\n\n')[0]!.split('\n');
        const costCol = head!.split(/\s{2,}/).indexOf('COST');
        expect(rows.map((r) => r.split(/\s{2,}/)[costCol])).toEqual(['unknown', 'unknown']);
        expect(trend.code).toBe(0);
        expect(JSON.parse(trend.out)).toMatchObject([{ costUnknown: 2 }, { costUnknown: 2 }]);
      };
      await Promise.all(['openai.yaml', 'dify.yaml'].map(judge));
    } finally {
      await mock.close();
    }
  });
});
