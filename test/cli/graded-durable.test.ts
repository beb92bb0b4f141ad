/**
 * Durable grading (issue #20 item 5) with a real child process killed with SIGKILL while some of
 * its gradings are in flight. The mock's grader never answers gradings of outputs that say
 * "slow" (`hangWhenContains`), so the kill lands while exactly those are being graded: no timing
 * race. The resume runs against a fresh mock on the same port, which counts what it is sent: no
 * app call (the answers were journaled before grading), and one grading per cut case only (the
 * graded cases keep their verdicts).
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { captureIo, spawnStride } from './helpers.js';

const mocks: MockServer[] = [];
afterEach(async () => {
  for (const m of mocks.splice(0)) await m.close();
});

const CASES = [
  ...[1, 2, 3, 4].map((i) => ({
    id: `quick-${i}`,
    inputs: { query: `Your refund ${i} is on its way` },
    expected: { llm_rubric: 'mentions the refund' },
  })),
  ...[1, 2].map((i) => ({
    id: `slow-${i}`,
    inputs: { query: `Your refund ${i} is slow` },
    expected: [{ contains: 'refund' }, { llm_rubric: 'mentions the refund' }],
  })),
];

function writePlan(dir: string, baseUrl: string): string {
  writeFileSync(join(dir, 'cases.jsonl'), `${CASES.map((c) => JSON.stringify(c)).join('\n')}\n`);
  const plan = join(dir, 'plan.yaml');
  writeFileSync(
    plan,
    [
      'workflow_id: graded-durable',
      'target:',
      '  type: dify',
      `  base_url: ${baseUrl}`,
      '  api_key: app-graded-durable',
      '  app: workflow',
      '  response_mode: blocking',
      'cases: cases.jsonl',
      'execution_policy:',
      '  concurrency: 4',
      'grader:',
      `  base_url: ${baseUrl}`,
      '  api_key: sk-grader-durable',
      '  model: stride-grader',
      '  concurrency: 4',
      '',
    ].join('\n'),
  );
  return plan;
}

async function until(what: string, check: () => boolean, child: { stderr: () => string }) {
  // A condition the child's own work makes true; the bound only turns a hang into a message.
  const limit = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > limit) throw new Error(`timed out waiting for ${what}: ${child.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function count(db: string, sql: string): number {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return (d.prepare(sql).get() as { n: number }).n;
  } catch {
    return -1; // the schema is not there yet
  } finally {
    d.close();
  }
}

describe('durable grading: kill -9 mid-grading, then resume (issue #20 item 5)', () => {
  it('sends no app call again and grades again only the cases whose grading was cut', async () => {
    const first = await startMock({
      port: 0,
      latencyMs: 1,
      grader: { passWhenContains: 'refund', hangWhenContains: 'slow' },
    });
    mocks.push(first);
    const port = Number(new URL(first.baseUrl).port);
    const dir = mkdtempSync(join(tmpdir(), 'stride-graded-kill-'));
    const plan = writePlan(dir, first.baseUrl);
    const db = join(dir, 'j.db');
    const child = spawnStride(['run', plan, '--db', db, '--no-progress', '--quiet'], {
      cwd: dir,
      env: {},
    });
    // A failed wait must not leave the child blocked on its hung gradings.
    onTestFinished(() => child.kill('SIGKILL'));
    // Every app call answered and every grading sent; the four quick ones judged and on disk.
    await until(
      'the app calls and gradings',
      () => {
        const s = first.stats().byEndpoint;
        return s.workflow === 6 && s.grade === 6;
      },
      { stderr: () => `${child.stderr()} ${JSON.stringify(first.stats().byEndpoint)}` },
    );
    await until(
      'four verdicts in the journal',
      () => count(db, 'SELECT count(*) AS n FROM results') === 4,
      child,
    );
    expect(count(db, 'SELECT count(*) AS n FROM run_answers')).toBe(6);
    child.kill('SIGKILL');
    expect(await child.exited).toBe(128);
    const runId = (() => {
      const d = new Database(db, { readonly: true });
      try {
        return (d.prepare('SELECT id FROM runs').get() as { id: string }).id;
      } finally {
        d.close();
      }
    })();
    await first.close();
    mocks.splice(0);

    // The same address, a grader that answers now; its counts are the resume's only.
    const second = await startMock({ port, latencyMs: 1, grader: { passWhenContains: 'refund' } });
    mocks.push(second);
    const { io, text } = captureIo({});
    const code = await main(['resume', runId, '--db', db, '--json', '--no-progress'], io);
    expect(code, text.err).toBe(0);
    expect(JSON.parse(text.out)).toMatchObject({ total: 6, passed: 6 });
    expect(second.stats().byEndpoint).toEqual({ grade: 2 });
    const d = new Database(db, { readonly: true });
    try {
      const rows = d
        .prepare("SELECT case_id AS id, status FROM results WHERE case_id LIKE 'slow-%'")
        .all() as { id: string; status: string }[];
      expect(rows.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
        { id: 'slow-1', status: 'succeeded' },
        { id: 'slow-2', status: 'succeeded' },
      ]);
    } finally {
      d.close();
    }
  });
});
