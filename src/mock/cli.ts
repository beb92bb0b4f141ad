/**
 * `stride mock`: starts the mock server until interrupted.
 *
 *   stride mock [--port 5001] [--host 127.0.0.1] [--latency 50 | 20-80 | 50~10 | exp:50]
 *               [--error-rate 429:0.1,500:0.05] [--max-concurrency N] [--rate-limit PER_MINUTE]
 *               [--burst N] [--rate-limit-code CODE] [--retry-after SECONDS] [--api-key KEY]...
 *               [--output echo|upper|lower|
 *               reverse|template:TEXT] [--tokens N] [--ping-interval MS] [--chunk-delay MS]
 *               [--seed N] [--quiet] [--grader-model ID]... [--grade-pass-when KEYWORD]
 *               [--grade-garble-when KEYWORD] [--grade-pass-score S] [--grade-fail-score S]
 *               [--grade-reason TEXT] [--embedding-dims N]
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { MockGraderRule } from './grader.js';
import type { LatencySpec, MockFault, MockOptions, MockOutputRule } from './options.js';
import { DEFAULT_MODELS, DIFY_APP_MODES, type DifyAppMode, MOCK_FAULTS } from './options.js';
import { startMock } from './server.js';

export const MOCK_USAGE = `usage: stride mock [--port N] [--host H] [--latency MS|MIN-MAX|MEAN~SD|exp:MEAN]
                   [--error-rate FAULT:SHARE,...] [--max-concurrency N] [--rate-limit PER_MINUTE]
                   [--burst N] [--rate-limit-code rate_limit_error|too_many_requests]
                   [--retry-after SECONDS] [--api-key KEY]... [--output RULE]
                   [--tokens N] [--ping-interval MS] [--chunk-delay MS] [--seed N] [--quiet]
                   [--app KEY=MODE]... [--model ID]... [--responses FILE]
                   [--grader-model ID]... [--grade-pass-when KEYWORD] [--grade-garble-when KEYWORD]
                   [--grade-hang-when KEYWORD]
                   [--grade-pass-score S] [--grade-fail-score S] [--grade-reason TEXT]
                   [--embedding-dims N]

  A Dify- and OpenAI-compatible mock server with fault injection.
  Faults: ${MOCK_FAULTS.join(', ')}
  Output rules: echo, upper, lower, reverse, template:TEXT (with {{text}} or {{input-name}})
  --app KEY=MODE binds a Dify key to an app mode (${DIFY_APP_MODES.join(', ')});
  --model ID lists a model in GET /v1/models (default: ${DEFAULT_MODELS.join(', ')})
  --responses FILE answers from a YAML or JSON mapping of message -> answer (the query, or the last
    user message); other messages get --output (default echo)
  Grader: chat completions for --grader-model (default stride-grader) answer a JSON verdict
    {"pass","score","reason"} about the prompt's <output>...</output>: pass when it contains
    --grade-pass-when (every answer passes without it), scores --grade-pass-score (1) and
    --grade-fail-score (0); an unparsable verdict when it contains --grade-garble-when; no
    answer at all (a hung grader) when it contains --grade-hang-when.
    Per request: header x-mock-grade or metadata.__grade = pass | fail | garbage | SCORE.
  POST /v1/embeddings: vectors from a hash of the words (equal texts cosine 1), length
    --embedding-dims (256) unless the request gives dimensions`;

/** Where the command writes, and what stops it (SIGINT/SIGTERM by default). */
export interface MockCommandIo {
  readonly stdout?: { write(s: string): unknown };
  readonly stderr?: { write(s: string): unknown };
  /** Stops the server when aborted; without it, SIGINT or SIGTERM does. */
  readonly signal?: AbortSignal;
  /** Called once the server listens, with its URL. */
  readonly onListening?: (url: string) => void;
}

class MockUsageError extends Error {}

function num(flag: string, raw: string, min: number, integer = false): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new MockUsageError(
      `--${flag}: ${JSON.stringify(raw)} is not ${integer ? 'an integer' : 'a number'} >= ${min}`,
    );
  return n;
}

/** Parses `50`, `20-80` (uniform), `50~10` (normal), `exp:50` (exponential). */
export function parseLatency(raw: string): LatencySpec {
  const s = raw.trim();
  if (s.startsWith('exp:')) return { exponential: num('latency', s.slice(4), 0) };
  const normal = /^([\d.]+)~([\d.]+)$/.exec(s);
  if (normal !== null)
    return { mean: num('latency', normal[1]!, 0), stddev: num('latency', normal[2]!, 0) };
  const range = /^([\d.]+)-([\d.]+)$/.exec(s);
  if (range !== null) {
    const min = num('latency', range[1]!, 0);
    const max = num('latency', range[2]!, min);
    return { min, max };
  }
  return num('latency', s, 0);
}

/** Parses `429:0.1,500:0.05` into error rates. */
export function parseErrorRates(raw: string): Partial<Record<MockFault, number>> {
  const out: Partial<Record<MockFault, number>> = {};
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue;
    const i = part.lastIndexOf(':');
    const fault = part.slice(0, i).trim();
    if (i < 0 || !MOCK_FAULTS.includes(fault as MockFault))
      throw new MockUsageError(
        `--error-rate: ${JSON.stringify(part)} is not FAULT:SHARE (faults: ${MOCK_FAULTS.join(', ')})`,
      );
    const share = num('error-rate', part.slice(i + 1), 0);
    if (share > 1) throw new MockUsageError(`--error-rate: share ${share} is above 1`);
    out[fault as MockFault] = share;
  }
  return out;
}

function parseOutput(raw: string): MockOutputRule {
  if (raw === 'echo' || raw === 'upper' || raw === 'lower' || raw === 'reverse') return raw;
  if (raw.startsWith('template:')) return { template: raw.slice('template:'.length) };
  throw new MockUsageError(
    `--output: ${JSON.stringify(raw)} is not echo, upper, lower, reverse or template:TEXT`,
  );
}

/** Parses `--app KEY=MODE` flags; the key is a secret, so a bad one is not echoed. */
export function parseApps(raw: readonly string[]): Record<string, DifyAppMode> {
  const apps: Record<string, DifyAppMode> = {};
  for (const item of raw) {
    const i = item.lastIndexOf('=');
    const mode = item.slice(i + 1);
    if (i <= 0 || !DIFY_APP_MODES.includes(mode as DifyAppMode))
      throw new MockUsageError(
        `--app: expected KEY=MODE with MODE one of ${DIFY_APP_MODES.join(', ')}, got ${i <= 0 ? 'no =' : JSON.stringify(mode)}`,
      );
    apps[item.slice(0, i)] = mode as DifyAppMode;
  }
  return apps;
}

/**
 * Reads `--responses FILE`: a YAML (or JSON) mapping of a message (the Dify query, else
 * `inputs.query`; OpenAI's last user message) to the answer the mock gives, so a plan's
 * assertions can pass without a provider. Throws naming the file and the bad entry.
 */
export function readResponses(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new MockUsageError(
      `--responses: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new MockUsageError(`--responses: ${file} is not YAML or JSON: ${(e as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new MockUsageError(`--responses: ${file} must be a mapping of message -> answer`);
  const out: Record<string, string> = {};
  for (const [message, answer] of Object.entries(data)) {
    if (typeof answer !== 'string')
      throw new MockUsageError(
        `--responses: ${file}: the answer to ${JSON.stringify(message)} must be a string, got ${JSON.stringify(answer)}`,
      );
    out[message] = answer;
  }
  return out;
}

function score(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = num(flag, raw, 0);
  if (n > 1) throw new MockUsageError(`--${flag}: ${n} is above 1 (a score is in 0..1)`);
  return n;
}

function nonEmpty(flag: string, raw: string | undefined): string | undefined {
  if (raw === '') throw new MockUsageError(`--${flag}: must not be empty`);
  return raw;
}

/** The grader rule from the `--grade-*` flags. */
function parseGrader(values: Record<string, unknown>): MockGraderRule {
  const str = (k: string) => values[k] as string | undefined;
  const rule: { -readonly [K in keyof MockGraderRule]: MockGraderRule[K] } = {};
  const models = values['grader-model'] as string[] | undefined;
  if (models !== undefined) rule.models = models;
  const pass = nonEmpty('grade-pass-when', str('grade-pass-when'));
  if (pass !== undefined) rule.passWhenContains = pass;
  const garble = nonEmpty('grade-garble-when', str('grade-garble-when'));
  if (garble !== undefined) rule.garbleWhenContains = garble;
  const hang = nonEmpty('grade-hang-when', str('grade-hang-when'));
  if (hang !== undefined) rule.hangWhenContains = hang;
  const ps = score('grade-pass-score', str('grade-pass-score'));
  if (ps !== undefined) rule.passScore = ps;
  const fs = score('grade-fail-score', str('grade-fail-score'));
  if (fs !== undefined) rule.failScore = fs;
  const reason = str('grade-reason');
  if (reason !== undefined) rule.reason = reason;
  return rule;
}

/** Turns command-line arguments into mock options. Throws on bad input. */
export function parseMockArgs(argv: readonly string[]): MockOptions & { quiet: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: 'string', default: '5001' },
      host: { type: 'string', default: '127.0.0.1' },
      latency: { type: 'string' },
      'error-rate': { type: 'string' },
      'max-concurrency': { type: 'string' },
      'rate-limit': { type: 'string' },
      burst: { type: 'string' },
      'rate-limit-code': { type: 'string' },
      'retry-after': { type: 'string' },
      'api-key': { type: 'string', multiple: true },
      app: { type: 'string', multiple: true },
      model: { type: 'string', multiple: true },
      responses: { type: 'string' },
      output: { type: 'string' },
      tokens: { type: 'string' },
      'ping-interval': { type: 'string' },
      'chunk-delay': { type: 'string' },
      seed: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      'grader-model': { type: 'string', multiple: true },
      'grade-pass-when': { type: 'string' },
      'grade-garble-when': { type: 'string' },
      'grade-hang-when': { type: 'string' },
      'grade-pass-score': { type: 'string' },
      'grade-fail-score': { type: 'string' },
      'grade-reason': { type: 'string' },
      'embedding-dims': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const options: {
    -readonly [K in keyof MockOptions]: MockOptions[K];
  } & { quiet: boolean } = {
    port: num('port', values.port, 0, true),
    host: values.host,
    quiet: values.quiet,
  };
  if (options.port! > 65535) throw new MockUsageError('--port: must be at most 65535');
  if (values.latency !== undefined) options.latencyMs = parseLatency(values.latency);
  if (values['error-rate'] !== undefined)
    options.errorRates = parseErrorRates(values['error-rate']);
  if (values['max-concurrency'] !== undefined)
    options.maxConcurrency = num('max-concurrency', values['max-concurrency'], 1, true);
  if (values['rate-limit'] !== undefined) {
    options.rateLimit = {
      perMinute: num('rate-limit', values['rate-limit'].replace(/\/min$/, ''), 0.001),
      burst: values.burst === undefined ? 1 : num('burst', values.burst, 1, true),
    };
    const code = values['rate-limit-code'];
    if (code !== undefined) {
      if (code !== 'rate_limit_error' && code !== 'too_many_requests')
        throw new MockUsageError(
          `--rate-limit-code: ${JSON.stringify(code)} is invalid, expected rate_limit_error or too_many_requests`,
        );
      options.rateLimit = { ...options.rateLimit, code };
    }
  } else if (values['rate-limit-code'] !== undefined) {
    throw new MockUsageError('--rate-limit-code: needs --rate-limit');
  }
  if (values['retry-after'] !== undefined)
    options.retryAfterSeconds = num('retry-after', values['retry-after'], 0);
  if (values['api-key'] !== undefined) options.apiKeys = values['api-key'];
  if (values.app !== undefined) options.apps = parseApps(values.app);
  if (values.model !== undefined) options.models = values.model;
  if (values.output !== undefined) options.output = parseOutput(values.output);
  if (values.responses !== undefined) {
    const fallback = options.output ?? 'echo';
    if (typeof fallback !== 'string')
      throw new MockUsageError(
        '--responses: other messages are answered by --output, which must then be echo, upper, lower or reverse',
      );
    options.output = { lookup: readResponses(values.responses), fallback };
  }
  if (values.tokens !== undefined) options.tokens = num('tokens', values.tokens, 1, true);
  if (values['ping-interval'] !== undefined)
    options.pingIntervalMs = num('ping-interval', values['ping-interval'], 1, true);
  if (values['chunk-delay'] !== undefined)
    options.streamChunkDelayMs = num('chunk-delay', values['chunk-delay'], 0);
  if (values.seed !== undefined) options.seed = num('seed', values.seed, 0, true);
  options.grader = parseGrader(values);
  if (values['embedding-dims'] !== undefined)
    options.embeddingDimensions = num('embedding-dims', values['embedding-dims'], 1, true);
  return options;
}

/**
 * Runs `stride mock`: starts the server, prints its URL, waits for SIGINT/SIGTERM (or
 * `io.signal`), closes it and prints what it saw. Resolves with the exit code: 0 after a clean
 * stop, 2 for bad arguments, 1 if the server could not start (a port in use).
 */
export async function mockCommand(
  argv: readonly string[],
  io: MockCommandIo = {},
): Promise<number> {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(`${MOCK_USAGE}\n`);
    return 0;
  }
  let options: MockOptions & { quiet: boolean };
  try {
    options = parseMockArgs(argv);
  } catch (e) {
    const bad =
      e instanceof MockUsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    err.write(
      `stride mock: ${e instanceof Error ? e.message : String(e)}\n${bad ? MOCK_USAGE : ''}\n`,
    );
    return bad ? 2 : 1;
  }
  const { quiet, ...mockOptions } = options;
  let mock: Awaited<ReturnType<typeof startMock>>;
  try {
    mock = await startMock(mockOptions);
  } catch (e) {
    const code = (e as { code?: string }).code;
    err.write(
      `stride mock: ${code === 'INVALID_OPTION' ? '' : 'could not start: '}${e instanceof Error ? e.message : String(e)}\n`,
    );
    return code === 'INVALID_OPTION' ? 2 : 1;
  }
  if (!quiet) {
    out.write(`stride mock listening on ${mock.url}\n`);
    out.write(
      `  Dify base URL:   ${mock.baseUrl}  (any "Bearer app-..." key${mockOptions.apiKeys ? ' listed with --api-key' : ''})\n`,
    );
    out.write(`  OpenAI base URL: ${mock.baseUrl}\n`);
    out.write(`  stats:           GET ${mock.url}/__stats\n`);
  }
  io.onListening?.(mock.url);
  await new Promise<void>((resolve) => {
    if (io.signal !== undefined) {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
      return;
    }
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const stats = mock.stats();
  await mock.close();
  if (!quiet) {
    out.write(
      `stride mock stopped: ${stats.requests} requests, ${stats.runs} runs, peak in flight ${stats.peakInFlight}, ${stats.stops} stop calls\n`,
    );
  }
  return 0;
}
