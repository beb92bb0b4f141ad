/**
 * The `openai` plan target priced and streamed from a plan file (issue #18 item 7): the built-in
 * target gets `response_mode` and `price_per_million`, so a plan's `cost_below` can pass and the
 * run's cost is known rather than 0.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { parsePlan } from '../../src/plans/index.js';
import { ExecutorService } from '../../src/runner/executor-service.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ recordRequests: true, tokens: 1000 });
});
afterAll(() => mock.close());

const plan = (extra: string) =>
  parsePlan(
    `workflow_id: priced
target:
  type: openai
  base_url: ${mock.baseUrl}
  api_key: sk-test
  model: gpt-4o-mini
${extra}
cases:
  - { id: hi, inputs: { query: hello }, expected: { field: text, contains: hello, cost_below: 0.001 } }
`,
    { env: {} },
  );

describe('openai plan target: price and response mode', () => {
  it('streams when the plan says response_mode: streaming, and reports the priced cost', async () => {
    mock.reset();
    const [r] = await new ExecutorService().executeTestPlan(
      plan('  response_mode: streaming\n  price_per_million: { input: 0.5, output: 1.5 }'),
    );
    // The mock splits 1000 tokens into 750 prompt + 250 completion.
    expect(r).toMatchObject({ status: 'success', tokensUsed: 1000 });
    expect(r?.cost).toBeCloseTo((750 * 0.5 + 250 * 1.5) / 1e6, 12);
    const body = mock.requests()[0]?.body as Record<string, unknown> | undefined;
    expect(body?.stream).toBe(true);
    expect(body?.stream_options).toEqual({ include_usage: true });
  });

  it('without the keys it stays blocking and the cost is unknown, so cost_below fails', async () => {
    mock.reset();
    const [r] = await new ExecutorService().executeTestPlan(plan(''));
    expect(r?.status).toBe('failed');
    expect(r?.assertions.find((a) => !a.passed)?.message).toMatch(/cost/);
    const [request] = mock.requests();
    expect((request?.body as Record<string, unknown> | undefined)?.stream).toBeUndefined();
    expect(request?.endpoint).toBe('openai');
  });
});
