/**
 * The bin's bundle and V8 code cache (src/cli/bundle.ts, scripts/bundle.mjs; issue #15 item 7).
 * The first part drives dist/cli/main.js and bundle.js copied into a temporary folder beside a
 * stand-in bundle and a stand-in entry.js, each printing its name, so which one the bin runs is
 * seen directly and file times can be set at will; the second part checks the real build.
 */

import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_NODE_FLAGS } from '../../bench/cli-flags.mjs';
import { startMock } from '../../src/mock/index.js';
import { BIN, makePlan } from './helpers.js';

const DIST_CLI = new URL('../../dist/cli/', import.meta.url).pathname;
const COUNTER = new URL('../../bench/module-count.mjs', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'stride-bundle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const BUILD = '0123456789abcdef';

/** A folder with the bin's two files, a stand-in entry.js and, unless `bundle` is false, a stand-in bundle. */
function standIn(name: string, bundle = true): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'cli'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  copyFileSync(join(DIST_CLI, 'main.js'), join(dir, 'cli', 'main.js'));
  copyFileSync(join(DIST_CLI, 'bundle.js'), join(dir, 'cli', 'bundle.js'));
  writeFileSync(join(dir, 'cli', 'entry.js'), "process.stdout.write('dist files');\n");
  if (bundle) {
    writeFileSync(
      join(dir, 'cli', 'stride.cjs'),
      `// stride bundle ${BUILD}\nprocess.stdout.write('bundle ' + __filename.endsWith('stride.cjs'));\n`,
    );
  }
  return dir;
}

/** Sets a file's modification time, in seconds since the epoch. */
const touch = (file: string, seconds: number): void => utimesSync(file, seconds, seconds);

function node(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(process.execPath, [...CLI_NODE_FLAGS, ...args], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** `compileBundle().cache` of the stand-in folder's bundle, under the bin's flags. */
function cacheState(dir: string): string {
  const loader = join(dir, 'cli', 'bundle.js');
  return node([
    '--input-type=module',
    '-e',
    `import { compileBundle } from ${JSON.stringify(loader)}; process.stdout.write(compileBundle().cache);`,
  ]);
}

describe('which code the bin runs', () => {
  it('runs the bundle when it is not older than entry.js', () => {
    const dir = standIn('fresh');
    touch(join(dir, 'cli', 'entry.js'), 1_000_000);
    touch(join(dir, 'cli', 'stride.cjs'), 1_000_000); // as npm pack leaves them: equal times
    expect(node([join(dir, 'cli', 'main.js')])).toBe('bundle true');
  });

  it("runs dist/'s files when tsc wrote entry.js after the bundle, without one, or with STRIDE_NO_BUNDLE", () => {
    const stale = standIn('stale');
    touch(join(stale, 'cli', 'stride.cjs'), 1_000_000);
    touch(join(stale, 'cli', 'entry.js'), 1_000_001);
    expect(node([join(stale, 'cli', 'main.js')])).toBe('dist files');

    expect(node([join(standIn('none', false), 'cli', 'main.js')])).toBe('dist files');

    const off = standIn('off');
    touch(join(off, 'cli', 'entry.js'), 1_000_000);
    touch(join(off, 'cli', 'stride.cjs'), 1_000_001);
    expect(node([join(off, 'cli', 'main.js')], { STRIDE_NO_BUNDLE: '1' })).toBe('dist files');
  });
});

describe('the code cache', () => {
  it('is written by a training run and taken by the next start under the same flags', () => {
    const dir = standIn('trained');
    const cache = join(dir, 'cli', 'stride.cjs.cache');
    expect(cacheState(dir)).toBe('absent');
    expect(node([join(dir, 'cli', 'main.js')], { STRIDE_CODE_CACHE_OUT: cache })).toBe(
      'bundle true',
    );
    expect(readFileSync(cache).toString('latin1', 0, 16)).toBe(BUILD);
    expect(cacheState(dir)).toBe('accepted');
  });

  it('is ignored when it names another build, and V8 refuses one that is not its data; the bundle runs either way', () => {
    const dir = standIn('foreign');
    const cache = join(dir, 'cli', 'stride.cjs.cache');
    writeFileSync(cache, Buffer.concat([Buffer.from('fedcba9876543210'), Buffer.alloc(64, 7)]));
    expect(cacheState(dir)).toBe('absent');
    writeFileSync(cache, Buffer.concat([Buffer.from(BUILD), Buffer.alloc(64, 7)]));
    expect(cacheState(dir)).toBe('rejected');
    expect(node([join(dir, 'cli', 'main.js')])).toBe('bundle true');
  });
});

describe('the build (npm run build)', () => {
  it("made a code cache V8 accepts under the bin's shebang flags", () => {
    const state = node([
      '--input-type=module',
      '-e',
      `import { compileBundle } from ${JSON.stringify(join(DIST_CLI, 'bundle.js'))}; process.stdout.write(compileBundle().cache);`,
    ]);
    expect(state).toBe('accepted');
  });

  it("runs a one-case run from the bundle: none of dist/'s program files, zod or yaml load as modules", async () => {
    const mock = await startMock({ port: 0, latencyMs: 0 });
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const log = join(work, 'modules.txt');
    try {
      const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const args = ['run', plan, '--db', join(dir, 's.db'), '--out', join(dir, 'out'), '-q'];
        const child = spawn(
          process.execPath,
          [...CLI_NODE_FLAGS, '--import', COUNTER, BIN, ...args],
          {
            env: { ...process.env, STRIDE_MODULE_LOG: log, MOCK_URL: `${mock.url}/v1` },
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let err = '';
        child.stderr.on('data', (d) => {
          err += d;
        });
        child.on('exit', (code) => resolve({ code, err }));
      });
      expect(r.code, r.err).toBe(0);
      const files = readFileSync(log, 'utf8');
      expect(files).toContain('dist/cli/main.js');
      expect(files).toContain('dist/cli/bundle.js');
      expect(files).not.toMatch(/dist\/(cli\/app|cli\/entry|plans|runner|store|targets)\b/);
      expect(files).not.toMatch(/node_modules\/(zod|yaml|undici|commander)\//);
      expect(files).toContain('node_modules/better-sqlite3/'); // native: outside the bundle
    } finally {
      await mock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
