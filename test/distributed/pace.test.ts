/**
 * Adaptive pace with distributed workers (issue #17 item 5): four `stride worker` processes, a
 * mock admitting 4 at a time, a plan at concurrency 20. The pace is learned once, by the
 * coordinator's run, which decides every start for every worker: the workers do not each
 * discover the limit (that would cost four first waves of refusals, and four times the probes).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { captureIo } from '../cli/helpers.js';
import { distributedFixture, planFile, SLOW } from './redis.js';

const f = distributedFixture(1);
let limited: MockServer;
beforeAll(async () => {
  limited = await startMock({ port: 0, latencyMs: 30, maxConcurrency: 4 });
});
afterAll(async () => {
  await limited.close();
});

describe('adaptive pace over BullMQ workers', () => {
  test(
    'four workers, a target admitting 4, plan 20: every case passes, one pace for all, requests bounded',
    async () => {
      const queue = 'q-pace';
      await Promise.all([0, 1, 2, 3].map(() => f.startWorker(queue, 8)));
      const dir = mkdtempSync(join(tmpdir(), 'stride-dist-pace-'));
      const plan = planFile(
        dir,
        200,
        '{ concurrency: 20, timeout: 30s, retry_policy: { max_attempts: 3, backoff_seconds: 0.1 } }',
      );
      const db = join(dir, 'stride.db');
      const { io, text } = captureIo({ MOCK_URL: limited.baseUrl });
      const code = await main(
        [
          'run',
          plan,
          ...f.dispatchArgs(queue, db),
          '--out',
          join(dir, 'out'),
          '--report',
          'json',
          '--json',
          '--no-progress',
          '--run-id',
          'pace',
        ],
        io,
      );
      expect(code, text.err).toBe(0);
      expect(JSON.parse(text.out)).toMatchObject({ passed: 200, total: 200 });
      const store = new SqliteStore({ path: db });
      try {
        const run = await store.getRun('pace');
        // Every request at the mock is a journaled attempt; the first wave of 20 is the only
        // blind one (16 refused), then one pace for every worker.
        expect(run?.counts.attempts).toBe(limited.stats().runs);
        expect(limited.stats().runs).toBeLessThanOrEqual(1.2 * 200);
        const pace = await store.paceChanges('pace');
        expect(pace[0]).toMatchObject({
          reason: 'rate_limited',
          message: expect.stringMatching(/^concurrency 20 → \d+: target answered 429/),
        });
        expect(Math.min(...pace.map((c) => c.concurrency))).toBeLessThanOrEqual(4);
      } finally {
        await store.close();
      }
    },
    SLOW,
  );
});
