/**
 * The HTML report's pace chart in Chromium: a real run on the VirtualClock against a target
 * that admits 4 at a time (a bare 429 above), its `paceChanged` events journaled in a
 * MemoryStore as `stride run` journals them, read back with `paceChanges`, and drawn.
 */

import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpError, Run, VirtualClock } from '../../src/core/index.js';
import { htmlPaceOf } from '../../src/report/html-pace.js';
import { SummaryBuilder, writeReports } from '../../src/report/index.js';
import type { PaceRecord } from '../../src/store/port.js';
import { removeTempDirs, tempFiles } from '../plans/helpers.js';
import { META, result } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// One Chromium for the file (a launch per test before), a page per test; the tests run side by
// side and their temporary folders go after both.
let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await removeTempDirs();
});
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

/** 200 cases at plan concurrency 20 against a target admitting 4 at a time, 50 ms each. */
async function limitedRun() {
  const clock = new VirtualClock();
  let admitted = 0;
  const target = {
    async execute(): Promise<string> {
      if (admitted >= 4) throw new HttpError(429, 'Dify answered HTTP 429 too_many_requests');
      admitted++;
      try {
        await clock.sleep(50);
        return 'ok';
      } finally {
        admitted--;
      }
    },
  };
  const run = new Run(
    Array.from({ length: 200 }, (_, i) => ({ id: `t${i}`, input: i })),
    target,
    { clock, concurrency: 20 },
  );
  const changes: PaceRecord[] = [];
  run.on('paceChanged', (c) =>
    changes.push({
      at: c.at,
      concurrency: c.concurrency.to,
      ratePerMinute: c.ratePerMinute.to,
      reason: c.reason,
      message: c.message,
    }),
  );
  const res = await run.start();
  return { res, changes, clock };
}

describe.concurrent('HTML report: the pace over the run', () => {
  it('draws the effective concurrency from the journaled changes, with the pace line', {
    timeout: 60_000,
  }, async () => {
    const { res, changes } = await limitedRun();
    expect(changes.length).toBeGreaterThan(0);
    const startedAt = 1_700_000_000_000;
    // The run clock starts at 0 on this VirtualClock; its epoch offset is the start.
    const record = {
      startedAt,
      clockOffsetMs: startedAt,
      finishedAt: startedAt + res.statistics.wallTimeMs,
    };
    const line = [
      '  pace       concurrency 20 → 4 at the end (lowest 4)',
      `             why: ${changes[0]!.message}`,
    ];
    const pace = htmlPaceOf(record, changes, 20, line)!;

    const builder = new SummaryBuilder();
    builder.add(result({ id: 'ok-1' }));
    const summary = builder.build(META);
    const dir = await tempFiles();
    const { html } = await writeReports(dir, ['html'], summary, () => [], { html: { pace } });

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await page.goto(pathToFileURL(html!).href);
      const svg = page.locator('[data-testid="pace"]');
      expect(await svg.getAttribute('data-ceiling')).toBe('20');
      expect(Number(await svg.getAttribute('data-duration'))).toBe(
        Math.round(res.statistics.wallTimeMs),
      );
      // One dot per journaled change, in order, with its concurrency and its message as tooltip.
      const dots = page.locator('[data-testid="pace-change"]');
      expect(await dots.count()).toBe(changes.length);
      for (let i = 0; i < changes.length; i++) {
        const dot = dots.nth(i);
        expect(Number(await dot.getAttribute('data-concurrency'))).toBe(changes[i]!.concurrency);
        expect(await dot.locator('title').textContent()).toContain(changes[i]!.message);
      }
      // The step line starts at the ceiling (top of the plot) and ends at the last change's
      // level: its first point is higher on the page than its last.
      const d = (await page.getAttribute('[data-testid="pace-concurrency"]', 'd'))!;
      const ys = [...d.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
      expect(ys.length).toBe(changes.length + 1);
      expect(ys[0]!).toBeLessThan(ys.at(-1)!);
      // The line is drawn inside the plot, and no rate line when the pace never limited the rate.
      const box = (await svg.boundingBox())!;
      const path = (await page.locator('[data-testid="pace-concurrency"]').boundingBox())!;
      expect(path.x).toBeGreaterThanOrEqual(box.x);
      expect(path.x + path.width).toBeLessThanOrEqual(box.x + box.width);
      expect(await page.locator('[data-testid="pace-rate"]').count()).toBe(0);
      const text = await page.textContent('[data-testid="pace-line"]');
      expect(text).toContain('concurrency 20 → 4 at the end');
      expect(text).toContain(`why: ${changes[0]!.message}`);
      expect(await page.locator('nav a[href="#pace"]').count()).toBe(1);
      await page.locator('#pace').screenshot({ path: `${ARTIFACTS}report-pace.png` });
    } finally {
      await page.close();
    }
  });

  it('draws the adapted rate on its own axis, and breaks nothing without a pace', async () => {
    const changes: PaceRecord[] = [
      {
        at: 100,
        concurrency: 1,
        ratePerMinute: undefined,
        reason: 'rate_limited',
        message: 'concurrency 20 → 1: target answered 429 without Retry-After',
      },
      {
        at: 900,
        concurrency: 1,
        ratePerMinute: 540,
        reason: 'rate_limited',
        message:
          'rate unlimited → 540/min: target answered 429 without Retry-After at concurrency 1',
      },
      {
        at: 5_000,
        concurrency: 1,
        ratePerMinute: 570,
        reason: 'recovered',
        message: 'rate 540/min → 570/min: answers without a refusal',
      },
    ];
    const pace = htmlPaceOf({ startedAt: 0, clockOffsetMs: 0, finishedAt: 20_000 }, changes, 20)!;
    expect(pace.durationMs).toBe(20_000);
    const builder = new SummaryBuilder();
    builder.add(result({ id: 'ok-1' }));
    const summary = builder.build(META);
    const dir = await tempFiles();
    const { html } = await writeReports(dir, ['html'], summary, () => [], { html: { pace } });
    const plain = await writeReports(await tempFiles(), ['html'], summary, () => []);
    const page = await browser.newPage();
    try {
      await page.goto(pathToFileURL(html!).href);
      const d = (await page.getAttribute('[data-testid="pace-rate"]', 'd'))!;
      // No rate before the pace limited it: the line starts at the second change (900 ms).
      expect(d.match(/M/g)!.length).toBe(1);
      expect(await page.getAttribute('[data-testid="pace-change"] >> nth=2', 'data-rate')).toBe(
        '570',
      );
      await page.goto(pathToFileURL(plain.html!).href);
      expect(await page.locator('#pace').count()).toBe(0);
    } finally {
      await page.close();
    }
  });
});
