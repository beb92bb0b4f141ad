// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
/** The API key of a journaled run appears nowhere in the database's bytes (main file, WAL). */

import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { RateLimitedError, TaskFailedError } from '../../src/core/index.js';
import { parsePlan } from '../../src/plans/index.js';
import { ExecutorService, runOptionsFor } from '../../src/runner/executor-service.js';
import { snapshotPlan } from '../../src/runner/snapshot.js';
import { attachJournal, SqliteStore } from '../../src/store/index.js';
import { collect } from './fixtures.js';
import { tempDb } from './helpers.js';

const KEY = 'app-SECRET-9d41c07e55ab';

const PLAN = `
workflow_id: secret-plan
target:
  type: dify
  base_url: http://127.0.0.1:9/v1
  api_key: \${STRIDE_TEST_DIFY_KEY}
  app: workflow
execution_policy:
  concurrency: 4
  retry_policy: { max_attempts: 2, backoff_seconds: 0 }
cases:
  - { id: ok-1, inputs: { query: refund please } }
  - { id: ok-2, inputs: { query: shipping } }
  - { id: flaky, inputs: { query: try again } }
  - { id: wrong, inputs: { query: account } }
  - { id: broken, inputs: { query: broken } }
`;

function scan(path: string): { file: string; bytes: Buffer }[] {
  return [path, `${path}-wal`, `${path}-shm`]
    .filter((f) => existsSync(f))
    .map((file) => ({ file, bytes: readFileSync(file) }));
}

describe('secrets in the store', () => {
  test('the API key from ${ENV} is in no byte of the database or its WAL', async () => {
    const manifest = parsePlan(PLAN, { env: { STRIDE_TEST_DIFY_KEY: KEY } });
    expect(JSON.stringify(manifest)).toContain(KEY); // the plan really holds it
    const service = new ExecutorService({
      // Stands in for the Dify target: its errors and outputs never hold the key.
      target: async (testCase, ctx) => {
        if (testCase.id === 'flaky' && ctx.attempt === 1) throw new RateLimitedError('busy');
        if (testCase.id === 'wrong') throw new TaskFailedError('the answer is wrong');
        if (testCase.id === 'broken') throw new Error('upstream said: bad gateway');
        ctx.reportUsage({ tokens: 12, cost: 0.001 });
        return { text: `answer to ${testCase.inputs.query}`, workflowRunId: `wr-${testCase.id}` };
      },
    });
    const path = tempDb();
    const store = new SqliteStore({ path });
    const prepared = await service.prepare(manifest);
    const journal = await attachJournal(prepared.run, store, {
      plan: snapshotPlan(manifest),
      options: runOptionsFor(manifest),
    });
    const result = await prepared.run.start();
    await journal.closed;
    await prepared.close();
    expect(result.statistics.totalTasks).toBe(5);

    // Not a vacuous scan: the plan, the results and the errors are there.
    const run = await store.getRun(prepared.run.runId);
    expect(run?.planJson).toContain('[redacted]');
    expect(run?.planJson).toContain('secret-plan');
    expect(run?.plan).toBe('secret-plan');
    expect((await collect(store.results(prepared.run.runId))).length).toBe(5);

    for (const when of ['open', 'closed']) {
      if (when === 'closed') await store.close();
      const files = scan(path);
      expect(files.length).toBeGreaterThan(0);
      const all = Buffer.concat(files.map((f) => f.bytes));
      expect(all.includes('secret-plan')).toBe(true);
      expect(all.includes('the answer is wrong')).toBe(true);
      for (const { file, bytes } of files) {
        expect(bytes.includes(KEY), `${file} (${when})`).toBe(false);
        expect(bytes.includes(KEY.slice(4)), `${file} (${when})`).toBe(false);
        expect(bytes.includes(Buffer.from(KEY, 'utf16le')), `${file} (${when})`).toBe(false);
      }
    }
  });

  test('a password in base_url is in no byte of the database; the host is kept', async () => {
    const password = 'PASS-base-url-61f0';
    const manifest = parsePlan(PLAN.replace('http://127.0.0.1:9/v1', '${DIFY_URL}'), {
      env: { STRIDE_TEST_DIFY_KEY: KEY, DIFY_URL: `http://stride:${password}@127.0.0.1:9/v1` },
    });
    expect(JSON.stringify(manifest)).toContain(password); // the plan really holds it
    const service = new ExecutorService({ target: async () => ({ text: 'ok' }) });
    const path = tempDb();
    const store = new SqliteStore({ path });
    const prepared = await service.prepare(manifest);
    const journal = await attachJournal(prepared.run, store, {
      plan: snapshotPlan(manifest),
      options: runOptionsFor(manifest),
    });
    await prepared.run.start();
    await journal.closed;
    await prepared.close();
    const run = await store.getRun(prepared.run.runId);
    expect(JSON.parse(run!.planJson).target.baseUrl).toBe('http://[redacted]@127.0.0.1:9/v1');
    // A new password is the same plan: a resume after rotating it is not refused.
    const rotated = parsePlan(PLAN.replace('http://127.0.0.1:9/v1', '${DIFY_URL}'), {
      env: { STRIDE_TEST_DIFY_KEY: KEY, DIFY_URL: 'http://stride:other@127.0.0.1:9/v1' },
    });
    expect(snapshotPlan(rotated).hash).toBe(run!.planHash);
    await store.close();
    const all = Buffer.concat(scan(path).map((f) => f.bytes));
    expect(all.includes('127.0.0.1:9')).toBe(true);
    expect(all.includes(password)).toBe(false);
  });
});
