/**
 * Issue #20 through `stride` in process, against the mock on a real socket (it echoes the
 * query): weights and a case threshold decide verdicts, a code check runs on a worker thread and
 * a spinning one ends with its case's timeout, scores reach the JSON report, the summary (mean
 * per dataset) and the comparison (mean delta, per case); a missing export is refused by
 * `validate` and `run` with exit 2 before anything is sent.
 */

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { captureIo } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 1 });
});
afterAll(async () => {
  await mock.close();
});

const CHECKS = [
  'export function half() { return 0.5; }',
  'export function spin() { for (;;) {} }',
  '',
].join('\n');

/** Cases: `a` scores 0.75 with weights 3:1 (threshold 0.7 passes), `b` the same under 0.8. */
function cases(weightA: number): string {
  const q = (id: string, ds: string, query: string, rest: Record<string, unknown>) =>
    JSON.stringify({ id, dataset: ds, inputs: { query }, ...rest });
  return [
    q('a', 'graded', 'Refund issued', {
      threshold: 0.7,
      expected: [
        { field: 'text', starts_with: 'Refund', weight: weightA },
        { field: 'text', contains: 'never said' },
      ],
    }),
    q('b', 'graded', 'Refund issued', {
      threshold: 0.8,
      expected: [
        { field: 'text', starts_with: 'Refund', weight: 3 },
        { field: 'text', contains: 'never said' },
      ],
    }),
    q('c', 'code', 'hello', { expected: { assert_module: './checks.mjs#half' } }),
    q('d', 'code', 'hello', { timeout: '1s', expected: { assert_module: './checks.mjs#spin' } }),
    '',
  ].join('\n');
}

function planDir(checks = CHECKS): string {
  const dir = mkdtempSync(join(tmpdir(), 'stride-scored-'));
  writeFileSync(join(dir, 'checks.mjs'), checks);
  writeFileSync(join(dir, 'cases.jsonl'), cases(3));
  writeFileSync(
    join(dir, 'plan.yaml'),
    [
      'workflow_id: scored',
      'target:',
      '  type: dify',
      `  base_url: ${mock.baseUrl}`,
      '  api_key: app-scored-test',
      '  app: workflow',
      '  response_mode: blocking',
      'cases: cases.jsonl',
      'execution_policy:',
      '  concurrency: 4',
      '  retry_policy: { max_attempts: 1 }',
      '',
    ].join('\n'),
  );
  return dir;
}

async function stride(args: string[]) {
  const { io, text } = captureIo({});
  const code = await main(args, io);
  return { code, ...text };
}

describe('scores in stride run, the reports and compare (issue #20)', () => {
  it('weights and thresholds decide; a spinning code check ends with its case; scores everywhere', async () => {
    const dir = planDir();
    const db = join(dir, 'j.db');
    const out = join(dir, 'out');
    const first = await stride([
      'run',
      join(dir, 'plan.yaml'),
      '--db',
      db,
      '--out',
      out,
      '--json',
      '--no-progress',
    ]);
    expect(first.code, first.err).toBe(1);
    const summary = JSON.parse(first.out) as Record<string, unknown>;
    expect(summary).toMatchObject({ total: 4, passed: 2, failed: 1, timeout: 1 });

    const report = JSON.parse(readFileSync(join(out, 'latest', 'results.json'), 'utf8')) as {
      summary: {
        meanScore: number;
        scored: number;
        datasets: { name: string; meanScore: number | null }[];
      };
      results: { executionId: string; status: string; score: number | null }[];
    };
    const byId = Object.fromEntries(report.results.map((r) => [r.executionId, r]));
    expect(byId.a).toMatchObject({ status: 'success', score: 0.75 });
    expect(byId.b).toMatchObject({ status: 'failed', score: 0.75 });
    expect(byId.c).toMatchObject({ status: 'success', score: 0.5 });
    // The spinning check was ended by the case's 1 s timeout: no verdict, no score.
    expect(byId.d).toMatchObject({ status: 'timeout', score: null });
    expect(report.summary.scored).toBe(3);
    expect(report.summary.meanScore).toBeCloseTo((0.75 + 0.75 + 0.5) / 3, 10);
    expect(Object.fromEntries(report.summary.datasets.map((d) => [d.name, d.meanScore]))).toEqual({
      code: 0.5,
      graded: 0.75,
    });

    // Head: case a's first assertion weighs 1, not 3: score 0.5 under its 0.7 threshold.
    writeFileSync(join(dir, 'cases.jsonl'), cases(1));
    const second = await stride([
      'run',
      join(dir, 'plan.yaml'),
      '--db',
      db,
      '--json',
      '--no-progress',
    ]);
    expect(second.code, second.err).toBe(1);
    const cmp = await stride([
      'compare',
      'latest~1',
      'latest',
      '--plan',
      'scored',
      '--db',
      db,
      '--json',
    ]);
    expect(cmp.code, cmp.err).toBe(0);
    const c = JSON.parse(cmp.out) as {
      summary: {
        base: { mean_score: number };
        head: { mean_score: number };
        delta: { mean_score: number };
        datasets: { name: string; delta_mean_score: number | null }[];
      };
      regressions: {
        id: string;
        base: { score: number };
        head: { score: number };
        delta_score: number;
      }[];
    };
    expect(c.summary.base.mean_score).toBeCloseTo(2 / 3, 10);
    expect(c.summary.head.mean_score).toBeCloseTo(1.75 / 3, 10);
    expect(c.summary.delta.mean_score).toBeCloseTo(-0.25 / 3, 10);
    expect(Object.fromEntries(c.summary.datasets.map((d) => [d.name, d.delta_mean_score]))).toEqual(
      { code: 0, graded: -0.125 },
    );
    expect(c.regressions.map((r) => [r.id, r.base.score, r.head.score, r.delta_score])).toEqual([
      ['a', 0.75, 0.5, -0.25],
    ]);
    const text = await stride(['compare', 'latest~1', 'latest', '--plan', 'scored', '--db', db]);
    expect(text.out).toMatch(/mean score {2}0\.667 → 0\.583 \(−0\.083\)/);
  });

  it('a missing export: validate and run exit 2 naming the file, line, field and value; nothing runs', async () => {
    const dir = planDir('export function half() { return 0.5; }\n');
    const before = mock.stats().requests;
    const validate = await stride(['validate', join(dir, 'plan.yaml')]);
    expect(validate.code).toBe(2);
    expect(validate.err).toContain(
      `${join(dir, 'cases.jsonl')}:4:1: expected.assert_module: "./checks.mjs#spin" is invalid: the module has no export "spin"`,
    );
    const run = await stride([
      'run',
      join(dir, 'plan.yaml'),
      '--db',
      join(dir, 'j.db'),
      '--no-progress',
    ]);
    expect(run.code).toBe(2);
    expect(run.err).toContain('the module has no export "spin"');
    expect(readdirSync(dir).includes('j.db')).toBe(false);
    expect(mock.stats().requests).toBe(before);
  });
});
