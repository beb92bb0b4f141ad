/** Temporary database files for the SQLite tests. */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder in os.tmpdir(), removed after the file's tests. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stride-store-'));
  dirs.push(dir);
  return dir;
}

/** A path for a database that does not exist yet. */
export function tempDb(name = 'stride.db'): string {
  return join(tempDir(), name);
}

/**
 * A target that admits `limit` attempts at a time, each taking `ms` of real time, and refuses
 * the rest at once with a bare 429 (no Retry-After): a concurrency-limited provider.
 */
export function admittingTarget(limit: number, ms = 5): { execute(): Promise<string> } {
  let admitted = 0;
  return {
    async execute() {
      if (admitted >= limit) throw Object.assign(new Error('too many'), { status: 429 });
      admitted++;
      await new Promise((r) => setTimeout(r, ms));
      admitted--;
      return 'ok';
    },
  };
}
