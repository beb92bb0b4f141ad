// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
/** Secrets in action plans: a value from `${VAR}` in a step's arguments is never stored or shown. */

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { main } from '../../src/cli/app.js';
import { captureIo } from '../cli/helpers.js';

const TOKEN = 'tok-very-secret-4242';

function plan(dir: string, template: string): string {
  const path = join(dir, `plan-${template.length}.yaml`);
  writeFileSync(
    path,
    [
      'id: secret-plan',
      'max_concurrent_steps: ${STEPS}', // a number from the environment
      'steps:',
      '  - id: call',
      '    tool: transform',
      `    arguments: { input: { auth: "Bearer \${API_TOKEN}" }, template: "${template}" }`,
      '',
    ].join('\n'),
  );
  return path;
}

test('a ${VAR} in step arguments reaches the tool but not the journal or stride show', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stride-act-secret-'));
  const env = { API_TOKEN: TOKEN, STEPS: '2' };
  // The tool gets the real value: this plan's step echoes it in its output.
  const echo = captureIo(env);
  const code = await main(
    [
      'run',
      plan(dir, 'sent {{auth}}'),
      '--db',
      join(dir, 'echo.db'),
      '--out',
      join(dir, 'o1'),
      '--json',
    ],
    echo.io,
  );
  expect(code).toBe(0);
  expect(echo.text.out).toContain(`sent Bearer ${TOKEN}`);

  // A step that does not echo it: the token is nowhere in the database files.
  const db = join(dir, 'quiet.db');
  const run = captureIo(env);
  expect(
    await main(
      ['run', plan(dir, 'done'), '--db', db, '--out', join(dir, 'o2'), '--run-id', 's1', '--json'],
      run.io,
    ),
  ).toBe(0);
  const bytes = Buffer.concat(
    readdirSync(dir)
      .filter((f) => f.startsWith('quiet.db'))
      .map((f) => readFileSync(join(dir, f))),
  );
  expect(bytes.length).toBeGreaterThan(0);
  expect(bytes.includes(Buffer.from(TOKEN))).toBe(false);
  const show = captureIo(env);
  expect(await main(['show', 's1', '--db', db, '--json'], show.io)).toBe(0);
  expect(show.text.out).not.toContain(TOKEN);
  const stored = JSON.parse(show.text.out).plan as {
    steps: { arguments: { input: { auth: string } } }[];
  };
  expect(stored.steps[0]?.arguments.input.auth).toBe('[redacted]');
});
