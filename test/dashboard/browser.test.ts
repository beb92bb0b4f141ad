/**
 * The dashboard in headless Chromium (Debian's chromium, driven by playwright-core), with real
 * processes: `stride run` against the mock in one child, `stride serve` in another. The run
 * page's done count rises without a reload; its Pause button stops new starts at the mock (the
 * mock's request count equals the attempts the paused run recorded, and stays so: an invariant,
 * not a timed race), Resume continues, Cancel ends the run cancelled and its process exits 130;
 * the compare page lists the regressions of two seeded runs; an output holding `<script>` is
 * shown as text and never runs; off loopback without the token the page is a 401. Screenshots of
 * each page are kept in test-artifacts/.
 */

import { cpSync, mkdtempSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type Child, spawnStride } from '../cli/helpers.js';
import { startRedis } from '../distributed/redis.js';
import { until } from '../runner/child-run.js';
import { call, planOnMock, type Served, serve, stop, tokenOf } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const KEY = 'app-dashboard-browser';
const XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';
const CASES = 2_000;
const EXAMPLES = fileURLToPath(new URL('../../examples/actions/', import.meta.url));

let mock: MockServer;
/** Mocks started by a test for itself (closed after the file). */
const mocks: MockServer[] = [];
let browser: Browser;
const children: Child[] = [];
const served: Served[] = [];

beforeAll(async () => {
  mock = await startMock({ apiKeys: [KEY], latencyMs: 10 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  await mkdir(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  for (const s of served) s.child.kill('SIGINT');
  for (const c of children) c.kill('SIGKILL');
  await Promise.all([...children, ...served.map((s) => s.child)].map((c) => c.exited));
  await Promise.all([mock, ...mocks].map((m) => m.close()));
});

function run(plan: string, db: string, id: string, cwd: string): Child {
  const child = spawnStride(
    ['run', plan, '--db', db, '--run-id', id, '--out', `${cwd}/out-${id}`, '--no-progress'],
    { cwd, env: {} },
  );
  children.push(child);
  return child;
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // A page script error fails the test: the dashboard must run clean.
  page.on('pageerror', (e) => {
    throw e;
  });
  return page;
}

// One Chromium for the file, a page per test. The tests run side by side (own folder, journal
// and served child each); the live-run test counts requests at its mock, so it has its own.
describe.concurrent('the dashboard in Chromium', () => {
  test('live run page: counts rise, Pause stops new starts, Resume continues, Cancel exits 130; compare lists regressions; <script> is text', async () => {
    const mock = await startMock({ apiKeys: [KEY], latencyMs: 10 });
    mocks.push(mock);
    // Two seeded runs of one plan: the head breaks every third case (its output is XSS).
    const base = planOnMock('seeded', mock.baseUrl, KEY, 30, { expect: 'question' });
    const head = planOnMock('seeded', mock.baseUrl, KEY, 30, {
      expect: 'question',
      output: (i) => (i % 3 === 0 ? XSS : undefined),
    });
    const db = base.db;
    expect(await run(base.plan, db, 'S1', base.dir).exited).toBe(0);
    expect(await run(head.plan, db, 'S2', head.dir).exited).toBe(1);
    const seeded = mock.stats().requests; // the seeded runs' requests
    const live = planOnMock('live', mock.baseUrl, KEY, CASES, { concurrency: 2 });
    const child = run(live.plan, db, 'L', live.dir);
    const s = await serve(db);
    served.push(s);
    const api = `${s.url}api/runs/L`;
    await until(
      'the live run to be driven',
      async () => {
        const r = await call(api);
        return r.status === 200 && r.body.driven === true && r.body.progress.done > 0;
      },
      child,
    );

    // Runs page: every run, the live one running.
    const page = await newPage();
    await page.goto(s.url);
    await page.locator('[data-testid=run-row][data-run-id=L]').waitFor();
    expect(await page.locator('[data-testid=run-row]').count()).toBe(3);
    expect(await page.locator('[data-run-id=L] [data-testid=run-status]').textContent()).toBe(
      'running',
    );
    await page.screenshot({ path: `${ARTIFACTS}dashboard-runs.png`, fullPage: true });

    // Run page: the done count rises with no reload (the event stream pushes it).
    await page.goto(`${s.url}runs/L`);
    const done = page.locator('[data-testid=progress-done]');
    await done.waitFor();
    const count = async () => Number((await done.textContent())?.replace(/,/g, ''));
    const before = await count();
    await page.waitForFunction(
      (n) =>
        Number(
          document.querySelector('[data-testid=progress-done]')?.textContent?.replace(/,/g, ''),
        ) > n,
      before,
      { timeout: 60_000 },
    );
    expect(await count()).toBeGreaterThan(before);
    // Latency over time: a second uPlot chart from the live samples' latencies.
    await page.locator('[data-testid=latency-chart] canvas').waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-testid=latency-chart]').textContent()).toContain('p90 ms');

    // Pause: taken by the run's process; once in-flight attempts settle nothing starts.
    await page.getByTestId('pause-button').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid=run-status]')?.textContent === 'paused',
      undefined,
      { timeout: 60_000 },
    );
    expect(await page.getByTestId('held-by').textContent()).toContain(
      'paused by dashboard 127.0.0.1',
    );
    expect(await page.getByTestId('resume-button').isEnabled()).toBe(true);
    expect(await page.getByTestId('pause-button').isEnabled()).toBe(false);
    const view = (await call(api)).body;
    expect(view.shownStatus).toBe('paused');
    const requests = mock.stats().requests;
    expect(view.live.state.counts.attempts).toBe(requests - seeded);
    expect(view.live.state.inFlight).toBe(0);
    // Two more live writes of the paused child (once a second, from the loop that takes control
    // requests): still nothing new at the mock, and no case ended in those samples: their
    // latency is absent (a gap in the chart), never 0.
    let writes = 0;
    let last = view.live.updatedAt;
    await until(
      'two more live writes of the paused run',
      async () => {
        const at = (await call(api)).body.live.updatedAt;
        if (at > last) {
          writes++;
          last = at;
        }
        return writes >= 2;
      },
      child,
    );
    expect(mock.stats().requests).toBe(requests);
    const paused = (await call(api)).body.live.state.samples;
    expect(paused.at(-1).latency).toBeUndefined();
    expect(
      paused.some(
        (x: { latency?: { p50: number; p90: number; n: number } }) =>
          x.latency !== undefined &&
          x.latency.n > 0 &&
          x.latency.p50 >= 10 &&
          x.latency.p50 <= x.latency.p90,
      ),
    ).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-run-paused.png`, fullPage: false });

    await page.getByTestId('resume-button').click();
    await until('new starts after Resume', () => mock.stats().requests > requests + 10, child);
    await page.waitForFunction(
      () => document.querySelector('[data-testid=run-status]')?.textContent === 'running',
      undefined,
      { timeout: 60_000 },
    );

    page.once('dialog', (d) => void d.accept());
    await page.getByTestId('cancel-button').click();
    expect(await child.exited).toBe(130);
    await page.waitForFunction(
      () => document.querySelector('[data-testid=run-status]')?.textContent === 'cancelled',
      undefined,
      { timeout: 60_000 },
    );
    expect((await call(api)).body.status).toBe('cancelled');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-run.png`, fullPage: false });

    // A case whose output is markup: shown as text, never run.
    await page.goto(`${s.url}runs/S2`);
    await page.getByTestId('case-search').fill('k3');
    await page.locator('[data-testid=case-row][data-case-id=k3]').click();
    const answer = page.getByTestId('case-answer');
    await answer.waitFor();
    expect(await answer.textContent()).toBe(XSS);
    expect(
      await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
    expect(await page.locator('main script, main img').count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-case.png`, fullPage: true });

    // Compare: the head's ten broken cases, regressions first.
    await page.goto(`${s.url}?plan=seeded`);
    await page.locator('[data-run-id=S1] input[type=checkbox]').check();
    await page.locator('[data-run-id=S2] input[type=checkbox]').check();
    await page.getByTestId('compare-button').click();
    await page.getByTestId('regressions-table').waitFor();
    const rows = page.locator('[data-testid=regression-row]');
    expect(await rows.count()).toBe(10);
    const ids = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-case-id')));
    expect(new Set(ids)).toEqual(
      new Set(['k0', 'k3', 'k6', 'k9', 'k12', 'k15', 'k18', 'k21', 'k24', 'k27']),
    );
    // Regressions come before every other list.
    const first = await page.locator('main h2').first().textContent();
    expect(first).toBe('Regressions (10)');
    expect(await page.getByTestId('compare-verdict').textContent()).toContain(
      'significant regression',
    );
    await rows.first().click();
    expect(await page.locator('main').textContent()).toContain(XSS);
    expect(
      await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
    await page.screenshot({ path: `${ARTIFACTS}dashboard-compare.png`, fullPage: true });
    await page.close();
    expect(await stop(s)).toBe(0);
  }, 300_000);

  test('action run page: the step graph and the rollback; the case table by dataset and tag; the workers view with --redis', async () => {
    const redis = await startRedis();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'stride-dash-browser-steps-'));
      cpSync(join(EXAMPLES, 'rollback'), join(dir, 'rollback'), { recursive: true });
      const db = join(dir, 'stride.db');
      const action = spawnStride(
        ['run', 'rollback/plan.yaml', '--db', db, '--run-id', 'A', '--no-progress'],
        { cwd: dir, env: {} },
      );
      children.push(action);
      expect(await action.exited).toBe(1);
      const p = planOnMock('browser-filters', mock.baseUrl, KEY, 12, {
        fields: (i) => ({
          dataset: i % 2 === 0 ? 'refunds' : 'billing',
          tags: i % 3 === 0 ? ['slow'] : [],
        }),
      });
      expect(await run(p.plan, db, 'D', p.dir).exited).toBe(0);
      const s = await serve(db, ['--redis', redis.url]);
      served.push(s);
      const page = await newPage();

      await page.goto(`${s.url}runs/A`);
      await page.getByTestId('step-graph').waitFor();
      const nodes = page.locator('[data-testid=step-node]');
      expect(await nodes.count()).toBe(4);
      expect(
        await page
          .locator('[data-step-id=register][data-testid=step-node]')
          .getAttribute('data-state'),
      ).toBe('error');
      expect(
        await page.locator('[data-step-id=register][data-testid=step-node]').textContent(),
      ).toContain('after config, quota, welcome');
      await page.locator('[data-testid=compensation-row]').first().waitFor();
      const undone = await page
        .locator('[data-testid=compensation-row]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-step-id')).sort());
      expect(undone).toEqual(['config', 'quota']);
      expect(await page.getByTestId('rollback-status').textContent()).toBe('completed');
      // The workers view of --redis: no worker on this queue.
      expect(await page.getByTestId('workers-alive').textContent()).toBe('0');
      expect(await page.getByTestId('jobs-waiting').textContent()).toBe('0');
      await page.screenshot({ path: `${ARTIFACTS}dashboard-steps.png`, fullPage: true });

      await page.goto(`${s.url}runs/D`);
      await page.locator('[data-testid=case-row]').first().waitFor();
      expect(await page.locator('[data-testid=case-row]').count()).toBe(12);
      await page.getByTestId('case-dataset').fill('billing');
      await page.waitForFunction(
        () => document.querySelectorAll('[data-testid=case-row]').length === 6,
        undefined,
        { timeout: 30_000 },
      );
      await page.getByTestId('case-tag').fill('slow');
      await page.waitForFunction(
        () => document.querySelectorAll('[data-testid=case-row]').length === 2,
        undefined,
        { timeout: 30_000 },
      );
      const shown = await page
        .locator('[data-testid=case-row]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-case-id')).sort());
      expect(shown).toEqual(['k3', 'k9']);
      await page.screenshot({ path: `${ARTIFACTS}dashboard-case-filters.png`, fullPage: true });
      await page.close();
      expect(await stop(s)).toBe(0);
    } finally {
      await redis.stop();
    }
  }, 180_000);

  test('off loopback without the token the page is a 401', async () => {
    const p = planOnMock('token-page', mock.baseUrl, KEY, 2);
    expect(await run(p.plan, p.db, 'T', p.dir).exited).toBe(0);
    const s = await serve(p.db, ['--host', '0.0.0.0']);
    served.push(s);
    const local = s.url.replace('0.0.0.0', '127.0.0.1');
    const page = await newPage();
    const res = await page.goto(local);
    expect(res?.status()).toBe(401);
    const token = await tokenOf(s);
    const ok = await page.goto(`${local}?token=${token}`);
    expect(ok?.status()).toBe(200);
    expect(page.url()).toBe(local); // the token left the address bar
    await page.locator('[data-testid=run-row][data-run-id=T]').waitFor();
    await page.close();
    expect(await stop(s)).toBe(0);
  }, 120_000);
});
