/**
 * Names a run or a plan points at: run ids given on the command line, and an action plan's file
 * sandbox (`tools.root`) that confines nothing.
 */

import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { captureIo, makePlan } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 1 });
});
afterAll(async () => {
  await mock.close();
});

describe('stride run --run-id', () => {
  it.each([
    ['../../../etc/x', '../../../etc/x', 'the id has "." first'],
    ['a/b', 'a/b', 'the id has "/"'],
    ['5,000 characters', 'x'.repeat(5000), 'the id is 5000 characters long'],
    ['-rf', '-rf', 'the id has "-" first'],
    ['a space', 'two words', 'the id has U+0020'],
    ['an escape sequence', 'red\u001b[31m', 'the id has U+001B'],
    ['empty', '', 'the id is empty'],
  ])('%s: exit 2 naming the flag, nothing run, nothing written', async (_label, id, problem) => {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const db = join(dir, 'stride.db');
    const out = join(dir, 'out');
    const sent = mock.stats().runs;
    const { io, text } = captureIo({ MOCK_URL: mock.baseUrl });
    expect(await main(['run', plan, '--run-id', id, '--db', db, '--out', out], io)).toBe(2);
    expect(text.err).toContain(`stride: --run-id "`);
    expect(text.err).toContain(`: ${problem}; expected letters, digits,`);
    expect(text.err).toContain('at most 128 characters');
    expect(text.err.length).toBeLessThan(400); // a 5,000-character id is not echoed whole
    expect(text.err).not.toContain('\u001b'); // nor a control character raw
    expect(existsSync(db)).toBe(false);
    expect(existsSync(out)).toBe(false);
    expect(mock.stats().runs).toBe(sent);
  });

  it('an id of letters, digits, ".", "_", "-" and ":" is the stored run id', async () => {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const db = join(dir, 'stride.db');
    const id = 'release-2026.11:smoke_1';
    const { io, text } = captureIo({ MOCK_URL: mock.baseUrl });
    const code = await main(
      ['run', plan, '--run-id', id, '--db', db, '--out', join(dir, 'out'), '--quiet'],
      io,
    );
    expect(code, text.err).toBe(0);
    const store = new SqliteStore({ path: db });
    expect((await store.listRuns()).map((r) => r.id)).toEqual([id]);
    await store.close();
  });
});

describe('stride validate: an action plan whose tools.root confines nothing', () => {
  function actionPlan(root: string): { dir: string; plan: string } {
    // The plan's folder is a subfolder, so `../x` stays in this test's own temporary folder.
    const dir = join(mkdtempSync(join(tmpdir(), 'stride-root-')), 'plan');
    mkdirSync(dir);
    const plan = join(dir, 'plan.yaml');
    writeFileSync(
      plan,
      [
        'id: files',
        'tools:',
        `  root: ${JSON.stringify(root)}`,
        'steps:',
        '  - { id: read, tool: file.read, arguments: { path: notes.txt } }',
        '',
      ].join('\n'),
    );
    return { dir, plan };
  }

  async function validate(plan: string, json = false) {
    const { io, text } = captureIo();
    const code = await main(['validate', plan, ...(json ? ['--json'] : [])], io);
    return { code, ...text };
  }

  it('a root inside the plan folder: valid, no warning', async () => {
    const { dir, plan } = actionPlan('sandbox');
    mkdirSync(join(dir, 'sandbox'));
    const r = await validate(plan);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toContain('valid');
    expect(JSON.parse((await validate(plan, true)).out).warnings).toEqual([]);
  });

  it('root: / warns that file.write can change any file (still valid: exit 0)', async () => {
    const { plan } = actionPlan('/');
    const r = await validate(plan);
    expect(r.code).toBe(0);
    expect(r.err).toBe(
      `warning: ${plan}: tools.root is /, the root of the file system: file.write can change any file this user may write\n`,
    );
    const json = await validate(plan, true);
    expect(JSON.parse(json.out)).toMatchObject({ valid: true, warnings: [expect.any(String)] });
  });

  it('a root that is a symbolic link to /etc warns, naming where it really leads', async () => {
    const { dir, plan } = actionPlan('sandbox');
    symlinkSync('/etc', join(dir, 'sandbox'));
    const r = await validate(plan);
    expect(r.code).toBe(0);
    expect(r.err).toContain(
      `warning: ${plan}: tools.root is ${join(dir, 'sandbox')} (really /etc)`,
    );
    expect(r.err).toContain(`outside the plan's folder ${dir}`);
  });

  it('a root outside the plan folder by path warns too; a missing root says the tools will fail', async () => {
    const outside = actionPlan('../elsewhere');
    mkdirSync(join(outside.dir, '..', 'elsewhere'));
    expect((await validate(outside.plan)).err).toContain("outside the plan's folder");
    const missing = actionPlan('nowhere');
    expect((await validate(missing.plan)).err).toContain(
      `${join(missing.dir, 'nowhere')} does not exist or cannot be read; file.read and file.write will fail`,
    );
  });
});
