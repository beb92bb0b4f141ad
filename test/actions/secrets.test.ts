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

test('secrets written literally in step arguments (a credential-named key, a URL with a password) are not in the journal, the reports or stride show', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stride-act-literal-'));
  const KEY = 'sk-literal-key-7373';
  const PASSWORD = 'pw-literal-8484';
  const path = join(dir, 'plan.yaml');
  writeFileSync(
    path,
    [
      'id: literal-secrets',
      'steps:',
      '  - id: call',
      '    tool: transform',
      `    arguments: { input: { api_key: "${KEY}", endpoint: "https://bob:${PASSWORD}@api.example/v1?x=1", max_tokens: 64, note: "kept" }, template: "done" }`,
      '',
    ].join('\n'),
  );
  const db = join(dir, 'stride.db');
  const out = join(dir, 'out');
  const run = captureIo({});
  expect(
    await main(
      ['run', path, '--db', db, '--out', out, '--report', 'json,html', '--run-id', 'lit', '--json'],
      run.io,
    ),
    run.text.err,
  ).toBe(0);
  const files = [
    ...readdirSync(dir)
      .filter((f) => f.startsWith('stride.db'))
      .map((f) => join(dir, f)),
    ...readdirSync(join(out, 'lit')).map((f) => join(out, 'lit', f)),
  ];
  expect(files.length).toBeGreaterThan(2);
  for (const file of files) {
    const bytes = readFileSync(file);
    expect(bytes.includes(Buffer.from(KEY)), file).toBe(false);
    expect(bytes.includes(Buffer.from(PASSWORD)), file).toBe(false);
  }
  expect(run.text.out).not.toContain(KEY);
  const show = captureIo({});
  expect(await main(['show', 'lit', '--db', db, '--json'], show.io)).toBe(0);
  expect(show.text.out).not.toContain(KEY);
  expect(show.text.out).not.toContain(PASSWORD);
  // What is not a secret stays readable: the host, a number under a token-like key, a note.
  const stored = JSON.parse(show.text.out).plan as {
    steps: { arguments: { input: Record<string, unknown> } }[];
  };
  expect(stored.steps[0]?.arguments.input).toEqual({
    api_key: '[redacted]',
    endpoint: 'https://[redacted]@api.example/v1?x=1',
    max_tokens: 64,
    note: 'kept',
  });
});
