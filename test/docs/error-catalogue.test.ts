/**
 * The one error catalogue (docs/errors.md) against the source: every `ErrorCode`, and every code
 * the source writes (a `StrideError`, an `ErrorInfo` journaled with an attempt or a result, the
 * dashboard's HTTP answers), has its row in docs/errors.md. A code added without its row fails
 * here, so the catalogue never lags what the journal holds.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const catalogue = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');

/** The codes with a row in docs/errors.md (a table line starting with the code). */
const documented = new Set(
  [...catalogue.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1] as string),
);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Operating-system and SQLite codes the source matches on (never written by Stride). */
const foreign = (code: string) => /^E[A-Z]+$/.test(code) || code.startsWith('SQLITE_');

describe('docs/errors.md', () => {
  test('every ErrorCode has its row', () => {
    const text = readFileSync(join(root, 'src', 'core', 'errors.ts'), 'utf8');
    const union = /export type ErrorCode =([^;]+);/.exec(text)?.[1] ?? '';
    const codes = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1] as string);
    expect(codes.length).toBeGreaterThan(30);
    expect(codes.filter((c) => !documented.has(c))).toEqual([]);
  });

  test('every code the source writes (errors thrown, journaled, answered) has its row', () => {
    const written = new Map<string, string>();
    const patterns = [
      /new StrideError\(\s*'([A-Z][A-Z0-9_]+)'/g,
      /\bcode:\s*'([A-Z][A-Z0-9_]+)'/g,
      // The dashboard's answers: fail(c, 404, 'NO_QUEUE', ...), deny(c, 401, 'UNAUTHORIZED', ...).
      /\b(?:fail|deny)\(\s*\w+,\s*\d{3},\s*'([A-Z][A-Z0-9_]+)'/g,
    ];
    for (const file of sources(join(root, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const p of patterns) {
        for (const m of text.matchAll(p)) {
          const code = m[1] as string;
          if (!foreign(code)) written.set(code, file.slice(root.length + 1));
        }
      }
    }
    expect(written.size).toBeGreaterThan(20);
    expect(written.has('REDELIVERED')).toBe(true);
    expect(written.has('NO_QUEUE')).toBe(true);
    const missing = [...written].filter(([c]) => !documented.has(c)).map(([c, f]) => `${c} (${f})`);
    expect(missing).toEqual([]);
  });
});
