/**
 * Issue #18 item 18: the README says what `npm ci` needs where no prebuilt better-sqlite3 binary
 * can be fetched (python3, make, a C++ compiler; about 2 minutes) and that a library user needs
 * `@types/node`. Checked against package.json, so the README cannot name another driver version
 * or Node types major than the ones the project installs.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe('README: what installing and using Stride need (issue #18 item 18)', () => {
  test('building better-sqlite3 from source: the tools and the version package.json pins', () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'));
    for (const needed of ['python3', 'make', 'C++ compiler', 'node-gyp', 'about 2 minutes']) {
      expect(quickStart, needed).toContain(needed);
    }
    const named = /better-sqlite3 (\d+\.\d+\.\d+)/.exec(readme)?.[1];
    expect(named).toBe(pkg.dependencies['better-sqlite3']);
  });

  test('a library user needs @types/node, of the major the project builds with', () => {
    const major = /\d+/.exec(pkg.devDependencies['@types/node']!)![0];
    expect(readme).toContain(`\`@types/node\` (${major}.x)`);
    expect(readme).toContain("Cannot find namespace 'NodeJS'");
  });
});
