import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError, isStrideError } from '../../src/core/errors.js';
import type { TestResult } from '../../src/report/convert.js';
import {
  JsonlStreamWriter,
  parseReportFormats,
  REPORT_FILES,
  REPORT_FORMATS,
  writeJson,
  writeJsonl,
  writeReport,
  writeReports,
} from '../../src/report/index.js';
import { SummaryBuilder } from '../../src/report/summary.js';
import { removeTempDirs, tempFiles } from '../plans/helpers.js';
import { META, result } from './helpers.js';

afterEach(removeTempDirs);

function summaryOf(results: readonly TestResult[]) {
  const b = new SummaryBuilder();
  for (const r of results) b.add(r);
  return b.build(META);
}

const RESULTS = [
  result({ id: 'a', dataset: 'refunds', inputs: { q: 'héllo\n"x"' }, outputs: { answer: 'ok' } }),
  result({
    id: 'b',
    status: 'failed',
    errorCode: 'TASK_FAILED',
    errorMessage: 'nope',
    outputs: 'plain text',
    tags: ['t1'],
    repeatIndex: 3,
    assertions: [{ type: 'equals', passed: false, message: 'nope', expected: 1, actual: 2 }],
  }),
  result({ id: 'c', cancelled: true }),
];

describe('JSONL report', () => {
  it('writes one JSON object per line, timestamps as ISO strings, unknowns as null', async () => {
    const dir = await tempFiles();
    const path = join(dir, 'results.jsonl');
    await writeJsonl(path, summaryOf(RESULTS), () => RESULTS);
    const text = await readFile(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const [a, b, c] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(a).toMatchObject({
      executionId: 'a',
      workflowId: 'support-bot',
      timestamp: '2024-05-01T12:00:05.000Z',
      status: 'success',
      dataset: 'refunds',
      inputs: { q: 'héllo\n"x"' },
      outputs: { answer: 'ok' },
      errorMessage: null,
      metadata: { errorCode: null, repeatIndex: null, taskStatus: 'succeeded', attemptCount: 1 },
    });
    expect(b).toMatchObject({
      status: 'failed',
      outputs: 'plain text',
      dataset: null,
      metadata: { errorCode: 'TASK_FAILED', tags: ['t1'], repeatIndex: 3 },
      assertions: [{ type: 'equals', passed: false, message: 'nope', expected: 1, actual: 2 }],
    });
    expect(c).toMatchObject({ metadata: { taskStatus: 'cancelled', cancelReason: 'user' } });
    // the same keys on every line
    expect(Object.keys(a!)).toEqual(Object.keys(b!));
  });

  it('survives outputs JSON.stringify cannot handle (BigInt, cycles)', async () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const odd = [
      result({ id: 'big', outputs: { n: 10n } }),
      result({ id: 'cyc', outputs: cyclic }),
    ];
    const dir = await tempFiles();
    const path = join(dir, 'results.jsonl');
    await writeJsonl(path, summaryOf(odd), () => odd);
    const [big, cyc] = (await readFile(path, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { outputs: unknown });
    expect(big!.outputs).toEqual({ n: '10' });
    expect(cyc!.outputs).toEqual({ name: 'loop', self: '[Circular]' });
  });

  it('JsonlStreamWriter streams with backpressure and closes cleanly', async () => {
    const dir = await tempFiles();
    const path = join(dir, 'live.jsonl');
    const out = await JsonlStreamWriter.open(path);
    const big = 'x'.repeat(20_000);
    // The underlying stream, to observe its buffer (not part of the API).
    const stream = (out as unknown as { sink: { stream: import('node:fs').WriteStream } }).sink
      .stream;
    const write = stream.write.bind(stream) as (chunk: string) => boolean;
    let full = 0;
    (stream as unknown as { write: (chunk: string) => boolean }).write = (chunk) => {
      const ok = write(chunk);
      if (!ok) full++;
      return ok;
    };
    for (let i = 0; i < 500; i++) {
      await out.write(result({ id: `c${i}`, outputs: big }));
      // An awaited write never returns while the stream still asks for a drain.
      expect(stream.writableNeedDrain).toBe(false);
    }
    // 10 MB through a 16 KB buffer: the stream did push back, and was waited for.
    expect(full).toBeGreaterThan(0);
    expect(out.written).toBe(500);
    await out.close();
    await out.close(); // idempotent
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(500);
    expect((JSON.parse(lines[499]!) as { executionId: string }).executionId).toBe('c499');
    await expect(out.write(result())).rejects.toMatchObject({ code: 'INVALID_STATE' });
    // A file that cannot be opened is named, with the reason in words (REPORT_IO).
    const missing = join(dir, 'missing', 'x.jsonl');
    await expect(JsonlStreamWriter.open(missing)).rejects.toMatchObject({
      code: 'REPORT_IO',
      message: `cannot write ${missing}: no such file or folder (ENOENT)`,
    });
  });
});

describe('JSON report', () => {
  it('writes { summary, results } that parses back to the same values', async () => {
    const dir = await tempFiles();
    const path = join(dir, 'results.json');
    const summary = summaryOf(RESULTS);
    let reads = 0;
    await writeJson(path, summary, () => {
      reads++;
      return RESULTS;
    });
    expect(reads).toBe(1);
    const doc = JSON.parse(await readFile(path, 'utf8')) as {
      summary: unknown;
      results: { executionId: string; timestamp: string }[];
    };
    expect(doc.summary).toEqual(JSON.parse(JSON.stringify(summary)));
    expect(doc.results.map((r) => r.executionId)).toEqual(['a', 'b', 'c']);
    expect(doc.results[0]!.timestamp).toBe('2024-05-01T12:00:05.000Z');
  });

  it('is valid JSON with an empty results array', async () => {
    const dir = await tempFiles();
    const path = join(dir, 'results.json');
    await writeJson(path, summaryOf([]), () => []);
    const doc = JSON.parse(await readFile(path, 'utf8')) as {
      summary: { total: number };
      results: unknown[];
    };
    expect(doc.results).toEqual([]);
    expect(doc.summary.total).toBe(0);
  });
});

describe('parseReportFormats and writeReports', () => {
  it('parses a comma list, ignoring case, spaces and duplicates', () => {
    expect(parseReportFormats('junit,html')).toEqual(['junit', 'html']);
    expect(parseReportFormats(' HTML , jsonl,html,')).toEqual(['html', 'jsonl']);
    expect(parseReportFormats(REPORT_FORMATS.join(','))).toEqual([...REPORT_FORMATS]);
  });

  it('names the bad value and the allowed ones', () => {
    let error: unknown;
    try {
      parseReportFormats('junit,xml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(isStrideError(error) && error.code).toBe('INVALID_OPTION');
    expect((error as Error).message).toBe(
      'invalid option report format: "xml" (expected one of jsonl, json, csv, junit, html)',
    );
    expect(() => parseReportFormats(' , ')).toThrow(/comma-separated list of one of jsonl/);
  });

  it('creates the directory and writes every format under its file name', async () => {
    const dir = join(await tempFiles(), 'nested', 'reports');
    const paths = await writeReports(dir, REPORT_FORMATS, summaryOf(RESULTS), () => RESULTS);
    expect(paths).toEqual(
      Object.fromEntries(REPORT_FORMATS.map((f) => [f, join(dir, REPORT_FILES[f])])),
    );
    expect((await readdir(dir)).sort()).toEqual(
      ['junit.xml', 'report.html', 'results.csv', 'results.json', 'results.jsonl'].sort(),
    );
    expect(await readFile(paths.html!, 'utf8')).toContain('<!doctype html>');
    const only = await writeReports(dir, ['csv'], summaryOf(RESULTS), () => RESULTS);
    expect(only).toEqual({ csv: join(dir, 'results.csv') });
    // one format to a path of its own, its folder created
    const own = join(dir, 'ci', 'out.xml');
    expect(await writeReport('junit', own, summaryOf(RESULTS), () => RESULTS)).toBe(own);
    expect(await readFile(own, 'utf8')).toContain('<testsuites name="support-bot"');
  });

  it('leaves the previous file and no temporary file behind when the source fails', async () => {
    const dir = await tempFiles();
    const path = join(dir, 'results.json');
    await writeFile(path, 'previous');
    async function* failing() {
      yield RESULTS[0]!;
      throw new Error('store went away');
    }
    await expect(writeJson(path, summaryOf(RESULTS), failing)).rejects.toThrow('store went away');
    expect(await readFile(path, 'utf8')).toBe('previous');
    expect(await readdir(dir)).toEqual(['results.json']);
  });
});
