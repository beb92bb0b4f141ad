/**
 * The HTML report in a real browser: a real run (ExecutorService, a function target) with
 * passes, failed assertions, errors and a timeout; the report opened in headless Chromium; its
 * numbers and its failure list checked against the run; a screenshot kept for people.
 */

import { mkdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpError, VirtualClock } from '../../src/core/index.js';
import { parsePlan, type TestCase } from '../../src/plans/index.js';
import { SummaryBuilder, writeReports } from '../../src/report/index.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { removeTempDirs, tempFiles } from '../plans/helpers.js';
import { META, result } from './helpers.js';

// One Chromium for the file (a launch per test was a third of its time), a page per test; the
// tests run side by side and their temporary folders go after both.
let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await removeTempDirs();
});

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const XSS = '<script>alert(1)</script>';

const PLAN = `
workflow_id: support-bot
target: { type: function, name: bot }
datasets:
  - name: refunds
    cases:
      - { id: refund-1, inputs: { query: refund please }, expected: { contains: refund } }
      - { id: refund-2, inputs: { query: refund now }, expected: { contains: refund } }
      - { id: refund-3, inputs: { query: refund for order 1042 }, expected: { field: answer, contains: refund } }
      - { id: wrong-1, inputs: { query: say nothing }, expected: { field: answer, equals: "about your refund" } }
      - { id: xss, inputs: { query: "${XSS}" }, expected: { contains: refund } }
      - { id: broken-1, inputs: { query: boom } }
  - name: smalltalk
    cases:
      - { id: hello, inputs: { query: hello } }
      - { id: weather, inputs: { query: what is the weather like today }, expected: { contains: weather } }
      - { id: wrong-2, inputs: { query: say nothing }, expected: [{ contains: sunny }, { latency_below: 50ms }] }
      - { id: slow, inputs: { query: slow } }
      - { id: broken-2, inputs: { query: boom } }
execution_policy:
  concurrency: 4
  timeout: 500ms
  retry_policy: { max_attempts: 2, backoff_seconds: 1 }
`;

/** Answers from the query, fails with a 400, or hangs past the timeout; on the virtual clock. */
function bot(clock: VirtualClock) {
  return async (
    c: TestCase,
    ctx: { signal: AbortSignal; reportUsage: (u: { tokens?: number; cost?: number }) => void },
  ) => {
    const query = String(c.inputs.query);
    if (query === 'boom') throw new HttpError(400, 'invalid_param: query');
    await clock.sleep(query === 'slow' ? 10_000 : 20 + 8 * query.length, ctx.signal);
    ctx.reportUsage({ tokens: 10 * query.length, cost: 0.0001 * query.length });
    if (query === XSS) return { answer: XSS };
    return { answer: query === 'say nothing' ? '...' : `about your ${query}` };
  };
}

describe.concurrent('HTML report in Chromium', () => {
  it('shows the run counts and every failed case', { timeout: 30_000 }, async () => {
    const clock = new VirtualClock();
    const service = new ExecutorService({ clock, functions: { bot: bot(clock) } });
    const manifest = parsePlan(PLAN);
    const startedAt = Date.now();
    const results = await service.executeTestPlan(manifest);
    const count = (status: string) => results.filter((r) => r.status === status).length;
    // the run has what the report must show: each status at least once
    expect([count('success'), count('failed'), count('error'), count('timeout')]).toEqual([
      5, 3, 2, 1,
    ]);

    const builder = new SummaryBuilder();
    for (const r of results) builder.add(r);
    const summary = builder.build({
      runId: 'run-chromium',
      plan: manifest.workflowId,
      startedAt,
      finishedAt: Date.now(),
      command: 'stride run plan.yaml --report html',
    });
    const dir = await tempFiles();
    const { html } = await writeReports(dir, ['html'], summary, () => results);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      const remote: string[] = [];
      page.on('request', (req) => {
        if (!req.url().startsWith('file:')) remote.push(req.url());
      });
      const dialogs: string[] = [];
      page.on('dialog', async (d) => {
        dialogs.push(d.message());
        await d.dismiss();
      });
      await page.goto(pathToFileURL(html!).href);

      const number = async (testid: string) =>
        Number(await page.getAttribute(`[data-testid="${testid}"]`, 'data-value'));
      const text = async (testid: string) =>
        (await page.textContent(`[data-testid="${testid}"]`))?.trim();
      expect(await number('total')).toBe(results.length);
      expect(await number('passed')).toBe(count('success'));
      expect(await number('failed')).toBe(count('failed'));
      expect(await number('errors')).toBe(count('error'));
      expect(await number('timeouts')).toBe(count('timeout'));
      expect(await number('pass-rate')).toBeCloseTo(count('success') / results.length, 12);
      // what a person reads matches too
      expect(await text('total')).toBe(String(results.length));
      expect(await text('failed')).toBe(String(count('failed')));
      expect(await text('pass-rate')).toBe(
        `${((100 * count('success')) / results.length).toFixed(1)}%`,
      );
      expect(await number('tokens')).toBe(results.reduce((n, r) => n + r.tokensUsed, 0));
      expect(await text('plan')).toBe('support-bot');
      expect(await text('command')).toBe('stride run plan.yaml --report html');

      // every failed, errored and timed-out case is listed, and nothing else
      const listed = await page.$$eval('[data-testid="failure"]', (els) =>
        els.map((e) => e.getAttribute('data-case-id')),
      );
      const notPassed = results.filter((r) => r.status !== 'success').map((r) => r.executionId);
      expect([...listed].sort()).toEqual([...notPassed].sort());
      expect(notPassed.sort()).toEqual(
        ['broken-1', 'broken-2', 'slow', 'wrong-1', 'wrong-2', 'xss'].sort(),
      );
      // the failed assertion's diff is there: - expected / + actual
      const diff = await page.textContent('[data-case-id="wrong-1"] [data-testid="diff"]');
      expect(diff).toContain('- about your refund');
      expect(diff).toContain('+ ...');
      // the model's script is shown as text and never runs
      const output = await page.textContent('[data-case-id="xss"] .cols div:last-child pre');
      expect(output).toContain(XSS);
      expect(await page.locator('script').count()).toBe(0);
      expect(dialogs).toEqual([]);

      // the charts and tables rendered
      expect(await page.locator('[data-testid="latency-histogram"] rect').count()).toBeGreaterThan(
        0,
      );
      const box = await page.locator('[data-testid="latency-histogram"]').boundingBox();
      expect(box?.width ?? 0).toBeGreaterThan(300);
      expect(
        await page.$$eval('[data-testid="dataset-row"]', (rows) =>
          rows.map((r) => r.getAttribute('data-dataset')),
        ),
      ).toEqual(['refunds', 'smalltalk']);
      // offline: nothing was fetched from anywhere
      expect(remote).toEqual([]);

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}report.png`, fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('lays out close p50/p90/p95 labels without overlap', { timeout: 30_000 }, async () => {
    // Most cases within a quarter second of each other in the tallest bar, a fast and a slow
    // outlier widening the chart: the percentiles' lines land a few pixels apart, where their
    // labels used to print over each other (issue #18).
    const seconds = [
      0.002,
      ...Array.from({ length: 50 }, () => 1.1),
      ...Array.from({ length: 40 }, () => 1.3),
      ...Array.from({ length: 5 }, () => 1.5),
      ...Array.from({ length: 3 }, () => 1.75),
      60,
    ];
    const results = seconds.map((s, i) => result({ id: `case-${i}`, seconds: s }));
    const builder = new SummaryBuilder();
    for (const r of results) builder.add(r);
    const summary = builder.build(META);
    const dir = await tempFiles();
    const { html } = await writeReports(dir, ['html'], summary, () => results);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await page.goto(pathToFileURL(html!).href);
      const chart = page.locator('[data-testid="latency-histogram"]');
      // the percentile labels are the chart's red texts (before and after the fix)
      const labels = chart.locator('text[fill="#cf222e"]');
      const names = await labels.allTextContents();
      // p50, p90 and p95 each have their own label here: the case the layout must handle
      expect(names.join(' ').split(' ').sort()).toEqual(['p50', 'p90', 'p95', 'p99']);
      expect(names.length).toBeGreaterThanOrEqual(3);
      const boxes = [];
      for (let i = 0; i < names.length; i++) boxes.push((await labels.nth(i).boundingBox())!);
      const bars = [];
      for (const rect of await chart.locator('rect').all()) bars.push((await rect.boundingBox())!);
      const chartBox = (await chart.boundingBox())!;
      type Box = { x: number; y: number; width: number; height: number };
      const meet = (a: Box, b: Box) =>
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
      for (let i = 0; i < boxes.length; i++) {
        const a = boxes[i]!;
        expect(a.width).toBeGreaterThan(0);
        // inside the chart, over no bar, and clear of every other label
        expect(a.x).toBeGreaterThanOrEqual(chartBox.x);
        expect(a.x + a.width).toBeLessThanOrEqual(chartBox.x + chartBox.width);
        for (const bar of bars) expect(meet(a, bar), `${names[i]} over a bar`).toBe(false);
        for (let j = i + 1; j < boxes.length; j++) {
          expect(meet(a, boxes[j]!), `${names[i]} meets ${names[j]}`).toBe(false);
        }
      }
      await mkdir(ARTIFACTS, { recursive: true });
      await chart.screenshot({ path: `${ARTIFACTS}report-percentiles.png` });
    } finally {
      await page.close();
    }
  });
});
