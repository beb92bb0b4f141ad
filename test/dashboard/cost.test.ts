/**
 * Issue #18 item 2 on the dashboard: a run's cost card (and its cell in the runs list) says
 * `unknown` when no case's cost is known (no price), `unknown for N cases (partial $x)` when
 * some are, and dollars only when every case's cost is known; never $0 for unknown. Three real
 * runs of the engine into one real SQLite journal (a function target that reports usage with or
 * without a cost, as a priced and an unpriced target do), `stride serve` in a child process,
 * the pages in headless Chromium.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AttemptContext } from '../../src/core/index.js';
import { loadPlan, type TestCase } from '../../src/plans/index.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { RunHistory } from '../../src/runner/history.js';
import { SqliteStore } from '../../src/store/index.js';
import { type Served, serve, stop } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let browser: Browser;
const served: Served[] = [];

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  for (const s of served) s.child.kill('SIGINT');
  await Promise.all(served.map((s) => s.child.exited));
});

/**
 * Runs `known`, `none` and `some` (4 cases each) into `db`: every case priced at $0.25, no case
 * priced, and cases 0 and 1 unpriced (tokens reported without a cost).
 */
async function seed(dir: string, db: string): Promise<void> {
  writeFileSync(
    join(dir, 'cases.jsonl'),
    `${[0, 1, 2, 3].map((i) => JSON.stringify({ id: `c${i}`, inputs: { n: i } })).join('\n')}\n`,
  );
  const plan = join(dir, 'plan.yaml');
  writeFileSync(
    plan,
    'workflow_id: cost\ntarget: { type: function, name: bot }\ncases: cases.jsonl\n',
  );
  let priced: (n: number) => boolean = () => true;
  const bot = async (c: TestCase, ctx: AttemptContext) => {
    const n = (c.inputs as { n: number }).n;
    ctx.reportUsage(
      priced(n) ? { tokens: 10, cost: 0.25 } : { tokens: 10, cost: 0, costUnknown: true },
    );
    return 'ok';
  };
  const history = new RunHistory({
    store: new SqliteStore({ path: db }),
    service: new ExecutorService({ functions: { bot } }),
  });
  try {
    const manifest = await loadPlan(plan);
    for (const [runId, rule] of [
      ['known', () => true],
      ['none', () => false],
      ['some', (n: number) => n >= 2],
    ] as const) {
      priced = rule;
      await history.run(manifest, { runId });
    }
  } finally {
    await history.store.close();
  }
}

describe('the dashboard says unknown cost, never $0', () => {
  test('run page cost card and runs list: $1.00 known, unknown with no price, unknown for 2 cases when partly known', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stride-dash-cost-'));
    const db = join(dir, 'stride.db');
    await seed(dir, db);
    const s = await serve(db);
    served.push(s);
    const page = await browser.newPage();
    page.on('pageerror', (e) => {
      throw e;
    });
    const expected = {
      known: '$1.00',
      none: 'unknown',
      some: 'unknown for 2 cases (partial $0.5000)',
    };
    for (const [id, text] of Object.entries(expected)) {
      await page.goto(`${s.url}runs/${id}`);
      // The card a person reads: the one labelled "cost".
      const cost = page
        .locator('.card', { has: page.locator('.label', { hasText: /^cost$/ }) })
        .locator('.value');
      await cost.waitFor();
      expect(await cost.textContent(), id).toBe(text);
    }
    await page.goto(s.url);
    await page.locator('[data-testid=run-row][data-run-id=some]').waitFor();
    for (const [id, text] of Object.entries(expected)) {
      expect(
        await page.locator(`[data-run-id=${id}] [data-testid=run-cost]`).textContent(),
        id,
      ).toBe(text);
    }
    await page.close();
    expect(await stop(s)).toBe(0);
  }, 120_000);
});
