import { getEventListeners } from 'node:events';
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import {
  builtinTools,
  type FileWriteResult,
  fileTools,
  httpTool,
  sleepTool,
  transformTool,
} from '../../src/actions/builtins.js';
import type { ToolContext } from '../../src/actions/tool.js';
import { CancelledError, classifyError, isStrideError } from '../../src/core/errors.js';

interface Counters {
  network: number;
  reads: number[];
  writes: number[];
}

function makeCtx(
  options: { signal?: AbortSignal; networkRequest?: () => void } = {},
): ToolContext & { counters: Counters } {
  const counters: Counters = { network: 0, reads: [], writes: [] };
  return {
    signal: options.signal ?? new AbortController().signal,
    attempt: 1,
    stepId: 'step-1',
    planId: 'plan-1',
    counters,
    usage: {
      networkRequest: () => {
        options.networkRequest?.();
        counters.network++;
      },
      diskRead: (bytes) => counters.reads.push(bytes),
      diskWrite: (bytes) => counters.writes.push(bytes),
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

// =============================================================================================
// http
// =============================================================================================

describe('http tool', () => {
  let server: Server;
  let base: string;
  let port: number;
  const seen: { method: string; url: string }[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        switch (req.url) {
          case '/json':
            res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-id': '7' });
            res.end(JSON.stringify({ ok: true, items: [1, 2] }));
            return;
          case '/text':
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('hello');
            return;
          case '/echo':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                method: req.method,
                contentType: req.headers['content-type'] ?? null,
                auth: req.headers.authorization ?? null,
                body,
              }),
            );
            return;
          case '/big':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ data: 'x'.repeat(5000) }));
            return;
          case '/fail':
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end('internal boom');
            return;
          case '/missing':
            res.writeHead(404);
            res.end('no such thing');
            return;
          case '/busy':
            res.writeHead(429, { 'retry-after': '2' });
            res.end();
            return;
          case '/redirect':
            res.writeHead(302, { location: '/json' });
            res.end();
            return;
          case '/away':
            res.writeHead(302, { location: 'http://elsewhere.invalid/x' });
            res.end();
            return;
          case '/loop':
            res.writeHead(302, { location: '/loop' });
            res.end();
            return;
          case '/slow':
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('partial'); // and never ends
            return;
          default:
            res.writeHead(404);
            res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    seen.length = 0;
  });

  test('returns parsed JSON, lower-case headers, and counts the request', async () => {
    const ctx = makeCtx();
    const out = await httpTool().execute({ url: `${base}/json` }, ctx);
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ ok: true, items: [1, 2] });
    expect(out.headers['x-id']).toBe('7');
    expect(out.truncated).toBeUndefined();
    expect(ctx.counters.network).toBe(1);
    expect(seen).toEqual([{ method: 'GET', url: '/json' }]);
  });

  test('returns text for a non-JSON content type', async () => {
    const out = await httpTool().execute({ url: `${base}/text` }, makeCtx());
    expect(out.body).toBe('hello');
  });

  test('sends json with a content type, and a text body as given', async () => {
    const tool = httpTool();
    const a = await tool.execute(
      {
        url: `${base}/echo`,
        method: 'post',
        json: { n: 1 },
        headers: { authorization: 'Bearer t' },
      },
      makeCtx(),
    );
    expect(a.body).toEqual({
      method: 'POST',
      contentType: 'application/json',
      auth: 'Bearer t',
      body: '{"n":1}',
    });
    const b = await tool.execute({ url: `${base}/echo`, method: 'PUT', body: 'raw' }, makeCtx());
    expect(b.body).toMatchObject({ method: 'PUT', body: 'raw' });
  });

  test('a 500 is an error carrying the status, retried', async () => {
    const err = await rejection(httpTool().execute({ url: `${base}/fail` }, makeCtx()));
    expect(isStrideError(err)).toBe(true);
    expect(err).toMatchObject({ status: 500, code: 'HTTP_ERROR' });
    expect((err as Error).message).toContain('internal boom');
    expect(classifyError(err).retryable).toBe(true);
  });

  test('a 404 is not retried; a 429 is, with its Retry-After', async () => {
    const notFound = await rejection(httpTool().execute({ url: `${base}/missing` }, makeCtx()));
    expect(notFound).toMatchObject({ status: 404 });
    expect(classifyError(notFound).retryable).toBe(false);

    const busy = await rejection(httpTool().execute({ url: `${base}/busy` }, makeCtx()));
    const verdict = classifyError(busy);
    expect(verdict).toMatchObject({ retryable: true, rateLimited: true, retryAfterMs: 2000 });
  });

  test('a host outside allowedHosts is refused before anything is sent', async () => {
    const ctx = makeCtx();
    const err = await rejection(
      httpTool({ allowedHosts: ['api.example.com'] }).execute({ url: `${base}/json` }, ctx),
    );
    expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
    expect((err as Error).message).toContain(`host 127.0.0.1:${port} is not in allowedHosts`);
    expect(seen).toHaveLength(0);
    expect(ctx.counters.network).toBe(0);

    const ok = await httpTool({ allowedHosts: ['127.0.0.1'] }).execute(
      { url: `${base}/json` },
      makeCtx(),
    );
    expect(ok.status).toBe(200);
  });

  test('follows redirects, counting each hop, and checks every hop against allowedHosts', async () => {
    const ctx = makeCtx();
    const out = await httpTool().execute({ url: `${base}/redirect` }, ctx);
    expect(out.body).toEqual({ ok: true, items: [1, 2] });
    expect(ctx.counters.network).toBe(2);

    const err = await rejection(
      httpTool({ allowedHosts: [`127.0.0.1:${port}`] }).execute({ url: `${base}/away` }, makeCtx()),
    );
    expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
    expect((err as Error).message).toContain('host elsewhere.invalid is not in allowedHosts');

    const loop = await rejection(
      httpTool({ maxRedirects: 2 }).execute({ url: `${base}/loop` }, makeCtx()),
    );
    expect((loop as Error).message).toMatch(/more than 2 redirects/);
    expect(classifyError(loop).retryable).toBe(false);
  });

  test('a usage limit that throws stops the request before it is sent', async () => {
    const exhausted = new Error('ResourceExhausted: max network requests');
    const err = await rejection(
      httpTool().execute(
        { url: `${base}/json` },
        makeCtx({
          networkRequest: () => {
            throw exhausted;
          },
        }),
      ),
    );
    expect(err).toBe(exhausted);
    expect(seen).toHaveLength(0);
  });

  test('cuts the body at maxResponseBytes and says so', async () => {
    const out = await httpTool({ maxResponseBytes: 100 }).execute(
      { url: `${base}/big` },
      makeCtx(),
    );
    expect(out.truncated).toBe(true);
    expect(typeof out.body).toBe('string');
    expect((out.body as string).length).toBe(100);
    expect(out.body as string).toMatch(/^\{"data":"xxx/);
  });

  test('an abort of ctx.signal rejects with its reason', async () => {
    const controller = new AbortController();
    const reason = new CancelledError('user cancelled');
    const pending = httpTool().execute(
      { url: `${base}/slow` },
      makeCtx({ signal: controller.signal }),
    );
    // Abort once the server has seen the request.
    await expect.poll(() => seen.some((s) => s.url === '/slow')).toBe(true);
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
  });

  test('timeoutMs turns a hung response into a TIMEOUT error', async () => {
    const err = await rejection(
      httpTool({ timeoutMs: 50 }).execute({ url: `${base}/slow` }, makeCtx()),
    );
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    expect(classifyError(err).status).toBe('timeout');
  });

  test('invalid arguments are validation errors, never sent', async () => {
    const tool = httpTool();
    for (const args of [
      {},
      { url: 'not a url' },
      { url: 'ftp://127.0.0.1/x' },
      { url: `${base}/echo`, body: 'a', json: {} },
      { url: `${base}/echo`, method: 'GET', body: 'a' },
      { url: `http://user:pw@127.0.0.1:${port}/json` },
    ]) {
      const err = await rejection(tool.execute(args as never, makeCtx()));
      expect(err).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    expect(seen).toHaveLength(0);
  });

  test('bad options throw at construction', () => {
    expect(() => httpTool({ timeoutMs: -1 })).toThrow(/invalid option http.timeoutMs/);
    expect(() => httpTool({ allowedHosts: [''] })).toThrow(/invalid option http.allowedHosts/);
    expect(() => httpTool({ maxResponseBytes: 1.5 })).toThrow(/http.maxResponseBytes/);
  });
});

// =============================================================================================
// sleep
// =============================================================================================

describe('sleep tool', () => {
  test('resolves with the time slept and leaves no listener behind', async () => {
    const controller = new AbortController();
    const out = await sleepTool().execute({ ms: 5 }, makeCtx({ signal: controller.signal }));
    expect(out).toEqual({ sleptMs: 5 });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(await sleepTool().execute({ seconds: 0.002 }, makeCtx())).toEqual({ sleptMs: 2 });
  });

  test('rejects with the signal reason when aborted mid-sleep', async () => {
    const controller = new AbortController();
    const reason = new CancelledError('stop');
    const pending = sleepTool().execute({ ms: 60_000 }, makeCtx({ signal: controller.signal }));
    // execute() armed its timer and abort listener before returning: this abort is mid-sleep.
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  test('rejects at once when already aborted', async () => {
    const reason = new Error('already');
    expect(
      await rejection(
        sleepTool().execute({ ms: 60_000 }, makeCtx({ signal: AbortSignal.abort(reason) })),
      ),
    ).toBe(reason);
  });

  test('needs exactly one of ms and seconds, within the timer range', async () => {
    for (const args of [{}, { ms: 1, seconds: 1 }, { ms: -1 }, { ms: 3e9 }, { ms: '5' }]) {
      expect(await rejection(sleepTool().execute(args as never, makeCtx()))).toMatchObject({
        code: 'VALIDATION_ERROR',
      });
    }
  });
});

// =============================================================================================
// transform
// =============================================================================================

describe('transform tool', () => {
  const input = { user: { name: 'Ada', langs: ['en', 'fr'], age: 36 }, ok: true };
  const run = (args: Record<string, unknown>) => transformTool().execute(args as never, makeCtx());

  test('without options the input comes back unchanged', async () => {
    expect(await run({ input })).toBe(input);
  });

  test('pick takes the value at a JSON path', async () => {
    expect(await run({ input, pick: '$.user.langs[0]' })).toBe('en');
    expect(await run({ input, pick: 'user.langs[-1]' })).toBe('fr');
    expect(await run({ input, pick: '$.user' })).toEqual(input.user);
  });

  test('merge is shallow, over the picked value', async () => {
    expect(await run({ input, pick: '$.user', merge: { age: 37, city: 'London' } })).toEqual({
      name: 'Ada',
      langs: ['en', 'fr'],
      age: 37,
      city: 'London',
    });
    expect(input.user.age).toBe(36); // the input is not mutated
  });

  test('template renders placeholders from the (picked, merged) value', async () => {
    expect(
      await run({
        input,
        template: '{{ $.user.name }} ({{user.age}}) speaks {{user.langs}}; ok={{ok}}',
      }),
    ).toBe('Ada (36) speaks ["en","fr"]; ok=true');
    expect(
      await run({ input, pick: '$.user', merge: { x: null }, template: '{{name}}/{{x}}' }),
    ).toBe('Ada/null');
    expect(await run({ input: 7, template: 'n={{$}}' })).toBe('n=7');
  });

  test('a path that names nothing, or a bad merge, is a validation error', async () => {
    for (const args of [
      { input, pick: '$.user.missing' },
      { input, pick: '$..bad' },
      { input, template: 'hi {{user.nope}}' },
      { input, pick: '$.user.langs', merge: { a: 1 } },
      { pick: '$.a' },
    ]) {
      const err = await rejection(run(args));
      expect(err).toMatchObject({ code: 'VALIDATION_ERROR' });
      expect(classifyError(err).retryable).toBe(false);
    }
    expect(((await rejection(run({ input, pick: '$.user.missing' }))) as Error).message).toBe(
      'transform: pick: "$.user.missing" not found',
    );
  });
});

// =============================================================================================
// file.read / file.write
// =============================================================================================

describe('file tools', () => {
  let dir: string;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'stride-files-')));
    root = join(dir, 'root');
    outside = join(dir, 'outside');
    await mkdir(root);
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'top secret');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('write (create) then read, with byte counts reported', async () => {
    const [read, write] = fileTools({ root });
    const ctx = makeCtx();
    const written = await write.execute({ path: 'a.txt', content: 'héllo', mode: 'create' }, ctx);
    expect(written).toEqual({ path: 'a.txt', bytes: 6, created: true });
    expect(ctx.counters.writes).toEqual([6]);
    expect(await readFile(join(root, 'a.txt'), 'utf8')).toBe('héllo');

    const got = await read.execute({ path: './a.txt' }, ctx);
    expect(got).toEqual({ path: 'a.txt', content: 'héllo', bytes: 6 });
    expect(ctx.counters.reads).toEqual([6]);

    const b64 = await read.execute({ path: 'a.txt', encoding: 'base64' }, makeCtx());
    expect(Buffer.from(b64.content, 'base64').toString('utf8')).toBe('héllo');
  });

  test('create refuses an existing file; overwrite keeps the previous content', async () => {
    const [, write] = fileTools({ root });
    await writeFile(join(root, 'b.txt'), 'old');
    const err = await rejection(
      write.execute({ path: 'b.txt', content: 'x', mode: 'create' }, makeCtx()),
    );
    expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
    expect((err as Error).message).toContain('b.txt already exists');

    const ctx = makeCtx();
    const out = await write.execute({ path: 'b.txt', content: 'new!' }, ctx);
    expect(out).toEqual({
      path: 'b.txt',
      bytes: 4,
      created: false,
      previous: 'old',
      previousEncoding: 'utf8',
    });
    expect(ctx.counters.reads).toEqual([3]);
    expect(ctx.counters.writes).toEqual([4]);
    expect(await readFile(join(root, 'b.txt'), 'utf8')).toBe('new!');
  });

  test('append adds to the end and records the previous size', async () => {
    const [, write] = fileTools({ root });
    const first = await write.execute(
      { path: 'log.txt', content: 'one\n', mode: 'append' },
      makeCtx(),
    );
    expect(first).toEqual({ path: 'log.txt', bytes: 4, created: true });
    const second = await write.execute(
      { path: 'log.txt', content: 'two\n', mode: 'append' },
      makeCtx(),
    );
    expect(second).toEqual({ path: 'log.txt', bytes: 4, created: false, previousBytes: 4 });
    expect(await readFile(join(root, 'log.txt'), 'utf8')).toBe('one\ntwo\n');

    await write.compensate?.(
      { path: 'log.txt', content: 'two\n', mode: 'append' },
      second,
      makeCtx(),
    );
    expect(await readFile(join(root, 'log.txt'), 'utf8')).toBe('one\n');
    await write.compensate?.(
      { path: 'log.txt', content: 'two\n', mode: 'append' },
      second,
      makeCtx(),
    );
    expect(await readFile(join(root, 'log.txt'), 'utf8')).toBe('one\n');
  });

  test('base64 content is written as bytes, and binary previous content is kept as base64', async () => {
    const [, write] = fileTools({ root });
    const bytes = Buffer.from([0xff, 0x00, 0xfe]);
    const a = await write.execute(
      { path: 'bin', content: bytes.toString('base64'), encoding: 'base64' },
      makeCtx(),
    );
    expect(a.bytes).toBe(3);
    expect(await readFile(join(root, 'bin'))).toEqual(bytes);
    const args = { path: 'bin', content: 'text' };
    const b = await write.execute(args, makeCtx());
    expect(b).toMatchObject({ previous: bytes.toString('base64'), previousEncoding: 'base64' });
    await write.compensate?.(args, b, makeCtx());
    expect(await readFile(join(root, 'bin'))).toEqual(bytes);
    expect(
      await rejection(write.execute({ path: 'x', content: '!!!', encoding: 'base64' }, makeCtx())),
    ).toMatchObject({ code: 'VALIDATION_ERROR' });
  });

  test.each([['../x'], ['a/../../outside/secret.txt'], ['..']])(
    'a path escaping the root is refused: %s',
    async (path) => {
      const [read, write] = fileTools({ root });
      const err = await rejection(read.execute({ path }, makeCtx()));
      expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
      expect((err as Error).message).toContain(`path ${JSON.stringify(path)} escapes the root`);
      const werr = await rejection(write.execute({ path, content: 'x' }, makeCtx()));
      expect((werr as Error).message).toContain('escapes the root');
    },
  );

  test('absolute paths are refused, even inside the root', async () => {
    const [read, write] = fileTools({ root });
    await writeFile(join(root, 'in.txt'), 'x');
    for (const path of [join(outside, 'secret.txt'), join(root, 'in.txt')]) {
      const err = await rejection(read.execute({ path }, makeCtx()));
      expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
      expect((err as Error).message).toContain(`absolute path ${JSON.stringify(path)} refused`);
    }
    expect(
      await rejection(write.execute({ path: join(outside, 'new.txt'), content: 'x' }, makeCtx())),
    ).toMatchObject({ code: 'NON_RETRYABLE' });
    await expect(stat(join(outside, 'new.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('symlinks leading outside the root are refused, for reads and writes', async () => {
    const [read, write] = fileTools({ root });
    await symlink(outside, join(root, 'dirlink'));
    await symlink(join(outside, 'secret.txt'), join(root, 'filelink'));
    await symlink(join(outside, 'nothing-yet.txt'), join(root, 'dangling'));

    for (const path of ['dirlink/secret.txt', 'filelink']) {
      const err = await rejection(read.execute({ path }, makeCtx()));
      expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
      expect((err as Error).message).toContain('leads outside the root through a symbolic link');
    }
    for (const path of ['dirlink/new.txt', 'filelink', 'dangling']) {
      const err = await rejection(write.execute({ path, content: 'pwned' }, makeCtx()));
      expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
    }
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
    await expect(stat(join(outside, 'new.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(outside, 'nothing-yet.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('symlinks inside the root, and a root that is itself a symlink, work', async () => {
    await mkdir(join(root, 'real'));
    await writeFile(join(root, 'real', 'f.txt'), 'inside');
    await symlink(join(root, 'real'), join(root, 'alias'));
    await symlink(root, join(dir, 'rootlink'));
    const [read, write] = fileTools({ root: join(dir, 'rootlink') });
    expect((await read.execute({ path: 'alias/f.txt' }, makeCtx())).content).toBe('inside');
    await write.execute({ path: 'alias/f.txt', content: 'changed' }, makeCtx());
    expect(await readFile(join(root, 'real', 'f.txt'), 'utf8')).toBe('changed');
    // the write went through to the target: the link is still a link
    expect((await lstat(join(root, 'alias'))).isSymbolicLink()).toBe(true);
  });

  test('compensate of a created file deletes it, and is idempotent', async () => {
    const [, write] = fileTools({ root });
    const args = { path: 'made.txt', content: 'temp', mode: 'create' as const };
    const out = await write.execute(args, makeCtx());
    await write.compensate?.(args, out, makeCtx());
    await expect(stat(join(root, 'made.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(write.compensate?.(args, out, makeCtx())).resolves.toBeUndefined();
  });

  test('compensate of an overwrite restores the old content and mode, idempotently', async () => {
    const [, write] = fileTools({ root });
    const file = join(root, 'conf.txt');
    await writeFile(file, 'original', { mode: 0o640 });
    const args = { path: 'conf.txt', content: 'replaced' };
    const out = await write.execute(args, makeCtx());
    expect(await readFile(file, 'utf8')).toBe('replaced');
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    const ctx = makeCtx();
    await write.compensate?.(args, out, ctx);
    expect(await readFile(file, 'utf8')).toBe('original');
    expect(ctx.counters.writes).toEqual([8]);
    await write.compensate?.(args, out, ctx);
    expect(await readFile(file, 'utf8')).toBe('original');
    expect(ctx.counters.writes).toEqual([8]); // nothing left to undo
  });

  test('compensate with an unknown outcome undoes a landed create, refuses a landed overwrite', async () => {
    const [, write] = fileTools({ root });
    const create = { path: 'c.txt', content: 'mine', mode: 'create' as const };
    await write.execute(create, makeCtx());
    await write.compensate?.(create, undefined, makeCtx());
    await expect(stat(join(root, 'c.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(write.compensate?.(create, undefined, makeCtx())).resolves.toBeUndefined();

    await writeFile(join(root, 'o.txt'), 'before');
    const overwrite = { path: 'o.txt', content: 'after' };
    // never landed: nothing to undo
    await expect(write.compensate?.(overwrite, undefined, makeCtx())).resolves.toBeUndefined();
    await write.execute(overwrite, makeCtx());
    const err = await rejection(
      write.compensate?.(overwrite, undefined, makeCtx()) ?? Promise.resolve(),
    );
    expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
    expect((err as Error).message).toContain('cannot undo the overwrite of o.txt');
  });

  test('overwriting a file too big to keep for compensation is refused', async () => {
    const [, write] = fileTools({ root, maxPreviousBytes: 10 });
    await writeFile(join(root, 'big.txt'), 'x'.repeat(11));
    const err = await rejection(write.execute({ path: 'big.txt', content: 'y' }, makeCtx()));
    expect(err).toMatchObject({ code: 'NON_RETRYABLE' });
    expect((err as Error).message).toMatch(/refusing to overwrite big.txt \(11 bytes\)/);
    expect(await readFile(join(root, 'big.txt'), 'utf8')).toBe('x'.repeat(11));
  });

  test('missing files and directories are permanent errors; no directory is created', async () => {
    const [read, write] = fileTools({ root, maxReadBytes: 4 });
    const missing = await rejection(read.execute({ path: 'nope.txt' }, makeCtx()));
    expect(missing).toMatchObject({ code: 'NON_RETRYABLE' });
    expect((missing as Error).message).toContain('ENOENT');
    const noDir = await rejection(write.execute({ path: 'sub/x.txt', content: 'x' }, makeCtx()));
    expect((noDir as Error).message).toContain('directory of sub/x.txt does not exist');
    await expect(stat(join(root, 'sub'))).rejects.toMatchObject({ code: 'ENOENT' });
    await writeFile(join(root, 'five.txt'), '12345');
    expect(
      ((await rejection(read.execute({ path: 'five.txt' }, makeCtx()))) as Error).message,
    ).toContain('more than maxReadBytes 4');
  });

  test('an aborted signal stops the call with its reason', async () => {
    const [read, write] = fileTools({ root });
    const reason = new CancelledError('stop');
    const ctx = makeCtx({ signal: AbortSignal.abort(reason) });
    expect(await rejection(write.execute({ path: 'z.txt', content: 'z' }, ctx))).toBe(reason);
    expect(await rejection(read.execute({ path: 'z.txt' }, ctx))).toBe(reason);
    await expect(stat(join(root, 'z.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('leaves no temp file behind', async () => {
    const [, write] = fileTools({ root });
    await write.execute({ path: 'a', content: '1', mode: 'create' }, makeCtx());
    const out: FileWriteResult = await write.execute({ path: 'a', content: '2' }, makeCtx());
    await write.compensate?.({ path: 'a', content: '2' }, out, makeCtx());
    expect(await readdir(root)).toEqual(['a']);
  });
});

describe('builtinTools', () => {
  test('file tools only with a root; never a shell', () => {
    expect(builtinTools().map((t) => t.name)).toEqual(['http', 'sleep', 'transform']);
    const all = builtinTools({ root: tmpdir(), http: { timeoutMs: 1000 } }).map((t) => t.name);
    expect(all).toEqual(['http', 'sleep', 'transform', 'file.read', 'file.write']);
    expect(all.some((n) => /shell|exec/.test(n))).toBe(false);
  });

  test('every built-in tool has a schema and a description', () => {
    for (const tool of builtinTools({ root: tmpdir() })) {
      expect(tool.schema, tool.name).toBeDefined();
      expect(tool.description, tool.name).toMatch(/\S/);
    }
    expect(
      builtinTools({ root: tmpdir() }).find((t) => t.name === 'file.write')?.compensate,
    ).toBeTypeOf('function');
  });
});
