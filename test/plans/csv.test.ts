import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CsvParser, type CsvRecord } from '../../src/plans/csv.js';

function parseAll(chunks: readonly string[]): CsvRecord[] {
  const parser = new CsvParser();
  const out: CsvRecord[] = [];
  for (const chunk of chunks) out.push(...parser.push(chunk));
  out.push(...parser.end());
  return out;
}

function quote(field: string): string {
  return /[",\r\n]/.test(field) || field === '' ? `"${field.replaceAll('"', '""')}"` : field;
}

describe('CsvParser', () => {
  test('fields, quotes, line numbers and columns', () => {
    const records = parseAll(['\uFEFFa,"b,1",c\r\n', '"multi\nline",x,"say ""hi"""\n\n', 'last,,']);
    expect(records).toEqual([
      { fields: ['a', 'b,1', 'c'], line: 1, columns: [1, 3, 9], lines: [1, 1, 1] },
      { fields: ['multi\nline', 'x', 'say "hi"'], line: 2, columns: [1, 7, 9], lines: [2, 3, 3] },
      { fields: ['last', '', ''], line: 5, columns: [1, 6, 7], lines: [5, 5, 5] },
    ]);
  });

  test('any split into chunks gives the same records (property)', () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r\n', ' ', 'é') });
    const rows = fc.array(fc.array(field, { minLength: 1, maxLength: 4 }), {
      minLength: 1,
      maxLength: 6,
    });
    fc.assert(
      fc.property(rows, fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (table, cuts, crlf) => {
        const eol = crlf ? '\r\n' : '\n';
        // A row of one empty field is a blank line, which the reader skips: quote it.
        const text = table
          .map((r) => (r.length === 1 && r[0] === '' ? '""' : r.map(quote).join(',')))
          .join(eol);
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const chunks: string[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(text.slice(prev, p));
          prev = p;
        }
        chunks.push(text.slice(prev));
        const whole = parseAll([text]);
        expect(parseAll(chunks)).toEqual(whole);
        expect(whole.map((r) => r.fields)).toEqual(table);
        for (const r of whole) {
          expect(r.columns).toHaveLength(r.fields.length);
          expect(r.lines).toHaveLength(r.fields.length);
        }
      }),
    );
  });

  test('syntax errors carry a position', () => {
    expect(() => parseAll(['a,"b"c\n'])).toThrow(
      'unexpected "c" after a closing quote (a quote inside a quoted field is written "")',
    );
    try {
      parseAll(['x\n"open,\nmore']);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({
        line: 2,
        column: 1,
        message: 'unterminated quoted field (no closing ")',
      });
    }
  });
});
