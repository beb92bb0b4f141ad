/**
 * Every example ends with the exit code its header documents, on its documented command, against
 * the built-in mock (issue #18 item 17): `npm run examples` (scripts/examples.mjs) as a child
 * process, so `npm test` (and .ci/run) runs it. The fixture tests show the script fails when an
 * example does not end as documented, and refuses a header it cannot read.
 */

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function examples(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    // --no-build: the global set-up built dist/ (a second build here would race it).
    const script = [join(ROOT, 'scripts', 'examples.mjs'), '--no-build', ...args];
    const child = spawn(process.execPath, script, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      out += c;
    });
    child.on('exit', (code) => done({ code, out }));
  });
}

async function fixture(plans: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stride-examples-fixture-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(plans)) {
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(join(dir, name, 'plan.yaml'), text);
  }
  return dir;
}

const NAP = `kind: action
id: nap
steps:
  - { id: nap, tool: sleep, arguments: { ms: 1 } }
`;

// The three runs of the script are independent (the examples run in a copy of examples/, the
// fixtures in their own folders, each example against its own mock): side by side, the file
// waits for the examples' run alone.
describe.concurrent('npm run examples', () => {
  it('every example under examples/ ends with its documented exit code', async () => {
    const plans = (await readdir(join(ROOT, 'examples'), { recursive: true })).filter(
      (f) => f === 'plan.yaml' || f.endsWith('/plan.yaml'),
    );
    const { code, out } = await examples([]);
    expect(out).toContain(`${plans.length} of ${plans.length} examples ended as documented`);
    expect(code).toBe(0);
    expect(plans.length).toBeGreaterThanOrEqual(6);
  }, 180_000);

  it('an example that ends otherwise than documented fails the script, with its output', async () => {
    const dir = await fixture({
      wrong: `# documented wrongly\n#   stride run examples/wrong/plan.yaml   # exits 1\n${NAP}`,
      right: `# documented rightly\n#   stride run examples/right/plan.yaml   # exits 0\n${NAP}`,
    });
    const { code, out } = await examples(['--dir', dir]);
    expect(out).toMatch(/FAIL examples\/wrong\/plan\.yaml: .* exited 0 \(documented 1\)/);
    expect(out).toMatch(/ok {3}examples\/right\/plan\.yaml/);
    expect(out).toContain('1 of 2 examples ended as documented');
    expect(code).toBe(1);
  }, 60_000);

  it('a header without its documented exit code is refused (exit 2)', async () => {
    const dir = await fixture({ bare: `# no command here\n${NAP}` });
    const { code, out } = await examples(['--dir', dir]);
    expect(out).toMatch(/bare\/plan\.yaml: expected one "stride run \.\.\. # exits N" line/);
    expect(code).toBe(2);
  }, 60_000);
});
