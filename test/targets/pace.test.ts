/**
 * Adaptive pace against the mock on a real socket (issue #17): the Dify target under the engine
 * at a plan concurrency of 20, the mock admitting fewer. Invariants only, never elapsed time:
 * every case passes, requests at the mock equal the attempts and stay bounded, and once the
 * pace first went down, no more than the mock's limit plus one probe is in flight.
 * (The figures with time in them are bench/pace.mjs's, docs/benchmarks.md.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PaceChange, Run } from '../../src/core/index.js';
import { type MockOptions, type MockServer, startMock } from '../../src/mock/index.js';
import { type ClosableTarget, createTarget } from '../../src/targets/index.js';
import { until } from '../core/harness.js';

let mock: MockServer | undefined;
let target: ClosableTarget | undefined;

afterEach(async () => {
  await target?.close();
  await mock?.close();
  target = undefined;
  mock = undefined;
});

async function paced(cases: number, options: MockOptions) {
  mock = await startMock(options);
  target = createTarget(
    {
      type: 'dify',
      baseUrl: mock.baseUrl,
      apiKey: 'app-pace-test',
      app: 'workflow',
      responseMode: 'blocking',
      user: 'pace-test',
    },
    { concurrency: 20 },
  );
  const run = new Run(
    Array.from({ length: cases }, (_, i) => ({
      id: `c${i}`,
      input: { inputs: { query: `q${i}` } },
    })),
    target,
    { concurrency: 20, retry: { maxAttempts: 3 } },
  );
  const changes: PaceChange[] = [];
  const inFlightAfterFirstDecrease: number[] = [];
  run.on('paceChanged', (c) => changes.push(c));
  run.on('transition', (t) => {
    if (t.to === 'running' && changes.length > 0)
      inFlightAfterFirstDecrease.push(run.progress.running);
  });
  return { run, m: mock, changes, inFlightAfterFirstDecrease };
}

describe('adaptive pace against the mock', () => {
  it('max-concurrency 4, plan 20, 200 cases: all pass, at most 1.2 requests per case, never more than 4 + 1 in flight once lowered', async () => {
    const { run, m, changes, inFlightAfterFirstDecrease } = await paced(200, {
      maxConcurrency: 4,
      latencyMs: 50,
    });
    const result = await run.start();
    expect(result.statistics.succeededTasks).toBe(200);
    expect(m.stats().runs).toBe(result.statistics.attempts);
    expect(m.stats().runs).toBeLessThanOrEqual(240);
    expect(m.stats().limited).toBe(result.statistics.refused);
    expect(changes[0]?.message).toMatch(
      /^concurrency 20 → \d+: target answered 429 without Retry-After$/,
    );
    expect(Math.max(...inFlightAfterFirstDecrease)).toBeLessThanOrEqual(5);
  });

  it('a per-minute limit with bare 429s (1,800/min, too_many_requests) slower than one request at a time: the rate comes down, all pass, requests bounded', async () => {
    // At 20 ms a request, concurrency 1 alone sends 3,000/min: only a lower rate stops the 429s.
    const { run, m, changes } = await paced(150, {
      rateLimit: { perMinute: 1800, code: 'too_many_requests' },
      latencyMs: 20,
    });
    const result = await run.start();
    expect(result.statistics.succeededTasks).toBe(150);
    expect(m.stats().runs).toBe(result.statistics.attempts);
    // The first wave of 20 meets a bucket of 1: 19 refusals are the price of not knowing.
    expect(m.stats().runs).toBeLessThanOrEqual(1.3 * 150);
    expect(result.statistics.pace?.lowestConcurrency).toBe(1);
    const rates = changes.filter((c) => c.ratePerMinute.to !== undefined);
    expect(rates[0]?.message).toMatch(
      /^rate unlimited → \d+\/min: target answered 429 without Retry-After at concurrency 1$/,
    );
  });

  it('follows the mock when its limit is lowered, then raised (setLimits mid-run)', async () => {
    const { run, m } = await paced(3000, { maxConcurrency: 8, latencyMs: 20 });
    const done = run.start();
    await until(() => run.progress.settled >= 300, 'the run to settle at 8');
    m.setLimits({ maxConcurrency: 2 });
    await until(() => run.concurrency <= 2, 'the pace to come down to 2');
    const settledAtTwo = run.progress.settled;
    await until(() => run.progress.settled >= settledAtTwo + 200, '200 answers at 2');
    m.setLimits({ maxConcurrency: 8 });
    await until(() => run.concurrency >= 7, 'the pace to go back up');
    const result = await done;
    expect(result.statistics.succeededTasks).toBe(3000);
    expect(m.stats().runs).toBe(result.statistics.attempts);
    expect(m.stats().runs).toBeLessThanOrEqual(1.2 * 3000);
  });
});
