/**
 * The suite's own set-up (test/setup/global.ts): what it does when a system program is missing
 * and it may not install it, and when dist/ is stale. The install path itself runs for real on
 * a fresh machine (CI): it is the first thing `npm test` does there.
 */

import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { staleSource } from './build.js';
import { ensureSystemPackages, missingRequirements, onPath } from './system.js';

describe('system programs', () => {
  test('found on this machine (the set-up ran before this test)', () => {
    expect(missingRequirements()).toEqual([]);
  });

  test('missing and not root: stops with the packages and the command that installs them', () => {
    const empty = mkdtempSync(join(tmpdir(), 'stride-path-'));
    expect(onPath('redis-server', empty)).toBe(false);
    const missing = missingRequirements(empty).map((r) => r.pkg);
    expect(missing).toContain('redis-server');
    let message = '';
    try {
      ensureSystemPackages({ path: empty, root: false });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('(not root)');
    expect(message).toContain(`sudo apt-get install -y ${missing.join(' ')}`);
    expect(message).toContain('redis-server (Debian package redis-server): the distributed');
    expect(message).toContain('No test is skipped instead.');
  });

  test('missing, root, but no apt-get: says so', () => {
    const empty = mkdtempSync(join(tmpdir(), 'stride-path-'));
    expect(() => ensureSystemPackages({ path: empty, root: true })).toThrow(/apt-get not found/);
  });
});

describe('dist/ staleness', () => {
  function project(): string {
    const root = mkdtempSync(join(tmpdir(), 'stride-build-'));
    mkdirSync(join(root, 'src', 'core'), { recursive: true });
    writeFileSync(join(root, 'tsconfig.json'), '{}');
    writeFileSync(join(root, 'src', 'core', 'a.ts'), 'export const a = 1;');
    writeFileSync(join(root, 'src', 'core', 'b.d.ts'), 'export declare const b: number;');
    return root;
  }
  const at = (path: string, seconds: number) => utimesSync(path, seconds, seconds);

  test('a missing build, an older build and a changed compiler option are stale', () => {
    const root = project();
    expect(staleSource(root)).toBe(join('src', 'core', 'a.ts'));
    mkdirSync(join(root, 'dist', 'core'), { recursive: true });
    const out = join(root, 'dist', 'core', 'a.js');
    writeFileSync(out, 'export const a = 1;');
    at(join(root, 'tsconfig.json'), 1_000);
    at(join(root, 'src', 'core', 'a.ts'), 2_000);
    at(out, 1_500);
    expect(staleSource(root)).toBe(join('src', 'core', 'a.ts'));
    at(out, 3_000);
    expect(staleSource(root)).toBeUndefined(); // declaration files have no output
    at(join(root, 'tsconfig.json'), 4_000);
    expect(staleSource(root)).toBe(join('src', 'core', 'a.ts'));
  });
});
