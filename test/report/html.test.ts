import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestResult } from '../../src/report/convert.js';
import { lineDiff } from '../../src/report/diff.js';
import { HTML_MAX_FAILURES, writeHtml } from '../../src/report/html.js';
import { SummaryBuilder } from '../../src/report/summary.js';
import { escapeHtml } from '../../src/report/text.js';
import { removeTempDirs, tempFiles } from '../plans/helpers.js';
import { META, result } from './helpers.js';

afterEach(removeTempDirs);

async function htmlOf(
  results: readonly TestResult[],
  options: { maxFailures?: number; command?: string } = {},
): Promise<string> {
  const dir = await tempFiles();
  const path = join(dir, 'report.html');
  const b = new SummaryBuilder();
  for (const r of results) b.add(r);
  const meta = options.command === undefined ? META : { ...META, command: options.command };
  await writeHtml(
    path,
    b.build(meta),
    () => results,
    options.maxFailures === undefined ? {} : { maxFailures: options.maxFailures },
  );
  return readFile(path, 'utf8');
}

/** The data-value of the element with this data-testid. */
function dataValue(html: string, testid: string): string | undefined {
  return new RegExp(`data-testid="${testid}" data-value="([^"]*)"`).exec(html)?.[1];
}

const XSS = '<script>alert(1)</script>';

describe('HTML report', () => {
  it('escapes every value: an answer that is a script tag stays text', async () => {
    const html = await htmlOf(
      [
        result({
          id: `<img src=x onerror=alert(1)>`,
          dataset: `"><script>alert(2)</script>`,
          status: 'failed',
          errorMessage: XSS,
          errorCode: `<b>code</b>`,
          inputs: { query: XSS },
          outputs: XSS,
          assertions: [
            { type: 'equals', passed: false, message: XSS, expected: 'safe', actual: XSS },
          ],
        }),
      ],
      { command: `stride run plan.yaml --note '${XSS}'` },
    );
    // our report has no script of its own, so any <script is an injection
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toContain('<b>code</b>');
    expect(html).toContain(escapeHtml(XSS));
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('data-dataset="&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"');
    // and the policy would block a script even if one got through
    expect(html).toContain(
      `content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`,
    );
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
  });

  it('is self-contained: nothing loaded from the network', async () => {
    const html = await htmlOf([
      result({ id: 'a', outputs: 'see https://example.com/x' }),
      result({ id: 'b', status: 'failed', outputs: '<a href="https://evil.example">x</a>' }),
    ]);
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b|@import|url\(/i);
    expect(html).toContain('<style>');
    expect(html).toContain('<svg');
  });

  it('shows the summary numbers under stable data-testid attributes', async () => {
    const html = await htmlOf(
      [
        result({ id: 'a', tokens: 1200, cost: 0.5 }),
        result({ id: 'b', tokens: 300 }),
        result({ id: 'c', status: 'failed' }),
        result({ id: 'd', status: 'error', errorCode: 'HTTP_ERROR' }),
        result({ id: 'e', status: 'timeout' }),
        result({ id: 'f', cancelled: true }),
      ],
      { command: 'stride run plan.yaml' },
    );
    expect(dataValue(html, 'total')).toBe('6');
    expect(dataValue(html, 'passed')).toBe('2');
    expect(dataValue(html, 'failed')).toBe('1');
    // the cancelled case has its own card, apart from the errors
    expect(dataValue(html, 'errors')).toBe('1');
    expect(dataValue(html, 'cancelled')).toBe('1');
    expect(dataValue(html, 'timeouts')).toBe('1');
    expect(dataValue(html, 'latency-count')).toBe('5');
    expect(Number(dataValue(html, 'pass-rate'))).toBeCloseTo(2 / 6, 12);
    expect(dataValue(html, 'tokens')).toBe('1500');
    expect(dataValue(html, 'cost')).toBe('0.5');
    expect(html).toContain('33.3%');
    expect(html).toContain('<code>stride run plan.yaml</code>');
    expect(html).toContain('Wall time</dt><dd>1 min 30 s');
    expect(html).toContain('Active time</dt><dd>1 min 30 s');
    // the cancelled case is counted but not listed
    expect(dataValue(html, 'failure-count')).toBe('3');
    expect(html.match(/data-testid="failure"/g)).toHaveLength(3);
    expect(html).toContain('1 cancelled case is counted above but not listed');
    expect(html).toContain('data-code="HTTP_ERROR"');
  });

  it('lists failures with inputs, outputs and an expected/actual diff', async () => {
    const html = await htmlOf([
      result({
        id: 'r2',
        status: 'failed',
        inputs: { query: 'refund?' },
        outputs: { answer: 'no', order: 7 },
        assertions: [
          {
            type: 'equals',
            passed: false,
            message: 'output differs',
            expected: { answer: 'yes', order: 7 },
            actual: { answer: 'no', order: 7 },
          },
          { type: 'contains', passed: true, message: 'output contains "o"' },
        ],
      }),
    ]);
    expect(html).toContain('data-case-id="r2"');
    expect(html).toContain('<span class="same">    &quot;order&quot;: 7</span>');
    expect(html).toContain('<span class="del">-   &quot;answer&quot;: &quot;yes&quot;,</span>');
    expect(html).toContain('<span class="add">+   &quot;answer&quot;: &quot;no&quot;,</span>');
    expect(html).toContain('✓ <code>contains</code> output contains &quot;o&quot;');
    expect(html).toContain('&quot;query&quot;: &quot;refund?&quot;');
  });

  it('caps the failure list and says how many were left out', async () => {
    const results = Array.from({ length: 12 }, (_, i) =>
      result({ id: `f${i}`, status: i % 2 === 0 ? 'failed' : 'error' }),
    );
    const html = await htmlOf(results, { maxFailures: 5 });
    const listed = [...html.matchAll(/data-testid="failure" data-case-id="([^"]+)"/g)].map(
      (m) => m[1],
    );
    expect(listed).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    expect(dataValue(html, 'left-out')).toBe('7');
    expect(html).toContain('Showing the first 5; 7 more are not listed here');
    expect(HTML_MAX_FAILURES).toBe(1000);
    // under the cap: no note
    expect(await htmlOf(results)).not.toContain('data-testid="left-out"');
  });

  it('says so when every case passed', async () => {
    const html = await htmlOf([result({ id: 'a' })]);
    expect(html).toContain('All 1 cases passed');
    expect(html).toContain('None. Every judged case passed.');
    expect(html).not.toContain('data-testid="failure"');
  });
});

describe('lineDiff', () => {
  it('marks removed (expected) and added (actual) lines around the common ones', () => {
    expect(lineDiff('a\nb\nc', 'a\nB\nc')).toEqual([
      { op: ' ', text: 'a' },
      { op: '-', text: 'b' },
      { op: '+', text: 'B' },
      { op: ' ', text: 'c' },
    ]);
    expect(lineDiff('x\ny\nz', 'y\nz\nw')).toEqual([
      { op: '-', text: 'x' },
      { op: ' ', text: 'y' },
      { op: ' ', text: 'z' },
      { op: '+', text: 'w' },
    ]);
    expect(lineDiff('same', 'same')).toEqual([{ op: ' ', text: 'same' }]);
  });

  it('keeps every line of both sides, in order (LCS)', () => {
    const a = ['1', '2', '3', '4', '5', '6', '7'];
    const b = ['0', '2', '3', 'x', '5', '7', '8'];
    const d = lineDiff(a.join('\n'), b.join('\n'));
    expect(d.filter((l) => l.op !== '+').map((l) => l.text)).toEqual(a);
    expect(d.filter((l) => l.op !== '-').map((l) => l.text)).toEqual(b);
    expect(d.filter((l) => l.op === ' ').map((l) => l.text)).toEqual(['2', '3', '5', '7']);
  });

  it('falls back to whole sides past the size bound, still complete', () => {
    const a = Array.from({ length: 1000 }, (_, i) => `a${i}`).join('\n');
    const b = Array.from({ length: 1000 }, (_, i) => `b${i}`).join('\n');
    const d = lineDiff(a, b);
    expect(d).toHaveLength(2000);
    expect(d.slice(0, 1000).every((l) => l.op === '-')).toBe(true);
  });
});
