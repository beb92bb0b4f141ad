// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
/**
 * A password inside the target's URL never reaches Redis (issue #16 item 10): every key's
 * value, of every type, and the append-only file (every write Redis ran, deleted keys included)
 * are scanned for it. Real redis-server, the mock on a real socket, a worker in this process.
 */

import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { main } from '../../src/cli/app.js';
import { startWorker } from '../../src/distributed/index.js';
import { captureIo } from '../cli/helpers.js';
import { distributedFixture } from './redis.js';

const f = distributedFixture(1);

/** Every value of every key in Redis, as text, and every file in its folder, as bytes. */
async function redisContents(): Promise<{ keys: number; values: string; files: Buffer }> {
  const client = new Redis(f.redis.url);
  try {
    const parts: string[] = [];
    const keys = await client.keys('*');
    for (const key of keys) {
      parts.push(key);
      const type = await client.type(key);
      if (type === 'string') parts.push(String(await client.get(key)));
      else if (type === 'hash') parts.push(JSON.stringify(await client.hgetall(key)));
      else if (type === 'list') parts.push(JSON.stringify(await client.lrange(key, 0, -1)));
      else if (type === 'set') parts.push(JSON.stringify(await client.smembers(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await client.zrange(key, '0', '-1')));
      else if (type === 'stream') parts.push(JSON.stringify(await client.xrange(key, '-', '+')));
      else throw new Error(`key ${key} of type ${type}: not scanned`);
    }
    const files: Buffer[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(readFileSync(path));
      }
    };
    walk(f.redis.dir);
    return { keys: keys.length, values: parts.join('\n'), files: Buffer.concat(files) };
  } finally {
    client.disconnect();
  }
}

function plan(dir: string, baseUrl: string): string {
  const path = join(dir, 'plan.yaml');
  const cases = Array.from(
    { length: 6 },
    (_, i) => `  - { id: c${i}, inputs: { query: "q ${i}" }, expected: { contains: "q" } }`,
  ).join('\n');
  writeFileSync(
    path,
    `workflow_id: url-secret\ntarget: { type: dify, base_url: "${baseUrl}", api_key: "\${KEY:-app-x}", app: workflow, response_mode: blocking }\nexecution_policy: { concurrency: 2 }\ncases:\n${cases}\n`,
  );
  return path;
}

describe('a password in base_url and Redis', () => {
  test('written in the plan: the distributed run is refused (exit 2, names target.base_url) and Redis never sees it', async () => {
    f.mock.reset();
    const password = 'pw-literal-5151';
    const dir = mkdtempSync(join(tmpdir(), 'stride-dist-secret-'));
    const url = f.mock.baseUrl.replace('://', `://bob:${password}@`);
    const { io, text } = captureIo({});
    const code = await main(
      ['run', plan(dir, url), ...f.dispatchArgs('q-secret-literal', join(dir, 'stride.db'))],
      io,
    );
    expect(code, text.err).toBe(2);
    expect(text.err).toContain(
      'target.base_url holds a secret written in the plan (credentials in the URL): a distributed run sends no secret through Redis, so give it as ${VAR}',
    );
    expect(text.err + text.out).not.toContain(password);
    const redis = await redisContents();
    expect(redis.values).not.toContain(password);
    expect(redis.files.includes(Buffer.from(password))).toBe(false);
    expect(f.mock.stats().runs).toBe(0);
  });

  test('from ${VAR}: the workers rebuild it from their own environment; no key, value or AOF byte holds it', async () => {
    const password = 'pw-from-env-6161';
    const dir = mkdtempSync(join(tmpdir(), 'stride-dist-secret-'));
    const env = { SECRET_URL: f.mock.baseUrl.replace('://', `://bob:${password}@`) };
    const queue = 'q-secret-env';
    const worker = await startWorker({ redis: f.redis.url, queue, concurrency: 2, env });
    try {
      f.mock.reset();
      const db = join(dir, 'stride.db');
      const { io, text } = captureIo(env);
      const code = await main(
        [
          'run',
          plan(dir, '${SECRET_URL}'),
          ...f.dispatchArgs(queue, db),
          '--out',
          join(dir, 'out'),
          '--json',
          '--no-progress',
        ],
        io,
      );
      expect(code, text.err).toBe(0);
      expect(JSON.parse(text.out)).toMatchObject({ total: 6, passed: 6 });
      expect(f.mock.stats().runs).toBe(6);
      const redis = await redisContents();
      // The run left its queue, target and reply keys: the scan read something.
      expect(redis.keys).toBeGreaterThan(0);
      expect(redis.values).toContain('[redacted]');
      expect(redis.values).not.toContain(password);
      expect(redis.files.length).toBeGreaterThan(0);
      expect(redis.files.includes(Buffer.from(password))).toBe(false);
      // Nor the journal and the reports (the store's own scan is test/store/secrets.test.ts).
      for (const folder of [dir, join(dir, 'out')]) {
        for (const name of readdirSync(folder)) {
          const path = join(folder, name);
          if (statSync(path).isFile())
            expect(readFileSync(path).includes(Buffer.from(password)), path).toBe(false);
        }
      }
    } finally {
      await worker.close();
    }
  }, 180_000);
});
