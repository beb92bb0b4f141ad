/**
 * Issue #20 item 1 through `stride run` in process, against the mock on a real socket: the app
 * is a Dify workflow (the mock echoes the query) and the grader the mock's `stride-grader`
 * model, whose rule passes answers that mention "refund" and garbles answers with "xyzzy".
 * Counted at the mock: one app call per case whatever the grading did.
 */

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { parseVerdict } from '../../src/plans/index.js';
import { captureIo } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({
    port: 0,
    latencyMs: 1,
    recordRequests: true,
    grader: { passWhenContains: 'refund', garbleWhenContains: 'xyzzy', failScore: 0.2 },
  });
});
afterAll(async () => {
  await mock.close();
});

const CASES = [
  {
    id: 'pass',
    inputs: { query: 'Your refund is on its way' },
    expected: { llm_rubric: 'mentions the refund' },
  },
  {
    id: 'fail',
    inputs: { query: 'No idea, sorry' },
    expected: { llm_rubric: 'mentions the refund' },
  },
  {
    id: 'garbled',
    inputs: { query: 'refund xyzzy' },
    expected: [{ contains: 'refund' }, { llm_rubric: 'mentions the refund' }],
  },
  {
    id: 'low',
    inputs: { query: 'No idea' },
    expected: { llm_rubric: { rubric: 'mentions the refund', threshold: 0.1 } },
  },
];

function planDir(grader: string[], cases: unknown[] = CASES): string {
  const dir = mkdtempSync(join(tmpdir(), 'stride-graded-'));
  writeFileSync(join(dir, 'cases.jsonl'), `${cases.map((c) => JSON.stringify(c)).join('\n')}\n`);
  writeFileSync(
    join(dir, 'plan.yaml'),
    [
      'workflow_id: graded',
      'target:',
      '  type: dify',
      `  base_url: ${mock.baseUrl}`,
      '  api_key: app-graded-test',
      '  app: workflow',
      '  response_mode: blocking',
      'cases: cases.jsonl',
      'execution_policy:',
      '  concurrency: 4',
      '  retry_policy: { max_attempts: 1 }',
      ...grader,
      '',
    ].join('\n'),
  );
  return dir;
}

/** A grader block for plans that are only validated: nothing is sent to it. */
const GRADER = ['grader:', '  base_url: http://127.0.0.1:1/v1', '  model: stride-grader'];

async function stride(args: string[]) {
  const { io, text } = captureIo({});
  const code = await main(args, io);
  return { code, ...text };
}

describe('llm_rubric through stride run (issue #20 item 1)', () => {
  it('pass, fail, threshold and an unparsable grade (an error of the grading, app called once)', async () => {
    const grader = [
      'grader:',
      `  base_url: ${mock.baseUrl}`,
      '  api_key: sk-grader-test',
      '  model: stride-grader',
      '  concurrency: 2',
      '  key: grading',
      '  retry_policy: { max_attempts: 3, backoff_seconds: 0.01 }',
    ];
    const dir = planDir(grader);
    mock.reset();
    const out = join(dir, 'out');
    const r = await stride([
      'run',
      join(dir, 'plan.yaml'),
      '--db',
      join(dir, 'j.db'),
      '--out',
      out,
      '--json',
      '--no-progress',
    ]);
    expect(r.code, r.err).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ total: 4, passed: 2, failed: 1, error: 1 });
    const report = JSON.parse(readFileSync(join(out, 'latest', 'results.json'), 'utf8')) as {
      results: {
        executionId: string;
        status: string;
        score: number | null;
        errorCode?: string;
        errorMessage?: string;
        assertions: { type: string; passed: boolean; message: string; grading?: unknown }[];
      }[];
    };
    const byId = Object.fromEntries(report.results.map((x) => [x.executionId, x]));
    expect(byId.pass).toMatchObject({ status: 'success', score: 1 });
    expect(byId.pass!.assertions[0]).toMatchObject({
      type: 'llm_rubric',
      passed: true,
      grading: { attempts: 1 },
    });
    expect(byId.fail).toMatchObject({ status: 'failed', score: 0.2 });
    expect(byId.fail!.assertions[0]!.message).toContain('does not mention "refund"');
    // Score 0.2 reaches the assertion's threshold 0.1, although the grader said fail.
    expect(byId.low).toMatchObject({ status: 'success', score: 0.2 });
    expect(byId.garbled!.status).toBe('error');
    expect(JSON.stringify(byId.garbled)).toContain('GRADE_UNPARSABLE');
    // The output and the other assertion's verdict are kept.
    expect(byId.garbled!.assertions[0]).toMatchObject({ type: 'contains', passed: true });
    // One app call per case, one grading per rubric: nothing re-sent because grading failed.
    expect(mock.stats().byEndpoint).toEqual({ workflow: 4, grade: 4 });
    // The grader's prompt carries the rubric, the input and the output; the key never leaks.
    const grading = mock.requests().find((q) => q.endpoint === 'grade')!;
    const body = grading.body as { model: string; messages: { content: string }[] };
    expect(body.model).toBe('stride-grader');
    expect(body.messages[1]!.content).toContain('<rubric>\nmentions the refund\n</rubric>');
    expect(JSON.stringify(readFileSync(join(dir, 'j.db')))).not.toContain('sk-grader-test');
  });

  it("a grader 429 is retried on the grader's own bucket; the app call is not re-sent", async () => {
    const grader = [
      'grader:',
      `  base_url: ${mock.baseUrl}`,
      '  api_key: sk-grader-test',
      '  model: stride-grader',
      '  headers: { x-mock-fault: "429", x-mock-fault-times: "1" }',
      '  retry_policy: { max_attempts: 3, backoff_seconds: 0.01 }',
    ];
    const dir = planDir(grader, [CASES[0]]);
    mock.reset();
    const r = await stride([
      'run',
      join(dir, 'plan.yaml'),
      '--db',
      join(dir, 'j.db'),
      '--out',
      join(dir, 'out'),
      '--json',
    ]);
    expect(r.code, `${r.err}${r.out}`).toBe(0);
    expect(mock.stats().byEndpoint).toEqual({ workflow: 1, grade: 2 });
    expect(mock.stats().byStatus['429']).toBe(1);
  });

  it('a rubric without a grader: validate and run exit 2 naming file, line, field and value', async () => {
    const dir = planDir([]);
    mock.reset();
    const v = await stride(['validate', join(dir, 'plan.yaml')]);
    expect(v.code).toBe(2);
    expect(v.err).toContain(
      `${join(dir, 'cases.jsonl')}:1:1: expected.llm_rubric: needs a grader: add grader:`,
    );
    const run = await stride(['run', join(dir, 'plan.yaml'), '--db', join(dir, 'j.db')]);
    expect(run.code).toBe(2);
    expect(readdirSync(dir).includes('j.db')).toBe(false);
    expect(mock.stats().requests).toBe(0);
  });

  it('a rubric threshold outside 0..1 is refused with its value', async () => {
    const dir = planDir(GRADER, [
      {
        id: 'x',
        inputs: { query: 'q' },
        expected: { llm_rubric: { rubric: 'r', threshold: 1.5 } },
      },
    ]);
    const v = await stride(['validate', join(dir, 'plan.yaml')]);
    expect(v.code).toBe(2);
    expect(v.err).toMatch(/cases\.jsonl:1:\d+: expected\.llm_rubric\.threshold: 1\.5 is invalid/);
  });
});

describe('parseVerdict', () => {
  it('reads JSON inside prose and fences, strings for pass and score, and refuses the rest', () => {
    expect(parseVerdict('{"pass": true, "score": 0.9, "reason": "ok"}')).toEqual({
      pass: true,
      score: 0.9,
      reason: 'ok',
    });
    expect(parseVerdict('Sure!\n```json\n{"pass": "yes", "score": "0.8"}\n```')).toEqual({
      pass: true,
      score: 0.8,
      reason: '',
    });
    expect(parseVerdict('{"score": 0.3, "reason": "a {brace} in \\"text\\""}')).toEqual({
      pass: false,
      score: 0.3,
      reason: 'a {brace} in "text"',
    });
    expect(parseVerdict('{"pass": false}')).toEqual({ pass: false, score: 0, reason: '' });
    expect(parseVerdict('I think it is fine')).toBeUndefined();
    expect(parseVerdict('{"score": 7}')).toBeUndefined();
    expect(parseVerdict('{"reason": "no verdict"}')).toBeUndefined();
    expect(parseVerdict('{not json} then {"pass": true}')).toEqual({
      pass: true,
      score: 1,
      reason: '',
    });
  });
});
