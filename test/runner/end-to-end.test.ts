import { afterEach, describe, expect, it } from 'vitest';
import { startMock } from '../../src/mock/index.js';
import { loadPlan } from '../../src/plans/index.js';
import { ExecutorService } from '../../src/runner/executor-service.js';

type Mock = Awaited<ReturnType<typeof startMock>>;
let mock: Mock | undefined;
afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

// The bundled example plans, run as a user runs them: loadPlan, the built-in Dify/OpenAI target,
// the mock on a real socket (port 0). Real clock: assert counts and verdicts, never wall time.
describe('example plans against the mock, end to end', () => {
  it('runs the Dify workflow regression plan: one request per case, verdicts from assertions', async () => {
    mock = await startMock({ apiKeys: ['app-e2e-secret'] });
    const manifest = await loadPlan('examples/dify-workflow/plan.yaml', {
      env: { DIFY_BASE_URL: `${mock.url}/v1`, DIFY_API_KEY: 'app-e2e-secret' },
    });
    const { results, run } = await new ExecutorService().runTestPlan(manifest);
    const stats = mock.stats();
    expect(results.length).toBe(run.statistics.totalTasks);
    expect(results.length).toBeGreaterThanOrEqual(20);
    // the mock echoes the query, so cases asking about refunds pass "contains: refund"
    expect(results.find((r) => r.executionId === 'refund-1')?.status).toBe('success');
    expect(results.every((r) => r.status === 'success' || r.status === 'failed')).toBe(true);
    // exactly one upstream request per case: nothing retried a verdict
    expect(stats.requests).toBe(results.length);
    expect(stats.peakInFlight).toBeLessThanOrEqual(manifest.executionPolicy.concurrency);
    // the API key never reaches a result
    expect(JSON.stringify(results)).not.toContain('app-e2e-secret');
  });

  it('stops after three authentication errors with a wrong key, and says so', async () => {
    mock = await startMock({ apiKeys: ['app-right'] });
    const manifest = await loadPlan('examples/dify-workflow/plan.yaml', {
      env: { DIFY_BASE_URL: `${mock.url}/v1`, DIFY_API_KEY: 'app-wrong' },
    });
    const { run } = await new ExecutorService().runTestPlan(manifest);
    expect(run.stoppedBy?.rule).toBe('auth_errors');
    expect(run.statistics.errorTasks).toBeGreaterThanOrEqual(3);
    // in flight when the rule fired: at most the concurrency, never the whole plan
    expect(mock.stats().requests).toBeLessThanOrEqual(manifest.executionPolicy.concurrency + 3);
  });
});
