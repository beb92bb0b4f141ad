/**
 * The `stride` bin in child processes: exit codes, files, Ctrl-C (a real SIGINT) then
 * `stride resume`, a second Ctrl-C, and the demo. The mock runs in this process on port 0.
 */

import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { signalTwice } from '../core/harness.js';
import { makePlan, spawnStride } from './helpers.js';

/**
 * Each test has its own mock (in this process, cheap): the tests run side by side, and what one
 * test counts at its mock (requests per case, requests in flight) is its own children's alone.
 */
const mocks: MockServer[] = [];
async function ownMock(latencyMs: number): Promise<MockServer> {
  const mock = await startMock({ port: 0, latencyMs });
  mocks.push(mock);
  return mock;
}
afterAll(async () => {
  await Promise.all(mocks.map((m) => m.close()));
});

// Independent tests (own folder, journal and mock each; the demo starts its own mock): side by
// side, the file waits for its slowest test instead of the sum of the four.
describe.concurrent('the stride bin', () => {
  it('exit codes: 1 with failures, 0 when all pass, 2 for a bad flag or plan; rerun --errors', async () => {
    const mock = await ownMock(5);
    const { dir, plan } = makePlan({ cases: ['ok', 'fail', 'ok', 'error', 'ok', 'error'] });
    const env = { MOCK_URL: mock.baseUrl };
    const failing = spawnStride(['run', plan, '--no-progress', '--db', 'j.db'], { cwd: dir, env });
    expect(await failing.exited).toBe(1);
    expect(failing.stdout()).toContain('6 cases: 3 passed, 1 failed, 2 error');
    const runId = /Run (\S+) \(cli-test\)/.exec(failing.stdout())![1]!;

    // rerun --errors sends exactly the two errored cases again, in a new run linked to it.
    const before = { ...mock.stats().byCase };
    const rerun = spawnStride(['rerun', runId, '--errors', '--db', 'j.db', '--json'], {
      cwd: dir,
      env,
    });
    expect(await rerun.exited).toBe(1);
    const after = mock.stats().byCase;
    const resent = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(resent.sort()).toEqual(['c3', 'c5']);
    expect(after.c3! - before.c3!).toBe(2); // its two attempts (500 is retried), no more
    expect(JSON.parse(rerun.stdout())).toMatchObject({ parentId: runId, total: 2, error: 2 });
    // The rerun's own folder under stride-out/, and latest pointing at it.
    const rerunId = (JSON.parse(rerun.stdout()) as { runId: string }).runId;
    for (const f of ['results.jsonl', 'results.json', 'results.csv', 'junit.xml', 'report.html']) {
      expect(existsSync(join(dir, 'stride-out', rerunId, f))).toBe(true);
    }
    expect(readlinkSync(join(dir, 'stride-out', 'latest'))).toBe(rerunId);
    // Three more children, started together (they were one after another): the two refused
    // ones exit before any run exists, the passing one adds its own run to the journal.
    const passing = spawnStride(['run', plan, '--range', '1', '--quiet', '--db', 'j.db'], {
      cwd: dir,
      env,
    });
    const badFlag = spawnStride(['run', plan, '--timeout', 'forever'], { cwd: dir, env });
    const noEnv = spawnStride(['run', plan, '--db', 'j.db'], { cwd: dir, env: {} });
    expect(await passing.exited).toBe(0);
    expect(passing.stderr()).toBe(''); // --quiet: no progress
    expect(await badFlag.exited).toBe(2);
    expect(badFlag.stderr()).toContain(
      "option '--timeout <duration>' argument 'forever' is invalid",
    );
    expect(await noEnv.exited).toBe(2);
    expect(noEnv.stderr()).toContain('MOCK_URL');
  });

  it('Ctrl-C pauses, flushes, prints the resume command and exits 130; resume finishes without re-sending a verdict', async () => {
    const slow = await startMock({ port: 0, latencyMs: 100 });
    try {
      const cases = Array.from({ length: 120 }, (_, i): 'fail' | 'ok' =>
        i % 10 === 3 ? 'fail' : 'ok',
      );
      const { dir, plan } = makePlan({ cases, concurrency: 4 });
      const env = { MOCK_URL: slow.baseUrl, CI: '1' };
      const child = spawnStride(['run', plan, '--db', 'j.db'], { cwd: dir, env });
      // Interrupt once some cases have a verdict (results.jsonl is streamed as they settle).
      const jsonl = join(dir, 'stride-out', 'latest', 'results.jsonl');
      // The limits of these polls end a hang; they decide nothing: with the load average at 30 a
      // child took over 10 s to start and reach its first answers (a 10 s limit failed there).
      await expect
        .poll(() => (existsSync(jsonl) ? readFileSync(jsonl, 'utf8').split('\n').length : 0), {
          timeout: 60_000,
          interval: 20,
        })
        .toBeGreaterThan(12);
      child.kill('SIGINT');
      expect(await child.exited).toBe(130);
      const resumeLine = /Resume with: (stride resume (\S+) --db j\.db)/.exec(child.stderr());
      expect(resumeLine, child.stderr()).not.toBeNull();
      const runId = resumeLine![2]!;
      const sentBefore = { ...slow.stats().byCase };
      const verdictsBefore = readFileSync(jsonl, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { executionId: string; metadata: { taskStatus: string } });
      const decided = verdictsBefore
        .filter((r) => r.metadata.taskStatus !== 'cancelled')
        .map((r) => r.executionId);
      expect(decided.length).toBeGreaterThan(0);
      expect(decided.length).toBeLessThan(120);

      const resumed = spawnStride(['resume', runId, '--db', 'j.db', '--json'], { cwd: dir, env });
      expect(await resumed.exited).toBe(1); // 12 cases fail on purpose
      const summary = JSON.parse(resumed.stdout()) as Record<string, unknown>;
      expect(summary).toMatchObject({
        runId,
        status: 'completed',
        total: 120,
        passed: 108,
        failed: 12,
      });
      // No case with a verdict before the interrupt reached the mock again.
      const sentAfter = slow.stats().byCase;
      for (const id of decided) expect(sentAfter[id], id).toBe(sentBefore[id]);
      // Every case reached the mock; the final JSONL has each case once.
      const final = readFileSync(jsonl, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { executionId: string }).executionId);
      expect(new Set(final).size).toBe(120);
      expect(final).toHaveLength(120);
    } finally {
      await slow.close();
    }
  });

  it('a second Ctrl-C aborts in-flight work at once and still leaves the run resumable', async () => {
    const mock = await ownMock(5);
    const { dir, plan } = makePlan({
      cases: Array.from({ length: 30 }, () => 'hang' as const),
      concurrency: 3,
      extra: '  stop_conditions: { timeout: 1h }',
    });
    const env = { MOCK_URL: mock.baseUrl, CI: '1' };
    const child = spawnStride(['run', plan, '--db', 'j.db', '--timeout', '60s'], { cwd: dir, env });
    await expect
      .poll(() => mock.stats().inFlight, { timeout: 60_000, interval: 20 })
      .toBeGreaterThanOrEqual(3);
    // Two signals, not one: a fixed pause between them lost the race under load (the grace
    // period then ended the run, not the second signal).
    await signalTwice(child, 'SIGINT');
    expect(await child.exited).toBe(130);
    expect(child.stderr()).toContain('in-flight work aborted');
    expect(child.stderr()).toMatch(/Resume with: stride resume \S+ --db j\.db/);
  });

  it('stride demo: the mock, the bundled plan, progress, summary and reports, exit 0', async () => {
    const { dir } = makePlan({ cases: ['ok'] });
    const child = spawnStride(['demo', '--cases', '60', '--latency', '20'], {
      cwd: dir,
      env: { CI: '1' },
    });
    expect(await child.exited).toBe(0);
    expect(child.stderr()).toContain(
      'Stride demo: 60 cases of support-bot-demo against the built-in mock',
    );
    expect(child.stdout()).toMatch(/60 cases: \d+ passed/);
    expect(child.stdout()).toContain('open the HTML report in a browser: file://');
    for (const f of ['results.jsonl', 'results.json', 'results.csv', 'junit.xml', 'report.html']) {
      expect(existsSync(join(dir, 'stride-out', 'latest', f)), f).toBe(true);
    }
    expect(existsSync(join(dir, '.stride', 'stride.db'))).toBe(true);
  });
});
