import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestResult } from '../../src/report/convert.js';
import { writeJunit } from '../../src/report/junit.js';
import { SummaryBuilder } from '../../src/report/summary.js';
import { escapeXml, escapeXmlAttr, stripInvalidXml } from '../../src/report/text.js';
import { removeTempDirs, tempFiles } from '../plans/helpers.js';
import { META, result } from './helpers.js';

afterEach(removeTempDirs);

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  // Decode numeric character references (&#10;), as every XML 1.0 reader does.
  htmlEntities: true,
  isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name),
});

async function junitOf(results: readonly TestResult[]) {
  const dir = await tempFiles();
  const path = join(dir, 'junit.xml');
  const b = new SummaryBuilder();
  for (const r of results) b.add(r);
  let reads = 0;
  const summary = b.build(META);
  await writeJunit(path, summary, function* () {
    reads++;
    yield* results;
  });
  const xml = await readFile(path, 'utf8');
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = parser.parse(xml) as { testsuites: Node & { testsuite: Node[] } };
  return { xml, doc, root: doc.testsuites, reads, summary };
}

const RESULTS = [
  result({ id: 'r1', dataset: 'refunds', seconds: 0.25 }),
  result({
    id: 'r2',
    dataset: 'refunds',
    status: 'failed',
    seconds: 1.5,
    errorCode: 'TASK_FAILED',
    errorMessage: 'answer is "no", expected "refund"',
    inputs: { query: 'refund please' },
    outputs: { answer: 'no' },
    assertions: [
      {
        type: 'equals',
        passed: false,
        message: 'field answer is "no", expected "refund"',
        expected: 'refund',
        actual: 'no',
      },
      { type: 'is_json', passed: true, message: 'output is JSON' },
      { type: 'contains', passed: false, message: 'output does not contain "sorry"' },
    ],
  }),
  result({ id: 'r3', dataset: 'refunds', status: 'timeout', errorCode: 'TIMEOUT', attempts: 2 }),
  result({
    id: 's1',
    dataset: 'smalltalk',
    status: 'error',
    errorCode: 'HTTP_ERROR',
    errorMessage: 'HTTP 400: invalid_param',
  }),
  result({ id: 's2', dataset: 'smalltalk', cancelled: true }),
  result({ id: 's3#2', dataset: 'smalltalk', repeatIndex: 2 }),
  result({ id: 's4', dataset: 'smalltalk', repeatIndex: 1 }),
  result({ id: 'x', status: 'failed', errorMessage: 'the stub said no' }),
];

describe('JUnit report', () => {
  it('has one suite per dataset with the right counts, and the totals on <testsuites>', async () => {
    const { root, reads } = await junitOf(RESULTS);
    expect(root.name).toBe('support-bot');
    expect([root.tests, root.failures, root.errors, root.skipped]).toEqual(['8', '2', '2', '1']);
    expect(root.time).toBe('90.000');
    expect(root.timestamp).toBe('2024-05-01T12:00:00');
    const suites = root.testsuite;
    expect(suites.map((s) => [s.name, s.tests, s.failures, s.errors, s.skipped])).toEqual([
      ['default', '1', '1', '0', '0'],
      ['refunds', '3', '1', '1', '0'],
      ['smalltalk', '4', '0', '1', '1'],
    ]);
    // one read of the source for all suites (each suite's cases are kept aside, issue #15 item 6)
    expect(reads).toBe(1);
    // every suite lists exactly its own cases, and the counts match the children
    for (const suite of suites) {
      const cases = suite.testcase as Node[];
      expect(cases).toHaveLength(Number(suite.tests));
      expect(cases.filter((c) => 'failure' in c)).toHaveLength(Number(suite.failures));
      expect(cases.filter((c) => 'error' in c)).toHaveLength(Number(suite.errors));
      expect(cases.filter((c) => 'skipped' in c)).toHaveLength(Number(suite.skipped));
      for (const c of cases) expect(c.classname).toBe(`support-bot.${suite.name}`);
    }
    const refunds = suites[1]!.testcase as Node[];
    expect(refunds.map((c) => [c.name, c.time])).toEqual([
      ['r1', '0.250'],
      ['r2', '1.500'],
      ['r3', '0.500'],
    ]);
    expect(suites[1]!.time).toBe('2.250');
  });

  it('maps failed, error, timeout and cancelled cases to failure, error and skipped', async () => {
    const { root } = await junitOf(RESULTS);
    const byName = new Map(
      root.testsuite.flatMap((s) => (s.testcase as Node[]).map((c) => [c.name as string, c])),
    );
    const failure = byName.get('r2')!.failure as Node;
    expect(failure.type).toBe('assertion');
    // the message holds every failed assertion's message, the body expected and actual
    expect(failure.message).toBe(
      'field answer is "no", expected "refund"; output does not contain "sorry"',
    );
    const body = failure['#text'] as string;
    expect(body).toContain('- [equals] field answer is "no", expected "refund"');
    expect(body).toContain('expected: refund');
    expect(body).toContain('actual:   no');
    expect(body).toContain('inputs: {\n  "query": "refund please"\n}');
    expect(body).not.toContain('output is JSON'); // a passed assertion is not a failure
    // a failed case without assertions: the error message
    expect((byName.get('x')!.failure as Node).message).toBe('the stub said no');
    expect(byName.get('r3')!.error).toMatchObject({ type: 'TIMEOUT' });
    expect(byName.get('s1')!.error).toMatchObject({
      type: 'HTTP_ERROR',
      message: 'HTTP 400: invalid_param',
    });
    expect(byName.get('s2')!.skipped).toMatchObject({ message: 'cancelled (user)' });
    expect(byName.get('r1')).toEqual({
      classname: 'support-bot.refunds',
      name: 'r1',
      time: '0.250',
    });
    // a repeat index is shown once: appended when the id lacks it
    expect(byName.has('s3#2')).toBe(true);
    expect(byName.has('s4#1')).toBe(true);
    // a timeout without an error code is typed "timeout"
    const { root: r2 } = await junitOf([result({ id: 't', status: 'timeout' })]);
    expect((r2.testsuite[0]!.testcase as Node[])[0]!.error).toMatchObject({ type: 'timeout' });
  });

  it('escapes nasty strings and drops characters XML 1.0 forbids', async () => {
    const nasty = `<&>"' ]]> <![CDATA[x]]> &amp; \u0000nul\u0008bs\u000bvt\u001f \uD800lone \uDC00low 🎉 \uFFFE\uFFFF`;
    const kept = `<&>"' ]]> <![CDATA[x]]> &amp; nulbsvt lone low 🎉 `;
    expect(stripInvalidXml(nasty)).toBe(kept);
    const { xml, root } = await junitOf([
      result({
        id: nasty,
        dataset: nasty,
        status: 'failed',
        errorMessage: `line one\nline two\ttab ${nasty}`,
        outputs: nasty,
        assertions: [
          {
            type: 'equals',
            passed: false,
            message: `multi\nline ${nasty}`,
            expected: nasty,
            actual: 'x',
          },
        ],
      }),
      result({
        id: 'e',
        dataset: nasty,
        status: 'error',
        errorCode: '<code&>',
        errorMessage: nasty,
      }),
    ]);
    expect(xml).not.toContain('\u0000');
    expect(xml).not.toMatch(/[\uD800-\uDFFF](?![\uDC00-\uDFFF])/u);
    const suite = root.testsuite[0]!;
    expect(suite.name).toBe(kept);
    const [failed, errored] = suite.testcase as [Node, Node];
    expect(failed.name).toBe(kept);
    expect(failed.classname).toBe(`support-bot.${kept}`);
    // newlines inside an attribute survive as character references
    expect((failed.failure as Node).message).toBe(`multi\nline ${kept}`);
    expect((failed.failure as Node)['#text']).toContain(`expected: ${kept}`);
    expect(errored.error).toMatchObject({ type: '<code&>', message: kept });
    // the escapers themselves
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
    expect(escapeXmlAttr('a\tb\nc\rd')).toBe('a&#9;b&#10;c&#13;d');
    expect(escapeXml('a\tb\nc')).toBe('a\tb\nc');
  });

  it('writes an empty <testsuites> for no results', async () => {
    const { root } = await junitOf([]);
    expect([root.tests, root.failures, root.errors, root.skipped]).toEqual(['0', '0', '0', '0']);
    expect(root.testsuite).toBeUndefined();
  });
});
