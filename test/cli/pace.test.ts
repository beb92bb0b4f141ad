/**
 * The adaptive pace as a CLI user sees it (issue #17): a plan at concurrency 12 against a mock
 * that admits 3 at a time passes whole, and the summary and `stride show` say what the pace did
 * and why; `adaptive: false` keeps the plan's concurrency and says nothing of a pace.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { captureIo, makePlan } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ maxConcurrency: 3, latencyMs: 20 });
});
afterAll(async () => {
  await mock.close();
});

describe('stride run with adaptive pace', () => {
  it('a target admitting 3 of 12: every case passes, the summary and show tell the pace and why', async () => {
    const { dir, plan } = makePlan({ cases: Array(60).fill('ok'), concurrency: 12 });
    const db = join(dir, 'db');
    const { io, text } = captureIo({ MOCK_URL: mock.baseUrl });
    mock.reset();
    const code = await main(
      ['run', plan, '--db', db, '--out', join(dir, 'out'), '--run-id', 'P'],
      io,
    );
    expect(code).toBe(0);
    expect(text.out + text.err).toContain('60 cases: 60 passed');
    const summary = text.out + text.err;
    expect(summary).toMatch(
      /\n {2}pace {7}concurrency 12 → \d+ at the end \(lowest \d\) · \d+ request\(s\) refused \(429\), not counted in max_attempts\n/,
    );
    expect(summary).toMatch(
      /\n {13}why: concurrency 12 → \d+: target answered 429 without Retry-After\n/,
    );
    // Cost honesty: every request at the mock is a journaled attempt.
    const attempts = Number(/attempts {3}(\d+)/.exec(summary)?.[1]);
    expect(attempts).toBe(mock.stats().runs);

    const show = captureIo();
    expect(await main(['show', 'P', '--db', db], show.io)).toBe(0);
    expect(show.text.out).toMatch(/\npace {7}concurrency 12 → \d+ at the end/);
    expect(show.text.out).toMatch(
      /why: concurrency 12 → \d+: target answered 429 without Retry-After/,
    );
  });

  it('adaptive: false: the plan concurrency stays and no pace line is printed', async () => {
    const { dir, plan } = makePlan({
      cases: Array(6).fill('ok'),
      concurrency: 3,
      extra: '  adaptive: false',
    });
    const { io, text } = captureIo({ MOCK_URL: mock.baseUrl });
    const code = await main(['run', plan, '--db', join(dir, 'db'), '--out', join(dir, 'out')], io);
    expect(code).toBe(0);
    expect(text.out + text.err).not.toContain('pace ');
  });
});
