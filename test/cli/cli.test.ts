import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { runDemo } from '../../src/cli/demo.js';
import { VirtualClock } from '../../src/core/index.js';

function io() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = { out: '', err: '' };
  stdout.on('data', (c) => {
    text.out += c;
  });
  stderr.on('data', (c) => {
    text.err += c;
  });
  return { io: { stdout, stderr }, text };
}

describe('stride demo', () => {
  it('runs a stub plan with injected faults through the engine and prints the summary', async () => {
    const { io: streams, text } = io();
    const result = await runDemo({
      tasks: 300,
      concurrency: 20,
      seed: 1,
      perMinute: 6000,
      progress: false,
      out: streams.stdout,
      clock: new VirtualClock(),
    });
    expect(result.status).toBe('completed');
    expect(text.out).toMatch(/Run [\w-]+: completed/);
    expect(text.out).toContain('tasks      300: ');
    // case-7 is flaky (503 once): it succeeds on its retry
    expect(result.tasks.find((t) => t.id === 'case-7')).toMatchObject({
      status: 'succeeded',
      attempts: 2,
    });
    // case-11 always gets a 429: exactly max_attempts calls, never more
    expect(result.tasks.find((t) => t.id === 'case-11')).toMatchObject({
      status: 'error',
      attempts: 3,
    });
    // case-23 hangs: the per-attempt timeout ends it as a timeout after 3 attempts
    expect(text.out).toContain('case-23: timeout after 3 attempt(s)');
    expect(result.statistics.zombies).toBe(0);
  });

  it('runs from the command line', async () => {
    const { io: streams, text } = io();
    const code = await main(['demo', '--tasks', '5', '--rate', '600000', '--no-progress'], streams);
    expect(code).toBe(0);
    expect(text.out).toMatch(/tasks {6}5: \d+ succeeded/);
  });

  it('rejects a bad flag value with exit code 2, naming the flag and the value', async () => {
    const { io: streams, text } = io();
    expect(await main(['demo', '--tasks', 'many'], streams)).toBe(2);
    expect(text.err).toBe('stride: --tasks: "many" is not an integer >= 1\n');
  });

  it('rejects an unknown flag and an unknown command with exit code 2', async () => {
    const a = io();
    expect(await main(['demo', '--turbo'], a.io)).toBe(2);
    expect(a.text.err).toContain("Unknown option '--turbo'");
    const b = io();
    expect(await main(['frobnicate'], b.io)).toBe(2);
    expect(b.text.err).toContain('stride: unknown command "frobnicate"');
  });
});

describe('stride mock', () => {
  it('serves Dify requests on a free port until its signal aborts, then exits 0', async () => {
    const { io: streams, text } = io();
    const controller = new AbortController();
    const { mockCommand } = await import('../../src/mock/cli.js');
    let url = '';
    const done = mockCommand(['--port', '0', '--quiet'], {
      ...streams,
      signal: controller.signal,
      onListening: (u) => {
        url = u;
      },
    });
    await expect.poll(() => url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/v1/workflows/run`, {
      method: 'POST',
      headers: { authorization: 'Bearer app-x', 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: { query: 'hello' }, response_mode: 'blocking', user: 'u' }),
    });
    expect(res.status).toBe(200);
    controller.abort();
    expect(await done).toBe(0);
    expect(text.err).toBe('');
  });

  it('rejects a bad flag through `stride mock` with exit code 2', async () => {
    const { io: streams, text } = io();
    expect(await main(['mock', '--port', 'abc'], streams)).toBe(2);
    expect(text.err).toContain('--port');
    expect(text.err).toContain('abc');
  });
});

describe('the bin', () => {
  it('sets the same V8 flags the benchmark measures with', async () => {
    const bin = await readFile(new URL('../../src/cli/main.ts', import.meta.url), 'utf8');
    const { CLI_NODE_FLAGS } = (await import(
      new URL('../../bench/cli-flags.mjs', import.meta.url).href
    )) as { CLI_NODE_FLAGS: string[] };
    const shebangFlags = bin.split('\n')[0]?.replace('#!/usr/bin/env -S node', '').trim();
    expect(shebangFlags).toBe(CLI_NODE_FLAGS.join(' '));
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(pkg.scripts.start).toContain(`node ${CLI_NODE_FLAGS.join(' ')} dist/cli/main.js`);
  });
});
