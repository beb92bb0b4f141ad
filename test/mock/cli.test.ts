import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { mockCommand, parseErrorRates, parseLatency, parseMockArgs } from '../../src/mock/index.js';

function sink(): { write(s: string): boolean; text: () => string } {
  let out = '';
  return {
    write: (s: string) => {
      out += s;
      return true;
    },
    text: () => out,
  };
}

describe('stride mock (mockCommand)', () => {
  it('starts on the given port, serves, and stops cleanly when its signal aborts', async () => {
    const stdout = sink();
    const controller = new AbortController();
    let listening!: (url: string) => void;
    const ready = new Promise<string>((resolve) => {
      listening = resolve;
    });
    const done = mockCommand(['--port', '0', '--latency', '1', '--error-rate', '503:1'], {
      stdout,
      signal: controller.signal,
      onListening: (u) => listening(u),
    });
    const url = await ready; // the event itself, not a second of polling for it
    const res = await request(`${url}/v1/workflows/run`, {
      method: 'POST',
      headers: { authorization: 'Bearer app-cli', 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: {}, user: 'u' }),
    });
    await res.body.dump();
    expect(res.statusCode).toBe(503);
    controller.abort();
    expect(await done).toBe(0);
    expect(stdout.text()).toContain(`listening on ${url}`);
    expect(stdout.text()).toContain('1 requests, 1 runs');
  });

  it('exits 2 on bad arguments, naming the flag', async () => {
    const stderr = sink();
    expect(await mockCommand(['--latency', 'fast'], { stderr, stdout: sink() })).toBe(2);
    expect(stderr.text()).toContain('--latency');
    expect(await mockCommand(['--error-rate', '418:0.5'], { stderr, stdout: sink() })).toBe(2);
    expect(await mockCommand(['--bogus'], { stderr, stdout: sink() })).toBe(2);
  });

  it('parses latency specs, error rates and the other flags', () => {
    expect(parseLatency('50')).toBe(50);
    expect(parseLatency('20-80')).toEqual({ min: 20, max: 80 });
    expect(parseLatency('50~10')).toEqual({ mean: 50, stddev: 10 });
    expect(parseLatency('exp:40')).toEqual({ exponential: 40 });
    expect(parseErrorRates('429:0.1,500:0.05,429-retry-after:0.02')).toEqual({
      '429': 0.1,
      '500': 0.05,
      '429-retry-after': 0.02,
    });
    expect(
      parseMockArgs([
        '--port',
        '5002',
        '--max-concurrency',
        '5',
        '--rate-limit',
        '600',
        '--burst',
        '10',
        '--api-key',
        'app-a',
        '--api-key',
        'app-b',
        '--output',
        'template:A: {{text}}',
      ]),
    ).toMatchObject({
      port: 5002,
      maxConcurrency: 5,
      rateLimit: { perMinute: 600, burst: 10 },
      apiKeys: ['app-a', 'app-b'],
      output: { template: 'A: {{text}}' },
    });
  });
});
