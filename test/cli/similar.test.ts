/**
 * Issue #20 item 2, `similar: { value, threshold }`, through `stride run` in process against the
 * mock on a real socket: the app is a Dify workflow whose answer is the case's `__output`, the
 * embeddings the mock's deterministic `/v1/embeddings` (vectors from a hash of the words, so
 * equal texts score 1 and unrelated ones low). Counted at the mock: each distinct text is
 * embedded once per run, so an expected value shared by several cases is sent once.
 */

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { cosineSimilarity } from '../../src/plans/index.js';
import { captureIo } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 1, recordRequests: true });
});
afterAll(async () => {
  await mock.close();
});

const EXPECTED = 'Your refund will arrive within five days';
const UNRELATED = 'Quantum chromodynamics describes gluons binding quarks';
const OTHER = 'Penguins waddle across Antarctic ice sheets';

function answer(id: string, output: string, similar: unknown) {
  return { id, inputs: { query: id, __output: output }, expected: { field: 'text', similar } };
}

const CASES = [
  answer('same', EXPECTED, EXPECTED),
  answer('unrelated', UNRELATED, { value: EXPECTED }),
  // The edges: a score equal to the threshold passes (1 >= 1; anything >= 0).
  answer('edge-one', EXPECTED, { value: EXPECTED, threshold: 1 }),
  answer('edge-zero', OTHER, { value: EXPECTED, threshold: 0 }),
];

function planDir(grader: string[], cases: unknown[] = CASES): string {
  const dir = mkdtempSync(join(tmpdir(), 'stride-similar-'));
  writeFileSync(join(dir, 'cases.jsonl'), `${cases.map((c) => JSON.stringify(c)).join('\n')}\n`);
  writeFileSync(
    join(dir, 'plan.yaml'),
    [
      'workflow_id: similar',
      'target:',
      '  type: dify',
      `  base_url: ${mock.baseUrl}`,
      '  api_key: app-similar-test',
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

function grader(extra: string[] = []): string[] {
  return [
    'grader:',
    `  base_url: ${mock.baseUrl}`,
    '  api_key: sk-embed-test',
    '  model: stride-grader',
    '  embedding_model: text-embedding-3-small',
    '  key: grading',
    '  retry_policy: { max_attempts: 3, backoff_seconds: 0.01 }',
    ...extra,
  ];
}

async function stride(args: string[]) {
  const { io, text } = captureIo({});
  const code = await main(args, io);
  return { code, ...text };
}

interface Report {
  results: {
    executionId: string;
    status: string;
    score: number | null;
    errorCode?: string;
    assertions: {
      type: string;
      passed: boolean;
      score?: number;
      message: string;
      grading?: { attempts: number; tokens?: number };
    }[];
  }[];
}

async function run(dir: string): Promise<{ code: number; report: Report; err: string }> {
  const out = join(dir, 'out');
  const r = await stride([
    'run',
    join(dir, 'plan.yaml'),
    '--db',
    join(dir, 'j.db'),
    '--out',
    out,
    '--report',
    'json',
    '--json',
  ]);
  const report = JSON.parse(readFileSync(join(out, 'latest', 'results.json'), 'utf8')) as Report;
  return { code: r.code, report, err: `${r.err}${r.out}` };
}

describe('similar through stride run (issue #20 item 2)', () => {
  it('equal texts pass with 1, unrelated fail, the threshold edges pass; each text embedded once per run', async () => {
    const dir = planDir(grader());
    mock.reset();
    const { code, report, err } = await run(dir);
    expect(code, err).toBe(1); // `unrelated` fails
    const byId = Object.fromEntries(report.results.map((x) => [x.executionId, x]));
    const similar = (id: string) => byId[id]!.assertions[0]!;
    expect(byId.same).toMatchObject({ status: 'success', score: 1 });
    expect(similar('same')).toMatchObject({ type: 'similar', passed: true, score: 1 });
    expect(similar('same').message).toBe('similarity 1 >= threshold 0.8');
    expect(byId.unrelated!.status).toBe('failed');
    expect(similar('unrelated').passed).toBe(false);
    expect(similar('unrelated').score!).toBeLessThan(0.3);
    expect(similar('unrelated').message).toMatch(/^similarity 0(\.\d+)? < threshold 0\.8$/);
    expect(byId['edge-one']).toMatchObject({ status: 'success', score: 1 });
    expect(byId['edge-zero']!.status).toBe('success');
    // The score is the cosine of the mock's own vectors for the two texts.
    const vectors = new Map<string, number[]>();
    for (const q of mock.requests().filter((r) => r.endpoint === 'embeddings')) {
      const body = q.body as { model: string; input: string };
      expect(body.model).toBe('text-embedding-3-small');
      vectors.set(body.input, []);
    }
    // Three distinct texts (EXPECTED, shared by four cases and two outputs; UNRELATED; OTHER):
    // three embeddings calls, not eight (two per case).
    expect([...vectors.keys()].sort()).toEqual([EXPECTED, OTHER, UNRELATED].sort());
    expect(mock.stats().byEndpoint).toEqual({ workflow: 4, embeddings: 3 });
    // The calls' usage is on the assertion that made them; a shared one costs nothing again.
    const attempts = report.results.reduce(
      (n, r) => n + (r.assertions[0]!.grading?.attempts ?? 0),
      0,
    );
    expect(attempts).toBe(3);
    expect(JSON.stringify(readFileSync(join(dir, 'j.db')))).not.toContain('sk-embed-test');
  });

  it("a 429 on embeddings is retried on the grader's bucket; the app call is not re-sent", async () => {
    const dir = planDir(grader(['  headers: { x-mock-fault: "429", x-mock-fault-times: "1" }']), [
      CASES[1],
    ]);
    mock.reset();
    const { code, report, err } = await run(dir);
    expect(code, err).toBe(1); // judged: unrelated fails on its score, not on the 429
    expect(report.results[0]).toMatchObject({ status: 'failed' });
    expect(report.results[0]!.errorCode).toBeUndefined();
    // Two texts, each refused once and then answered: 4 embeddings requests, 1 app call.
    expect(mock.stats().byEndpoint).toEqual({ workflow: 1, embeddings: 4 });
    expect(mock.stats().byStatus['429']).toBe(2);
    expect(report.results[0]!.assertions[0]!.grading?.attempts).toBe(4);
  });

  it('a threshold outside 0..1 and a similar without a grader: validate and run exit 2 naming file, line, field and value', async () => {
    const bad = planDir(grader(), [
      { id: 'x', inputs: { query: 'q' }, expected: { similar: { value: 'v', threshold: 1.2 } } },
    ]);
    mock.reset();
    for (const command of ['validate', 'run']) {
      const db = command === 'run' ? ['--db', join(bad, 'j.db')] : [];
      const r = await stride([command, join(bad, 'plan.yaml'), ...db]);
      expect(r.code, command).toBe(2);
      expect(r.err).toMatch(
        /cases\.jsonl:1:\d+: expected\.similar\.threshold: 1\.2 is invalid, expected a number from 0 to 1/,
      );
    }
    const none = planDir([], [{ id: 'y', inputs: { query: 'q' }, expected: { similar: 'v' } }]);
    for (const command of ['validate', 'run']) {
      const db = command === 'run' ? ['--db', join(none, 'j.db')] : [];
      const r = await stride([command, join(none, 'plan.yaml'), ...db]);
      expect(r.code, command).toBe(2);
      expect(r.err).toContain(
        `${join(none, 'cases.jsonl')}:1:1: expected.similar: needs a grader: add grader:`,
      );
      expect(r.err).toContain('its value: "v"');
    }
    expect(readdirSync(bad).includes('j.db')).toBe(false);
    expect(readdirSync(none).includes('j.db')).toBe(false);
    expect(mock.stats().requests).toBe(0);
  });
});

describe('cosineSimilarity', () => {
  it('is 1 for equal directions, 0 for orthogonal or zero vectors, -1 for opposed', () => {
    expect(cosineSimilarity([3, 4], [6, 8])).toBeCloseTo(1, 12);
    expect(cosineSimilarity([1, 0], [0, 2])).toBe(0);
    expect(cosineSimilarity([0, 0], [1, 1])).toBe(0);
    expect(cosineSimilarity([1, 2], [-1, -2])).toBeCloseTo(-1, 12);
    expect(() => cosineSimilarity([1], [1, 2])).toThrow('different lengths');
  });
});
