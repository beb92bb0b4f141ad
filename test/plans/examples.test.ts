import { describe, expect, test } from 'vitest';
import {
  checkCases,
  evaluateAssertions,
  iterateCases,
  loadPlan,
  parsePlan,
  printPlan,
  redact,
} from '../../src/plans/index.js';
import { collect } from './helpers.js';

const EXAMPLES = [
  'examples/dify-workflow/plan.yaml',
  'examples/chat-app/plan.yaml',
  'examples/openai/plan.yaml',
] as const;

describe('examples', () => {
  test.each(EXAMPLES)('%s loads with no environment (local defaults)', async (file) => {
    const manifest = await loadPlan(file, { env: {} });
    expect(manifest.file).toBe(file);
    expect(manifest.target?.type).toMatch(/^(dify|openai)$/);
    const stats = await checkCases(manifest);
    expect(stats.selected).toBeGreaterThan(0);
    const cases = await collect(iterateCases(manifest));
    expect(cases).toHaveLength(stats.selected);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
  });

  test.each(EXAMPLES)('%s prints without its secret and reads back the same', async (file) => {
    const env = {
      DIFY_API_KEY: 'app-REAL-KEY',
      DIFY_CHAT_API_KEY: 'app-REAL-KEY',
      OPENAI_API_KEY: 'sk-REAL-KEY',
    };
    const manifest = await loadPlan(file, { env, checkCases: false });
    const printed = printPlan(manifest);
    expect(printed).not.toContain('REAL-KEY');
    expect(JSON.stringify(redact(manifest))).not.toContain('REAL-KEY');
    expect(parsePlan(printed, { file, env })).toEqual(manifest);
  });

  test('the Dify workflow example: 21 cases in 6 datasets, keys from the environment', async () => {
    const manifest = await loadPlan('examples/dify-workflow/plan.yaml', {
      env: { DIFY_BASE_URL: 'https://dify.example.com/v1', DIFY_API_KEY: 'app-123' },
    });
    expect(manifest.target).toEqual({
      type: 'dify',
      baseUrl: 'https://dify.example.com/v1',
      apiKey: 'app-123',
      app: 'workflow',
      responseMode: 'streaming',
      user: 'stride-regression',
    });
    expect(manifest.executionPolicy.retryPolicy).toEqual({
      maxAttempts: 3,
      maxRateLimitRetries: 10,
      backoffMs: 2000,
      backoffMultiplier: 1.5,
      maxBackoffMs: 30_000,
      jitter: 'full',
    });
    expect(await checkCases(manifest)).toEqual({
      total: 21,
      selected: 21,
      byDataset: {
        refunds: 7,
        shipping: 6,
        accounts: 4,
        structured: 2,
        safety: 1,
        smalltalk: 1,
      },
    });
    const cases = await collect(iterateCases(manifest));
    const refund1 = cases.find((c) => c.id === 'refund-1');
    expect(refund1?.expected).toEqual([{ type: 'contains', value: 'refund', field: 'text' }]);
    const outcome = evaluateAssertions(refund1?.expected ?? [], {
      output: { text: 'Your refund for order 1042 is on its way.' },
    });
    expect(outcome.every((o) => o.passed)).toBe(true);
  });

  test('the chat example: CSV cases, the slow one left out', async () => {
    const manifest = await loadPlan('examples/chat-app/plan.yaml', { env: {} });
    const cases = await collect(iterateCases(manifest));
    expect(cases.map((c) => c.id)).not.toContain('faq-long');
    expect(cases).toHaveLength(8);
    expect(cases[0]).toEqual({
      id: 'faq-hours',
      inputs: { query: 'What are your opening hours?', tone: 'friendly' },
      tags: ['smoke', 'hours'],
      priority: 5,
      // expected_field: text narrows the row's assertions to the answer (a chat output's JSON
      // holds ids in which "9" is nearly always found).
      expected: [
        { type: 'contains', value: '9', field: 'text' },
        { type: 'latency_below', ms: 10_000 },
      ],
    });
    expect(manifest.executionPolicy.stopConditions).toEqual({ maxFailures: 0.2, maxCost: 2.5 });
  });

  test('the OpenAI example: inline cases, each repeated twice', async () => {
    const manifest = await loadPlan('examples/openai/plan.yaml', { env: {} });
    const ids = (await collect(iterateCases(manifest))).map((c) => c.id);
    expect(ids.slice(0, 4)).toEqual(['capital#1', 'capital#2', 'arithmetic#1', 'arithmetic#2']);
    expect(ids).toHaveLength(10);
    expect(manifest.target).toMatchObject({
      type: 'openai',
      baseUrl: 'http://127.0.0.1:5001/v1',
      apiKey: 'sk-local',
      model: 'gpt-4o-mini',
      temperature: 0,
      maxTokens: 200,
    });
  });
});
