import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CsvParser } from '../../src/plans/csv.js';
import type { TestResult } from '../../src/report/convert.js';
import { CSV_COLUMNS, csvField, writeCsv } from '../../src/report/csv.js';
import { SummaryBuilder } from '../../src/report/summary.js';
import { removeTempDirs, tempFiles } from '../plans/helpers.js';
import { META, parseCsv, result } from './helpers.js';

afterEach(removeTempDirs);

const TRICKY = [
  'plain',
  'a, comma',
  'say "hi"',
  'two\nlines',
  'crlf\r\nline',
  'lone\rcr',
  '"',
  '""',
  ',',
  '',
  ' leading and trailing ',
  'unicode: é 日本語 🎉 \u2028',
];

async function writeAndRead(results: readonly TestResult[], formulaGuard?: boolean) {
  const dir = await tempFiles();
  const path = join(dir, 'results.csv');
  const b = new SummaryBuilder();
  for (const r of results) b.add(r);
  await writeCsv(
    path,
    b.build(META),
    () => results,
    formulaGuard === undefined ? {} : { formulaGuard },
  );
  const text = await readFile(path, 'utf8');
  const rows = parseCsv(text);
  const header = rows[0]!;
  const records = rows.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
  return { text, rows, header, records };
}

describe('CSV report', () => {
  it('writes the header and one row per result, every column filled', async () => {
    const { header, records, text, rows } = await writeAndRead([
      result({
        id: 'refund-1#2',
        dataset: 'refunds',
        status: 'failed',
        seconds: 1.25,
        tokens: 42,
        cost: 0.0031,
        attempts: 2,
        errorCode: 'TASK_FAILED',
        errorMessage: 'output does not contain "refund"',
        inputs: { query: 'refund please', n: 3 },
        outputs: { answer: 'no' },
        tags: ['smoke', 'billing'],
        repeatIndex: 2,
        assertions: [
          { type: 'contains', passed: false, message: 'output does not contain "refund"' },
          { type: 'is_json', passed: true, message: 'output is JSON' },
          { type: 'regex', passed: false, message: 'output does not match /x/' },
        ],
        score: 0.25,
      }),
      result({ id: 'ok' }),
    ]);
    expect(header).toEqual([...CSV_COLUMNS]);
    expect(text.split('\r\n')[0]).toBe(CSV_COLUMNS.join(','));
    expect(text.endsWith('\r\n')).toBe(true);
    expect(rows.every((r) => r.length === CSV_COLUMNS.length)).toBe(true);
    expect(records[0]).toEqual({
      id: 'refund-1#2',
      dataset: 'refunds',
      status: 'failed',
      task_status: 'failed',
      cancel_reason: '',
      attempts: '2',
      execution_time_s: '1.25',
      tokens: '42',
      cost: '0.0031',
      score: '0.25',
      error_code: 'TASK_FAILED',
      error_message: 'output does not contain "refund"',
      inputs: '{"query":"refund please","n":3}',
      outputs: '{"answer":"no"}',
      failed_assertions: 'output does not contain "refund"; output does not match /x/',
      tags: 'smoke|billing',
      repeat_index: '2',
      timestamp: '2024-05-01T12:00:05.000Z',
    });
    expect(records[1]).toMatchObject({
      id: 'ok',
      dataset: 'default',
      status: 'success',
      error_code: '',
      error_message: '',
      score: '',
      outputs: '',
      repeat_index: '',
    });
  });

  it('round-trips commas, quotes, CR/LF and unicode (RFC 4180)', async () => {
    const results = TRICKY.map((s, i) =>
      result({
        id: `id ${i} ${s}`,
        dataset: s === '' ? 'empty' : s,
        errorMessage: s,
        status: 'error',
        inputs: { text: s },
        outputs: s,
        tags: [s, 'x'],
      }),
    );
    const { records, text } = await writeAndRead(results);
    expect(records).toHaveLength(TRICKY.length);
    TRICKY.forEach((s, i) => {
      const r = records[i]!;
      expect(r.id).toBe(`id ${i} ${s}`);
      expect(r.error_message).toBe(s);
      expect(r.dataset).toBe(s === '' ? 'empty' : s);
      expect(JSON.parse(r.inputs!)).toEqual({ text: s });
      expect(JSON.parse(r.outputs!)).toBe(s);
      expect(r.tags).toBe(`${s}|x`);
    });
    // The CSV reader of the plans layer (another implementation) agrees.
    const parser = new CsvParser();
    const records2 = [...parser.push(text), ...parser.end()].map((r) => r.fields);
    expect(records2).toEqual(parseCsv(text));
  });

  it('guards cells a spreadsheet would run as formulas, and only text cells', async () => {
    const evil = ['=HYPERLINK("http://x","click")', '+1+1', '-2+3', '@SUM(A1)', '\tTAB', '\rCR'];
    const results = evil.map((s) =>
      result({ id: s, errorMessage: s, status: 'error', tags: [s], outputs: -5 }),
    );
    const { records } = await writeAndRead(results);
    evil.forEach((s, i) => {
      const r = records[i]!;
      expect(r.id).toBe(`'${s}`);
      expect(r.error_message).toBe(`'${s}`);
      expect(r.tags).toBe(`'${s}`);
      // a negative number output is JSON text starting with "-": guarded too (documented)
      expect(r.outputs).toBe("'-5");
    });
    // numbers the report writes itself are never prefixed
    expect(records[0]!.attempts).toBe('1');
    // off: the raw values
    const raw = await writeAndRead(results, false);
    evil.forEach((s, i) => {
      expect(raw.records[i]!.id).toBe(s);
    });
    // an inner "=" is harmless and kept as is
    expect(csvField('a=b')).toBe('a=b');
    expect(csvField('=a,b')).toBe(`"'=a,b"`);
    expect(csvField('say "x"')).toBe('"say ""x"""');
  });

  it('writes only the header for no results', async () => {
    const { rows } = await writeAndRead([]);
    expect(rows).toEqual([[...CSV_COLUMNS]]);
  });
});
