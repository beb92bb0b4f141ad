import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  checkCases,
  deriveCaseId,
  iterateCases,
  loadPlan,
  parsePlan,
  readCases,
  type TestCase,
} from '../../src/plans/index.js';
import { collect, planErrorOfAsync, removeTempDirs, tempFiles } from './helpers.js';

afterAll(removeTempDirs);

const ids = (cases: readonly TestCase[]) => cases.map((c) => c.id);

describe('JSONL', () => {
  test('reads cases line by line: BOM, CRLF, blank lines, defaults, derived ids', async () => {
    const dir = await tempFiles({
      'c.jsonl':
        '\uFEFF{"id": "a", "inputs": {"query": "hi"}, "tags": ["smoke"], "priority": 3, "timeout": "1.5s"}\r\n' +
        '\r\n' +
        '{"inputs": {"query": "derived"}, "scenario": "s1", "expected": {"contains": "x"}}\r\n' +
        '{"id": 42, "inputs": {}, "dataset": "own", "metadata": {"ticket": "T-1"}}',
    });
    const cases = await collect(readCases('c.jsonl', { baseDir: dir, dataset: 'default-ds' }));
    expect(cases).toEqual([
      {
        id: 'a',
        inputs: { query: 'hi' },
        dataset: 'default-ds',
        tags: ['smoke'],
        priority: 3,
        timeoutMs: 1500,
        expected: [],
      },
      {
        id: deriveCaseId({ query: 'derived' }, 'default-ds', 's1'),
        inputs: { query: 'derived' },
        dataset: 'default-ds',
        scenario: 's1',
        tags: [],
        priority: 0,
        expected: [{ type: 'contains', value: 'x' }],
      },
      {
        id: '42',
        inputs: {},
        dataset: 'own',
        tags: [],
        priority: 0,
        expected: [],
        metadata: { ticket: 'T-1' },
      },
    ]);
  });

  test('a derived id is stable: the sha256 of canonical JSON, key order ignored', () => {
    expect(deriveCaseId({ q: 1 })).toBe('3fcdfac0e1b8');
    expect(deriveCaseId({ b: 'é', a: [1, { y: 'z', x: null }] }, 'refunds', 's')).toBe(
      '7ff972706f68',
    );
    expect(deriveCaseId({ a: 1, b: 2 })).toBe(deriveCaseId({ b: 2, a: 1 }));
    expect(deriveCaseId({ a: 1 }, 'x')).not.toBe(deriveCaseId({ a: 1 }, 'y'));
  });

  test('a streaming reader hands out the good cases before a bad line; checkCases reads first', async () => {
    const dir = await tempFiles({
      'plan.yaml': 'workflow_id: wf\ncases: c.jsonl\n',
      'c.jsonl': '{"id": "a"}\n{"id": "b"}\n{"id": "c", "inputs": []}\n',
    });
    const seen: string[] = [];
    const err = await planErrorOfAsync(async () => {
      for await (const c of readCases('c.jsonl', { baseDir: dir })) seen.push(c.id);
    });
    expect(seen).toEqual(['a', 'b']);
    expect(err.message).toBe(
      `${dir}/c.jsonl:3:23: inputs: [] is invalid, expected a mapping (the inputs sent to the target)`,
    );
    // The loader's pre-flight pass reads everything before anything runs.
    const manifest = await loadPlan(join(dir, 'plan.yaml'), { checkCases: false });
    const check = await planErrorOfAsync(() => checkCases(manifest));
    expect(check.message).toBe(err.message);
  });

  test('checkCases reports many bad lines at once', async () => {
    const dir = await tempFiles({
      'plan.yaml': 'workflow_id: wf\ncases: c.jsonl\n',
      'c.jsonl':
        '{"id": "a", "tags": "x"}\nnot json\n{"id": "a"}\n{"id": "b", "priority": "high"}\n',
    });
    const err = await planErrorOfAsync(() => loadPlan(join(dir, 'plan.yaml')));
    expect(err.code).toBe('CASES_INVALID');
    expect(err.message).toBe(
      [
        `${dir}/c.jsonl:1:21: tags: "x" is invalid, expected a list of strings`,
        `${dir}/c.jsonl:2:1: invalid JSON: expected a JSON value, found "n"`,
        `${dir}/c.jsonl:4:25: priority: "high" is invalid, expected an integer`,
      ].join('\n'),
    );
  });
});

describe('CSV', () => {
  test('columns: reserved fields, inputs (typed), metadata, expected_*; RFC 4180 quoting', async () => {
    const dir = await tempFiles({
      'c.csv':
        'id,inputs.query,tone,age:number,vip:boolean,ctx:json,tags,priority,timeout,metadata.owner,expected_contains,expected_is_json,expected_latency_below\r\n' +
        'q1,"Hello, ""world""",warm,42,yes,"{""a"": [1]}",smoke; refund,2,30s,ana,hello,,5s\r\n' +
        'q2,"two\nlines",,,,,,,,,,true,\r\n',
    });
    const cases = await collect(readCases('c.csv', { baseDir: dir }));
    expect(cases).toEqual([
      {
        id: 'q1',
        inputs: { query: 'Hello, "world"', tone: 'warm', age: 42, vip: true, ctx: { a: [1] } },
        tags: ['smoke', 'refund'],
        priority: 2,
        timeoutMs: 30_000,
        expected: [
          { type: 'contains', value: 'hello' },
          { type: 'latency_below', ms: 5000 },
        ],
        metadata: { owner: 'ana' },
      },
      {
        id: 'q2',
        inputs: { query: 'two\nlines', tone: '' },
        tags: [],
        priority: 0,
        expected: [{ type: 'is_json' }],
      },
    ]);
  });

  test('an `expected` column holds the assertions as JSON', async () => {
    const dir = await tempFiles({
      'c.csv':
        'id,query,expected\na,hi,"{""json_path"": {""path"": ""$.ok"", ""equals"": true}}"\nb,ho,\n',
    });
    const cases = await collect(readCases('c.csv', { baseDir: dir }));
    expect(cases.map((c) => c.expected)).toEqual([
      [{ type: 'json_path', path: '$.ok', equals: true }],
      [],
    ]);
  });

  test("expected_field and expected_ignore_case narrow the row's expected_* assertions", async () => {
    const dir = await tempFiles({
      'c.csv':
        'id,query,expected_field,expected_ignore_case,expected_contains,expected_regex\n' +
        'a,hi,text,true,Nine,\\b9\n' +
        'b,ho,answer,,x,\n' +
        'c,hu,text,,,\n' +
        'd,hy,,no,y,\n',
    });
    const cases = await collect(readCases('c.csv', { baseDir: dir }));
    expect(cases.map((c) => c.expected)).toEqual([
      [
        { type: 'contains', value: 'Nine', field: 'text', ignoreCase: true },
        { type: 'regex', pattern: '\\b9', field: 'text', ignoreCase: true },
      ],
      [{ type: 'contains', value: 'x', field: 'answer' }],
      // A field with no assertion in its row narrows nothing.
      [],
      [{ type: 'contains', value: 'y' }],
    ]);
    const bad = await tempFiles({
      'c.csv': 'id,expected_ignore_case,expected_contains\na,maybe,x\n',
    });
    const err = await planErrorOfAsync(() => collect(readCases('c.csv', { baseDir: bad })));
    expect(err.message).toContain(
      `${bad}/c.csv:2:3: expected_ignore_case: "maybe" is invalid, expected true or false`,
    );
  });

  test('header mistakes are reported with their column', async () => {
    const dir = await tempFiles({
      'a.csv': 'id,query,query\n1,x,y\n',
      'b.csv': 'id,input.query\n1,x\n',
      'c.csv': 'id,,x\n1,2,3\n',
      'd.csv': 'id,expected,expected_contains\n1,,x\n',
    });
    const messages = await Promise.all(
      ['a.csv', 'b.csv', 'c.csv', 'd.csv'].map(async (f) => {
        const err = await planErrorOfAsync(() => collect(readCases(f, { baseDir: dir })));
        return err.message;
      }),
    );
    expect(messages).toEqual([
      `${dir}/a.csv:1:10: duplicate column "query" (also column 2)`,
      `${dir}/b.csv:1:4: unknown column "input.query", did you mean \`inputs.query\`?`,
      `${dir}/c.csv:1:4: column 2 has no name`,
      `${dir}/d.csv:1:1: use either an "expected" column (JSON) or "expected_<assertion>" columns, not both`,
    ]);
  });

  test('a typed input cell that does not parse', async () => {
    const dir = await tempFiles({ 'c.csv': 'id,age:number\na,12\nb,twelve\n' });
    const err = await planErrorOfAsync(() => collect(readCases('c.csv', { baseDir: dir })));
    expect(err.message).toBe(
      `${dir}/c.csv:3:3: age:number: "twelve" is invalid, expected a number`,
    );
  });
});

describe('JSON array files', () => {
  test('reads an array of cases, with positions for each', async () => {
    const dir = await tempFiles({
      'c.json': '[\n  {"id": "a", "inputs": {"q": 1}},\n  {"id": "a", "inputs": {"q": 2}}\n]\n',
    });
    const err = await planErrorOfAsync(() => collect(readCases('c.json', { baseDir: dir })));
    expect(err.message).toBe(
      `${dir}/c.json:3:3: [1]: duplicate case id "a", first at ${dir}/c.json:2:3`,
    );
  });
});

describe('inline lists from code', () => {
  test('a list of case objects is validated like a file', async () => {
    const cases = await collect(readCases([{ id: 'x', inputs: { q: 1 } }, { inputs: { q: 2 } }]));
    expect(ids(cases)).toEqual(['x', deriveCaseId({ q: 2 })]);
    const err = await planErrorOfAsync(() =>
      collect(readCases([{ id: 'x' }, { id: 'y', expected: { contains: 3 } }], { label: 'suite' })),
    );
    expect(err.message).toBe(
      'suite: [1].expected.contains: 3 is invalid, expected a string or a non-empty list of strings',
    );
  });
});

function planWithDatasets(weights: [number, number], counts: [number, number]): string {
  const list = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => `{ id: ${prefix}${i + 1} }`).join(', ');
  return [
    'workflow_id: wf',
    'datasets:',
    `  - { name: A, weight: ${weights[0]}, cases: [${list('a', counts[0])}] }`,
    `  - { name: B, weight: ${weights[1]}, cases: [${list('b', counts[1])}] }`,
  ].join('\n');
}

describe('several datasets', () => {
  test('interleave by weight, smoothly and deterministically', async () => {
    const m = parsePlan(planWithDatasets([2, 1], [6, 3]));
    expect(ids(await collect(iterateCases(m)))).toEqual([
      'a1',
      'b1',
      'a2',
      'a3',
      'b2',
      'a4',
      'a5',
      'b3',
      'a6',
    ]);
  });

  test('an exhausted dataset drops out', async () => {
    const m = parsePlan(planWithDatasets([1, 1], [1, 4]));
    expect(ids(await collect(iterateCases(m)))).toEqual(['a1', 'b1', 'b2', 'b3', 'b4']);
  });

  test('a dataset gives its name, scenario and priority to cases that have none', async () => {
    const dir = await tempFiles({
      'plan.yaml':
        'workflow_id: wf\ndatasets:\n  - name: refunds\n    scenario: angry\n    priority: 7\n    cases: r.jsonl\n',
      'r.jsonl':
        '{"id": "r1"}\n{"id": "r2", "scenario": "calm", "priority": 1, "dataset": "other"}\n',
    });
    const m = await loadPlan(join(dir, 'plan.yaml'));
    const cases = await collect(iterateCases(m));
    expect(cases.map((c) => [c.id, c.dataset, c.scenario, c.priority])).toEqual([
      ['r1', 'refunds', 'angry', 7],
      ['r2', 'other', 'calm', 1],
    ]);
    expect(await checkCases(m)).toEqual({
      total: 2,
      selected: 2,
      byDataset: { refunds: 1, other: 1 },
    });
  });
});

describe('selection', () => {
  const tenCases = Array.from(
    { length: 10 },
    (_, i) =>
      `  - { id: c${i + 1}, tags: [${i % 2 === 0 ? 'odd' : 'even'}${i < 3 ? ', early' : ''}] }`,
  ).join('\n');
  const planWith = (select: string) =>
    parsePlan(`workflow_id: wf\ncases:\n${tenCases}\nselect:\n${select}\n`);
  const run = async (select: string) => ids(await collect(iterateCases(planWith(select))));

  test('by tag, excluding tags', async () => {
    expect(await run('  tags: [even]')).toEqual(['c2', 'c4', 'c6', 'c8', 'c10']);
    expect(await run('  tags: [odd]\n  exclude_tags: [early]')).toEqual(['c5', 'c7', 'c9']);
  });

  test('by range: 1-based, inclusive, after the tag filter', async () => {
    expect(await run('  range: 3-5')).toEqual(['c3', 'c4', 'c5']);
    expect(await run('  range: 9-')).toEqual(['c9', 'c10']);
    expect(await run('  range: { to: 2 }')).toEqual(['c1', 'c2']);
    expect(await run('  tags: [odd]\n  range: { from: 2, to: 3 }')).toEqual(['c3', 'c5']);
  });

  test('a seeded sample: same seed, same cases, in stream order', async () => {
    const a = await run('  sample: { size: 4, seed: 7 }');
    const b = await run('  sample: { size: 4, seed: 7 }');
    expect(a).toEqual(b);
    expect(a).toHaveLength(4);
    expect(new Set(a).size).toBe(4);
    const order = a.map((id) => Number(id.slice(1)));
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    const seeds = await Promise.all(
      [1, 2, 3, 4, 5].map((seed) => run(`  sample: { size: 4, seed: ${seed} }`)),
    );
    expect(new Set(seeds.map((s) => s.join())).size).toBeGreaterThan(1);
    expect(await run('  sample: { size: 50 }')).toHaveLength(10);
  });

  test('reservoir sampling is uniform enough: every case gets picked', async () => {
    const counts = new Map<string, number>();
    for (let seed = 0; seed < 200; seed++) {
      for (const id of await run(`  sample: { size: 3, seed: ${seed} }`)) {
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
    // Expected 60 picks each (200 * 3 / 10); allow a wide margin.
    for (let i = 1; i <= 10; i++) {
      expect(counts.get(`c${i}`)).toBeGreaterThan(30);
      expect(counts.get(`c${i}`)).toBeLessThan(90);
    }
  });

  test('repeat: the repeat index is part of the id', async () => {
    const cases = await collect(iterateCases(planWith('  range: 1-2\n  repeat: 3')));
    expect(cases.map((c) => [c.id, c.repeatIndex])).toEqual([
      ['c1#1', 1],
      ['c1#2', 2],
      ['c1#3', 3],
      ['c2#1', 1],
      ['c2#2', 2],
      ['c2#3', 3],
    ]);
    expect(await checkCases(planWith('  range: 1-2\n  repeat: 3'))).toMatchObject({
      total: 10,
      selected: 6,
    });
  });

  test('a range stops reading early; checkCases still reads the whole file', async () => {
    const dir = await tempFiles({
      'plan.yaml': 'workflow_id: wf\ncases: c.jsonl\nselect: { range: 1-2 }\n',
      'c.jsonl': '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\nbroken\n',
    });
    const m = await loadPlan(join(dir, 'plan.yaml'), { checkCases: false });
    expect(ids(await collect(iterateCases(m)))).toEqual(['a', 'b']);
    const err = await planErrorOfAsync(() => checkCases(m));
    expect(err.message).toBe(`${dir}/c.jsonl:4:1: invalid JSON: expected a JSON value, found "b"`);
    const seen: string[] = [];
    const readAll = await planErrorOfAsync(async () => {
      for await (const c of iterateCases(m, { readAll: true })) seen.push(c.id);
    });
    expect(seen).toEqual(['a', 'b']);
    expect(readAll.message).toBe(err.message);
  });

  test('two empty sources: EMPTY_PLAN naming both', async () => {
    const dir = await tempFiles({
      'plan.yaml':
        'workflow_id: wf\ndatasets:\n  - { name: a, cases: a.jsonl }\n  - { name: b, cases: b.csv }\n',
      'a.jsonl': '',
      'b.csv': 'id,query\n',
    });
    const err = await planErrorOfAsync(() => loadPlan(join(dir, 'plan.yaml')));
    expect(err.code).toBe('EMPTY_PLAN');
    expect(err.message).toBe(
      [
        `${dir}/plan.yaml:3:23: datasets[0].cases: the case file ${dir}/a.jsonl has no cases`,
        `${dir}/plan.yaml:4:23: datasets[1].cases: the case file ${dir}/b.csv has no cases`,
      ].join('\n'),
    );
  });
});
