import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startMock } from '../../src/mock/index.js';
import { BIN, makePlan } from './helpers.js';

const COUNTER = new URL('../../bench/module-count.mjs', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'stride-lazy-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * The files the bin loads for `args` (ES and CommonJS), recorded by bench/module-count.mjs:
 * from dist/'s own files (STRIDE_NO_BUNDLE), whose laziness the bundle keeps (esbuild leaves an
 * `import()` lazy); test/cli/bundle.test.ts checks the bundle itself.
 */
function modulesOf(args: string[]): string[] {
  const log = join(work, `${args.join('-').replace(/\W/g, '')}.txt`);
  const r = spawnSync(process.execPath, ['--import', COUNTER, BIN, ...args], {
    env: { ...process.env, STRIDE_MODULE_LOG: log, STRIDE_NO_BUNDLE: '1' },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.slice(l.indexOf(' ') + 1));
}

/** As modulesOf, with the event loop free (an in-process mock answers the run). */
async function modulesOfRun(args: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const log = join(work, 'run.txt');
  const child = spawn(process.execPath, ['--import', COUNTER, BIN, ...args], {
    env: { ...process.env, ...env, STRIDE_MODULE_LOG: log, STRIDE_NO_BUNDLE: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  expect(code, err).toBe(0);
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.slice(l.indexOf(' ') + 1));
}

// plans/duration.js is the one light plans/ file the flag parsers use (it imports core/errors.js only).
const HEAVY =
  /node_modules\/(zod|yaml|undici|bullmq|ioredis|better-sqlite3|diff)\/|dist\/(plans\/(?!duration\.js)|report|runner|actions|distributed|mock|compare\/compare|targets)/;

describe('commands load what they run', () => {
  it.each(['--help', 'run --help', 'compare --help', 'worker --help', 'report --help'])(
    'stride %s loads no plan loader, journal, HTTP client, report writer or BullMQ',
    (command) => {
      const files = modulesOf(command.split(' '));
      expect(files.some((f) => f.includes('node_modules/commander/'))).toBe(true);
      expect(files.filter((f) => HEAVY.test(f))).toEqual([]);
    },
  );
});

describe('a one-case run loads what it uses (issue #15, start-up)', () => {
  it("loads undici's Agent without undici's index, and no ajv, diff, re2js or action-plan loader", async () => {
    const mock = await startMock({ port: 0, latencyMs: 0 });
    const { dir, plan } = makePlan({ cases: ['ok'] });
    try {
      const files = await modulesOfRun(
        ['run', plan, '--db', join(dir, 's.db'), '--out', join(dir, 'out'), '-q'],
        { MOCK_URL: `${mock.url}/v1` },
      );
      // It did run over HTTP, through undici's own Agent file.
      expect(files.some((f) => f.endsWith('node_modules/undici/lib/dispatcher/agent.js'))).toBe(
        true,
      );
      const unused =
        /node_modules\/(undici\/index\.js|undici\/lib\/web\/|ajv\/|diff\/|fastest-levenshtein\/|re2js\/)|dist\/actions\/load\.js/;
      expect(files.filter((f) => unused.test(f))).toEqual([]);
    } finally {
      await mock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
