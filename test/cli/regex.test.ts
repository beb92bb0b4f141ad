/**
 * Issue #16 in a real child process: a regex assertion can no longer pin the event loop. The
 * catastrophic `(a+)+$` from the issue ends the case `failed` and the run `completed`; a match
 * too large for the main thread is ended by the case's timeout; a pattern the linear-time
 * engine cannot run is refused by `validate` and `run` before anything is sent or written.
 */

import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type Child, spawnStride } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 1 });
});
afterAll(async () => {
  await mock.close();
});

/** A folder with a Dify plan on the mock (which echoes the query) and its case file. */
function planWith(cases: { name: string; text: string }, policy = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'stride-regex-'));
  writeFileSync(join(dir, cases.name), cases.text);
  writeFileSync(
    join(dir, 'plan.yaml'),
    [
      'workflow_id: regex',
      'target:',
      '  type: dify',
      `  base_url: ${mock.baseUrl}`,
      '  api_key: app-regex-test',
      '  app: workflow',
      '  response_mode: blocking',
      `cases: ${cases.name}`,
      'execution_policy:',
      '  concurrency: 2',
      '  retry_policy: { max_attempts: 1 }',
      policy,
      '',
    ].join('\n'),
  );
  return dir;
}

/**
 * Waits for the child; kills it if the test ends first, so a hang cannot outlive the test (a
 * guard under the 60 s test limit, not a measure: a CLI child took over 10 s to start at load 20).
 */
async function exitOf(child: Child): Promise<number | null> {
  const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  try {
    return await child.exited;
  } finally {
    clearTimeout(killer);
  }
}

// The three tests side by side (issue #14): each waits on its own child processes, in its own
// folder, and counts only its own cases at the shared mock.
describe.concurrent('regex assertions in stride run (issue #16)', () => {
  it('expected_regex (a+)+$ against "ok:aaa...a!": the case fails, the run completes, exit 1', async ({
    expect,
  }) => {
    const dir = planWith({
      name: 'cases.csv',
      text: 'id,query,expected_regex\nc1,ok:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!,(a+)+$\nc2,ok:aaa,ok:a{3}\n',
    });
    const child = spawnStride(['run', 'plan.yaml', '--timeout', '2s', '--db', 'j.db', '--json'], {
      cwd: dir,
      env: {},
    });
    expect(await exitOf(child)).toBe(1);
    expect(JSON.parse(child.stdout())).toMatchObject({
      status: 'completed',
      total: 2,
      passed: 1,
      failed: 1,
      timeout: 0,
      error: 0,
    });
    const show = spawnStride(['runs', '--db', 'j.db'], { cwd: dir, env: {} });
    expect(await exitOf(show)).toBe(0);
    expect(show.stdout()).toMatch(/regex\s+completed/);
  });

  it('a match too large for the main thread is ended by the case timeout: the case times out, the run completes', async ({
    expect,
  }) => {
    // ~200 KB of a/b that keeps 2,000 NFA threads alive per character: ~20 s of matching, far
    // past the 1 s timeout. On the main thread the timeout could only fire after it.
    let seed = 7;
    let query = '';
    for (let i = 0; i < 200_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      query += seed & 0x10000 ? 'a' : 'b';
    }
    const line = JSON.stringify({
      id: 'big',
      inputs: { query },
      expected: { field: 'text', regex: '(?:a[ab]{999}[c-z]|b[ab]{999}[c-z])' },
    });
    const dir = planWith({ name: 'cases.jsonl', text: `${line}\n` }, '  timeout: 1s');
    const child = spawnStride(['run', 'plan.yaml', '--db', 'j.db', '--json'], {
      cwd: dir,
      env: {},
    });
    expect(await exitOf(child)).toBe(1);
    expect(JSON.parse(child.stdout())).toMatchObject({
      status: 'completed',
      total: 1,
      timeout: 1,
      failed: 0,
    });
  });

  it('validate and run refuse a backreference in expected_regex: file, line, field, value; exit 2, nothing written', async ({
    expect,
  }) => {
    const dir = planWith({
      name: 'cases.csv',
      text: 'id,query,expected_regex\nc1,hi,^hi\nc2,hi hi,(\\w+) \\1\n',
    });
    // Side by side: neither writes anything the other reads.
    const validate = spawnStride(['validate', 'plan.yaml'], { cwd: dir, env: {} });
    const run = spawnStride(['run', 'plan.yaml', '--db', 'j.db'], { cwd: dir, env: {} });
    expect(await exitOf(validate)).toBe(2);
    expect(validate.stderr()).toContain(
      'cases.csv:3:10: expected_regex: "(\\\\w+) \\\\1" is invalid, expected a regular expression in RE2 syntax (the backreference "\\1" is not supported in linear-time matching; see docs/plans.md)',
    );
    expect(await exitOf(run)).toBe(2);
    expect(run.stderr()).toContain('the backreference "\\1" is not supported');
    // Nothing sent: the mock counts its requests by query, and no other test asks these.
    expect(mock.stats().byCase.hi).toBeUndefined();
    expect(mock.stats().byCase['hi hi']).toBeUndefined();
    expect(existsSync(join(dir, 'j.db'))).toBe(false);
    expect(existsSync(join(dir, 'stride-out'))).toBe(false);
  });
});
