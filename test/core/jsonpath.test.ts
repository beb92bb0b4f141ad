import { describe, expect, test } from 'vitest';
import { evalJsonPath, parseJsonPath } from '../../src/core/index.js';

describe('JSON paths', () => {
  test.each([
    ['$', []],
    ['$.a.b[0].c', ['a', 'b', 0, 'c']],
    ['$[\'key with space\']["q"]', ['key with space', 'q']],
    ['$[2][-1]', [2, -1]],
    ['answer', ['answer']],
    ['data.items[0].name', ['data', 'items', 0, 'name']],
    ['$.métadonnées.clé', ['métadonnées', 'clé']],
  ] as const)('%s', (path, segments) => {
    expect(parseJsonPath(path)).toEqual(segments);
  });

  test.each([['$..a'], ['$.a.'], ['$[*]'], ['$.a[?(@.b)]'], ['.a'], ['$[0']])(
    'rejects %s',
    (path) => {
      expect(() => parseJsonPath(path)).toThrow(/^invalid JSON path /);
    },
  );

  test('looks values up, telling "not found" from a found null', () => {
    const doc = { a: { b: [{ c: 1 }, { c: null }] }, 'k k': true };
    expect(evalJsonPath(doc, '$.a.b[0].c')).toEqual({ found: true, value: 1 });
    expect(evalJsonPath(doc, '$.a.b[1].c')).toEqual({ found: true, value: null });
    expect(evalJsonPath(doc, '$.a.b[-1]')).toEqual({ found: true, value: { c: null } });
    expect(evalJsonPath(doc, "$['k k']")).toEqual({ found: true, value: true });
    expect(evalJsonPath(doc, '$.a.b[2]')).toEqual({ found: false });
    expect(evalJsonPath(doc, '$.a.x')).toEqual({ found: false });
    expect(evalJsonPath(doc, '$.a.b.c')).toEqual({ found: false });
    expect(evalJsonPath(doc, '$.toString')).toEqual({ found: false });
    expect(evalJsonPath(doc, '$')).toEqual({ found: true, value: doc });
  });
});
