/**
 * The `stride` bin with action plans, in child processes: the two examples (files, reports, the
 * journal, the saga rollback), `validate`, a test-only flag, and Ctrl-C then `stride resume`.
 * Each test copies its plan into a fresh temporary folder with its own `sandbox/`, so examples/
 * is never written. Needs the build (`npm run build`).
 */

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { spawnStride, strideHere } from '../cli/helpers.js';

const EXAMPLES = resolve(import.meta.dirname, '../../examples/actions');
const ENV = { CI: '1' };
/**
 * A limit that ends a hang, not a measure: each test runs several `stride` children one after
 * another, and with the load average at 15-20 three of them took over 30 s (a 30 s limit failed).
 */
const SLOW = 120_000;

/** A fresh folder with `plan.yaml` (an example's, or the given text) and an empty `sandbox/`. */
function workspace(plan: { example: 'publish-notes' | 'rollback' } | { text: string }): string {
  const dir = mkdtempSync(join(tmpdir(), 'stride-actions-'));
  mkdirSync(join(dir, 'sandbox'));
  writeFileSync(
    join(dir, 'plan.yaml'),
    'example' in plan ? readFileSync(join(EXAMPLES, plan.example, 'plan.yaml')) : plan.text,
  );
  return dir;
}

/**
 * `stride <command> --db <dir's journal> ...` in this process (strideHere): `runs` and `show`
 * only read the journal a child run wrote; a child each cost 0.3-0.5 s of CPU and proved nothing more.
 */
async function read(dir: string, command: 'runs' | 'show', ...args: string[]) {
  const r = await strideHere([command, '--db', join(dir, '.stride', 'stride.db'), ...args], ENV);
  return { code: r.code, stdout: r.out, stderr: r.err };
}

/** Runs `stride <args>` in `dir` and waits for it. */
async function stride(dir: string, ...args: string[]) {
  const child = spawnStride(args, { cwd: dir, env: ENV });
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

interface RunSummary {
  id: string;
  outcome?: string;
  parentId?: string;
  kind: string;
  status: string;
  counts: { total: number; succeeded: number };
}

// The tests are independent (each its own folder, journal and sandbox; no shared mock): they run
// side by side, so the file waits for its slowest test instead of the sum of all five.
describe.concurrent('stride run with an action plan', () => {
  it(
    'publish-notes: exit 0, the files in the sandbox, one JUnit testcase per step, listed as an action run',
    async () => {
      const dir = workspace({ example: 'publish-notes' });
      const run = await stride(dir, 'run', 'plan.yaml');
      expect(run.code, run.stderr).toBe(0);
      const runId = /^Run (\S+): completed \(6\/6 steps completed\)$/m.exec(run.stdout)?.[1];
      expect(runId, run.stdout).toBeDefined();

      const sandbox = join(dir, 'sandbox');
      const notes = '# Stride 0.2\n\n- action plans\n- saga rollback\n';
      expect(readdirSync(sandbox).sort()).toEqual(['CHANGELOG.md', 'draft.md', 'published.md']);
      expect(readFileSync(join(sandbox, 'draft.md'), 'utf8')).toBe(notes);
      expect(readFileSync(join(sandbox, 'published.md'), 'utf8')).toBe(notes);
      expect(readFileSync(join(sandbox, 'CHANGELOG.md'), 'utf8')).toBe('## 0.2\nSee draft.md\n');

      // The run's own folder under stride-out/, where latest points.
      expect(readdirSync(join(dir, 'stride-out')).sort()).toEqual([runId, 'latest']);
      expect(readdirSync(join(dir, 'stride-out', runId!)).sort()).toEqual([
        'junit.xml',
        'report.html',
        'results.csv',
        'results.json',
        'results.jsonl',
      ]);
      const xml = new XMLParser({
        ignoreAttributes: false,
        attributeNamePrefix: '',
        isArray: (name) => name === 'testsuite' || name === 'testcase',
      }).parse(readFileSync(join(dir, 'stride-out', 'latest', 'junit.xml'), 'utf8')) as {
        testsuites: {
          tests: string;
          failures: string;
          errors: string;
          testsuite: { testcase: { name: string; failure?: unknown; error?: unknown }[] }[];
        };
      };
      expect(xml.testsuites).toMatchObject({ tests: '6', failures: '0', errors: '0' });
      const cases = xml.testsuites.testsuite.flatMap((s) => s.testcase);
      expect(cases.map((c) => c.name).sort()).toEqual(
        ['changelog', 'draft', 'pause', 'publish', 'read-draft', 'summary'].sort(),
      );
      expect(cases.filter((c) => c.failure !== undefined || c.error !== undefined)).toEqual([]);

      const runs = await read(dir, 'runs', '--json');
      expect(runs.code).toBe(0);
      const listed = JSON.parse(runs.stdout) as RunSummary[];
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({
        id: runId,
        kind: 'action',
        plan: 'Publish release notes',
        status: 'completed',
        counts: { total: 6, succeeded: 6 },
      });
    },
    SLOW,
  );

  it(
    'rollback: exit 1, the rollback in the summary, the files the plan wrote removed or restored',
    async () => {
      const dir = workspace({ example: 'rollback' });
      const sandbox = join(dir, 'sandbox');
      // The plan overwrites tenant.json and creates quota.txt: undone, one restored, one removed.
      writeFileSync(join(sandbox, 'tenant.json'), '{"tenant": "before"}');
      const run = await stride(dir, 'run', 'plan.yaml');
      expect(run.code, run.stderr).toBe(1);
      // Both file steps ran (their writes happened) before the http step failed.
      expect(run.stderr).toContain('  ok config\n');
      expect(run.stderr).toContain('  ok quota\n');
      expect(run.stderr).toContain('  failed register\n');
      expect(run.stdout).toMatch(/^Run \S+: failed \(3\/4 steps completed; network: /m);
      expect(run.stdout).toContain('  rollback: completed\n');
      expect(run.stdout).toContain('    undo config: compensated\n');
      expect(run.stdout).toContain('    undo quota: compensated\n');
      expect(readdirSync(sandbox)).toEqual(['tenant.json']);
      expect(readFileSync(join(sandbox, 'tenant.json'), 'utf8')).toBe('{"tenant": "before"}');

      // The four reads of the finished journal, in this process and side by side (they were four
      // children in a row); each is judged on its own below.
      const runId = /^Run (\S+): failed/m.exec(run.stdout)![1]!;
      const [asJson, asTable, newestJson, show] = await Promise.all([
        read(dir, 'runs', '--json'),
        read(dir, 'runs'),
        read(dir, 'runs', '-n', '1', '--json'),
        read(dir, 'show', runId),
      ]);
      const runs = JSON.parse(asJson.stdout) as RunSummary[];
      expect(runs.every((r) => r.kind === 'action')).toBe(true);

      // `stride runs` (issue #18 item 5): the outcome a user cares about, on one row; the
      // rollback run is folded into it (it was a `completed` row plus a `…:rollback` row).
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({
        id: runId,
        status: 'completed',
        outcome: 'failed, rolled back',
        rollback: { id: `${runId}:rollback`, status: 'completed' },
      });
      const table = asTable.stdout.trim().split('\n');
      expect(table).toHaveLength(2);
      expect(table[1]).toContain(' failed, rolled back ');
      expect(table.join('\n')).not.toContain(':rollback');
      // The newest run is the rollback: with -n 1 the plan's row stands for it.
      const newest = JSON.parse(newestJson.stdout);
      expect(newest).toMatchObject([{ id: runId, outcome: 'failed, rolled back' }]);
      expect(show.stdout).toContain('status     failed, rolled back (run completed)');
    },
    SLOW,
  );
});

describe.concurrent('stride validate with an action plan', () => {
  it(
    'a valid plan: exit 0; a bad one: exit 2 with the positioned message; nothing written',
    async () => {
      const dir = workspace({ example: 'publish-notes' });
      writeFileSync(
        join(dir, 'cycle.yaml'),
        [
          'id: p',
          'steps:',
          '  - id: a',
          '    tool: sleep',
          '    depends_on: [b]',
          '  - id: b',
          '    tool: sleep',
          '    depends_on: [a]',
          '',
        ].join('\n'),
      );
      // The tools are checked against the registry the plan would run with.
      writeFileSync(
        join(dir, 'tool.yaml'),
        ['id: p', 'tools: { root: sandbox }', 'steps:', '  - { id: a, tool: file.wirte }', ''].join(
          '\n',
        ),
      );
      // Three validations of three files, side by side (they were three children in a row).
      const [ok, cycle, tool] = await Promise.all([
        stride(dir, 'validate', 'plan.yaml'),
        stride(dir, 'validate', 'cycle.yaml'),
        stride(dir, 'validate', 'tool.yaml'),
      ]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toBe(
        'plan.yaml: valid. action plan publish-release-notes: 6 step(s), 6 dependencies; tools available: http, sleep, transform, file.read, file.write\n',
      );
      expect(cycle.code).toBe(2);
      expect(cycle.stdout).toBe('');
      expect(cycle.stderr).toBe(
        'stride: cycle.yaml:5:17: steps[0].depends_on: dependency cycle: a -> b -> a\n',
      );
      expect(tool.code).toBe(2);
      expect(tool.stderr).toBe(
        'stride: tool.yaml:4:20: steps[0].tool: unknown tool "file.wirte" (did you mean file.write?); available: http, sleep, transform, file.read, file.write\n',
      );

      expect(existsSync(join(dir, '.stride'))).toBe(false);
      expect(readdirSync(dir).sort()).toEqual(['cycle.yaml', 'plan.yaml', 'sandbox', 'tool.yaml']);
      expect(readdirSync(join(dir, 'sandbox'))).toEqual([]);
    },
    SLOW,
  );

  it(
    'a test-plan flag with an action plan: exit 2 naming the flag, nothing run',
    async () => {
      const dir = workspace({ example: 'publish-notes' });
      const run = await stride(dir, 'run', 'plan.yaml', '--tag', 'x');
      expect(run.code).toBe(2);
      expect(run.stderr).toBe('stride: --tag applies to test plans; plan.yaml is an action plan\n');
      expect(existsSync(join(dir, '.stride'))).toBe(false);
      expect(readdirSync(join(dir, 'sandbox'))).toEqual([]);
    },
    SLOW,
  );
});

describe.concurrent('Ctrl-C and stride resume with an action plan', () => {
  const STEPS = 6;
  const chain = [
    'kind: action',
    'id: chain',
    'steps:',
    ...Array.from({ length: STEPS }, (_, i) =>
      i === 0
        ? '  - { id: s1, tool: sleep, arguments: { ms: 400 } }'
        : `  - { id: s${i + 1}, tool: sleep, arguments: { ms: 400 }, depends_on: [s${i}] }`,
    ),
    '',
  ].join('\n');
  const ids = Array.from({ length: STEPS }, (_, i) => `s${i + 1}`);
  /** Steps a child's progress lines show as completed / started. */
  const completed = (stderr: string) => ids.filter((id) => stderr.includes(`  ok ${id}\n`));
  const started = (stderr: string) => ids.filter((id) => stderr.includes(`  > ${id}\n`));

  it(
    'SIGINT after the first step: exit 130 and the resume command; resume runs only the rest',
    async () => {
      const dir = workspace({ text: chain });
      const child = spawnStride(['run', 'plan.yaml'], { cwd: dir, env: ENV });
      // A limit that ends a hang, not a measure: a child starts slowly under load (over 10 s
      // with the load average at 30).
      await expect
        .poll(() => child.stderr(), { timeout: 60_000, interval: 20 })
        .toContain('  ok s1\n');
      child.kill('SIGINT');
      expect(await child.exited, child.stderr()).toBe(130);
      const resumeLine = /^Resume with: stride resume (\S+)$/m.exec(child.stderr());
      expect(resumeLine, child.stderr()).not.toBeNull();
      const runId = resumeLine![1]!;
      const before = completed(child.stderr());
      expect(before[0]).toBe('s1');
      expect(before.length).toBeLessThan(STEPS);
      expect(before).toEqual(ids.slice(0, before.length)); // a chain: a prefix of it

      const interrupted = await read(dir, 'show', runId, '--json');
      expect(interrupted.code).toBe(0);
      expect(JSON.parse(interrupted.stdout)).toMatchObject({
        id: runId,
        kind: 'action',
        status: 'interrupted',
        counts: { succeeded: before.length },
      });

      const resumed = await stride(dir, 'resume', runId, '--json');
      expect(resumed.code, resumed.stderr).toBe(0);
      // No step completed before the interrupt was started again; every other one was.
      expect(started(resumed.stderr)).toEqual(ids.filter((id) => !before.includes(id)));
      const summary = JSON.parse(resumed.stdout) as {
        runId: string;
        kind: string;
        execution: { status: string; stepResults: { stepId: string; status: string }[] };
      };
      expect(summary).toMatchObject({ runId, kind: 'action', execution: { status: 'completed' } });
      expect(summary.execution.stepResults.map((s) => [s.stepId, s.status])).toEqual(
        ids.map((id) => [id, 'completed']),
      );
      const shown = JSON.parse((await read(dir, 'show', runId, '--json')).stdout);
      expect(shown).toMatchObject({
        status: 'completed',
        counts: { total: STEPS, succeeded: STEPS },
      });
    },
    SLOW,
  );
});
