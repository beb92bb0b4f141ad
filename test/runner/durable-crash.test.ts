/**
 * Real crash tests: a child process runs a 1,000-case plan against the mock, journaled into a
 * SQLite file, and is killed with SIGKILL at a random moment; the run is then resumed in this
 * process. Every case must end with exactly one terminal result, no case with a stored verdict
 * may reach the mock again, and nothing may be lost.
 *
 * The child is plain JS on the built `dist/` (a child cannot run .ts without a loader): the
 * build runs once in `beforeAll`.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/core/faces.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { loadPlan } from '../../src/plans/index.js';
import { resume } from '../../src/runner/durable.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { SqliteStore } from '../../src/store/index.js';
import { tempDir } from '../store/helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./crash-child.mjs', import.meta.url));
const CASES = 1_000;
const TRIALS = 10;
const KEY = 'app-crash-test';

let mock: MockServer;
let planPath: string;

beforeAll(async () => {
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
  mock = await startMock({ apiKeys: [KEY], latencyMs: { min: 5, max: 20 } });
  const dir = tempDir();
  const lines = Array.from({ length: CASES }, (_, i) =>
    JSON.stringify({ id: `k${i}`, inputs: { query: `k${i}` } }),
  );
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
  planPath = join(dir, 'plan.yaml');
  writeFileSync(
    planPath,
    [
      'workflow_id: crash-test',
      'target:',
      '  type: dify',
      `  base_url: ${mock.baseUrl}`,
      `  api_key: ${KEY}`,
      '  app: workflow',
      '  response_mode: blocking',
      'cases: cases.jsonl',
      'execution_policy:',
      '  concurrency: 16',
      '  retry_policy: { max_attempts: 3, backoff_seconds: 0.05 }',
      '',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await mock?.close();
});

/** Cases with a stored terminal result, read from the file as another process would. */
function storedTotal(db: string, runId: string): number {
  let conn: Database.Database | undefined;
  try {
    conn = new Database(db, { readonly: true, fileMustExist: true });
    const row = conn
      .prepare(
        'SELECT succeeded + failed + timeout + cancelled + error AS n FROM runs WHERE id = ?',
      )
      .get(runId) as { n: number } | undefined;
    return row?.n ?? 0;
  } catch {
    return 0; // not created yet
  } finally {
    conn?.close();
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

interface TrialFigures {
  killedAt: number;
  storedBefore: number;
  maybeSent: number;
  resent: number;
}

const figures: TrialFigures[] = [];

afterAll(() => {
  // The figures docs/store.md quotes.
  const total = (k: keyof TrialFigures) => figures.reduce((s, f) => s + f[k], 0);
  console.log(
    `crash trials: ${figures.length}; stored verdicts at the kill ${figures.map((f) => f.storedBefore).join(',')}; ` +
      `maybe-sent ${total('maybeSent')}; re-sent after resume ${total('resent')}`,
  );
});

describe('kill -9 at a random moment, then resume', () => {
  test(`${TRIALS} trials: exactly one terminal result per case, no verdict sent twice, nothing lost`, async () => {
    const random = seededRandom(Date.now() % 1_000_000);
    const manifest = await loadPlan(planPath);
    for (let trial = 0; trial < TRIALS; trial++) {
      mock.reset();
      const db = join(tempDir(), 'stride.db');
      const runId = `crash-${trial}`;
      // Kill once between 2% and 80% of the cases have a stored result.
      const killAt = Math.floor(CASES * (0.02 + random() * 0.78));
      const child = spawn(process.execPath, [CHILD, db, planPath, 'run', runId], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d) => {
        stderr += String(d);
      });
      const deadline = Date.now() + 15_000;
      while (storedTotal(db, runId) < killAt && child.exitCode === null) {
        if (Date.now() > deadline) throw new Error(`the child made no progress: ${stderr}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(child.exitCode, stderr).toBeNull(); // killed before it finished
      child.kill('SIGKILL');
      await exited(child);
      const before = { ...mock.stats().byCase };

      const store = new SqliteStore({ path: db });
      try {
        const stored = new Set<string>();
        for await (const r of store.results(runId)) {
          expect(r.status).toBe('succeeded');
          stored.add(r.id);
        }
        const state = await store.loadRun(runId);
        const maybeSent = state?.unfinished.filter((u) => u.maybeSent).map((u) => u.caseId) ?? [];

        const resumed = await resume(new ExecutorService(), manifest, store, runId);
        const after = mock.stats().byCase;

        // Nothing lost, every case exactly once, every one a verdict.
        expect(resumed.results).toHaveLength(CASES);
        const perCase = new Map<string, number>();
        for await (const r of store.results(runId)) perCase.set(r.id, (perCase.get(r.id) ?? 0) + 1);
        expect(perCase.size).toBe(CASES);
        expect([...perCase.values()].every((n) => n === 1)).toBe(true);
        expect(resumed.results.every((r) => r.status === 'success')).toBe(true);
        // No stored verdict reached the mock again.
        for (const id of stored) expect(after[id], id).toBe(before[id]);
        // Every case reached the mock at least once; the maybe-sent ones are recorded as such.
        for (let i = 0; i < CASES; i++) expect(after[`k${i}`] ?? 0).toBeGreaterThanOrEqual(1);
        let maybeSentStored = 0;
        for await (const a of store.attempts(runId))
          if (a.state === 'maybe_sent') maybeSentStored++;
        expect(maybeSentStored).toBe(maybeSent.length);
        const run = await store.getRun(runId);
        expect(run?.status).toBe('completed');
        expect(run?.resumes).toBe(1);
        figures.push({
          killedAt: killAt,
          storedBefore: stored.size,
          maybeSent: maybeSent.length,
          resent: [...perCase.keys()].filter((id) => !stored.has(id) && (before[id] ?? 0) > 0)
            .length,
        });
      } finally {
        await store.close();
      }
    }
  }, 60_000);
});
