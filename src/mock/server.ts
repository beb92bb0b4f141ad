/**
 * A real HTTP server that answers like Dify's Service API (workflow, chat and completion apps;
 * blocking and SSE; stop endpoints; auth and `invalid_param` errors; the newest response shapes)
 * and like OpenAI's chat completions, with fault injection. For the tests, the benchmarks and the
 * demo: it listens on 127.0.0.1, port 0 by default, and closes without leaving a handle behind.
 *
 * Per-request control (a header wins over an input):
 * - `__fault` input / `x-mock-fault` header: one of `MockFault`;
 * - `__fault_times` input / `x-mock-fault-times` header: the fault applies only to the first N
 *   requests of this case (a flaky case that then succeeds);
 * - `__latency_ms` input / `x-mock-latency-ms` header: this request's latency;
 * - `__tokens` input: total tokens of this answer; `__output` input: the answer itself;
 * - `__case` input / `x-mock-case` header: the case key for `stats().byCase` (default: the query,
 *   else `inputs.query`, else the inputs as JSON).
 * OpenAI requests take the same keys in the body's `metadata` object.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type ArrivalWindow, arrivalWindow, HEARTBEAT_MS } from './arrivals.js';
import {
  applyMockLimits,
  MOCK_FAULTS,
  type MockFault,
  type MockLimits,
  type MockOptions,
  type ResolvedMockOptions,
  resolveMockOptions,
} from './options.js';
import { dispatch, isGeneration } from './routes.js';

export type {
  LatencySpec,
  MockFault,
  MockLimits,
  MockOptions,
  MockOutputRule,
} from './options.js';
export { MOCK_FAULTS } from './options.js';

/** What the mock has seen since it started (or since `reset()`). */
export interface MockStats {
  /** Every request under /v1 and /echo (runs, stops, parameters...). */
  requests: number;
  /** Generation requests: workflow runs, chat and completion messages, chat completions, echo. */
  runs: number;
  /** Generation requests open now. */
  inFlight: number;
  /** The most generation requests ever open at once. */
  peakInFlight: number;
  /** Generation requests per case key. */
  byCase: Record<string, number>;
  /**
   * Requests per endpoint (`workflow`, `chat`, `completion`, `openai`, `grade` (chat completions
   * answered as the grader), `embeddings`, `echo`, `stop`, ...).
   */
  byEndpoint: Record<string, number>;
  /** Responses per HTTP status (streams count as 200 when their headers are sent). */
  byStatus: Record<string, number>;
  /** Faults injected, by fault. */
  faults: Record<string, number>;
  /** Stop calls received. */
  stops: number;
  /** The task ids of the stop calls, in order (the first 10,000). */
  stoppedTaskIds: string[];
  /**
   * Stop calls that named a run still going upstream: its stream open, or a hanging run whose
   * client went away (Dify keeps such runs going until stopped). The rest named a finished or
   * unknown task.
   */
  stoppedLive: number;
  /** Hanging runs whose client went away and that nobody stopped: work left running upstream. */
  orphaned: number;
  /** `event: ping` keep-alives written. */
  pings: number;
  /** Generation requests whose client went away before the answer ended. */
  aborted: number;
  /** 429s from the mock's own concurrency and rate limits. */
  limited: number;
  /** Tokens charged (answered runs, failed workflows included). */
  tokens: number;
}

/** One request, kept with `recordRequests`. The Authorization header is never kept. */
export interface RecordedRequest {
  readonly endpoint: string;
  readonly caseKey: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
}

/** A running mock. */
export interface MockServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `url + '/v1'`: the base URL for Dify and OpenAI targets. */
  readonly baseUrl: string;
  readonly port: number;
  /** A snapshot of the statistics (also served as JSON by `GET /__stats`). */
  stats(): MockStats;
  /** Zeroes the statistics (also `POST /__reset`). Open requests keep running. */
  reset(): void;
  /**
   * The most tokens (or generation requests) that arrived within any window of `windowMs`:
   * what a provider's per-minute limit would have counted.
   */
  maxInWindow(windowMs: number, what: 'tokens' | 'requests'): number;
  /**
   * The requests of `maxInWindow(windowMs, 'requests')` with the mock's own stalls accounted
   * for: the most stamped in a window, the least that window can have held given how long the
   * mock's event loop was away before each stamp, and that stall (src/mock/arrivals.ts).
   */
  arrivals(windowMs: number): ArrivalWindow;
  /** Recorded requests (with `recordRequests`), oldest first. */
  requests(): RecordedRequest[];
  /**
   * Changes the concurrency or rate limit from now on (also `POST /__limits` with the same
   * JSON): a target whose capacity changes mid-run. Requests already admitted keep running.
   */
  setLimits(limits: MockLimits): void;
  /** Stops listening, ends every open request and connection, clears every timer. */
  close(): Promise<void>;
}

/** Per-request control values, from headers or the request's inputs / metadata. */
export interface Control {
  fault: MockFault | undefined;
  latencyMs: number;
  tokens: number | undefined;
  caseKey: string;
}

function emptyStats(): MockStats {
  return {
    requests: 0,
    runs: 0,
    inFlight: 0,
    peakInFlight: 0,
    byCase: {},
    byEndpoint: {},
    byStatus: {},
    faults: {},
    stops: 0,
    stoppedTaskIds: [],
    stoppedLive: 0,
    orphaned: 0,
    pings: 0,
    aborted: 0,
    limited: 0,
    tokens: 0,
  };
}

/** One request/response pair: its timers, its stream, its in-flight accounting. */
export class Exchange {
  done = false;
  /** Counted in inFlight (a generation request). */
  private counted = false;
  private timers = new Set<NodeJS.Timeout>();
  private pinger: NodeJS.Timeout | undefined;
  private streaming = false;
  /** The Dify task this exchange streams, for the stop endpoints. */
  taskId: string | undefined;
  /** A run that never ends by itself (fault `hang`): it outlives its client until stopped. */
  hangs = false;
  /** Ends the stream as Dify does when its task is stopped. */
  onStop: (() => void) | undefined;
  private cleanups: (() => void)[] = [];
  private readonly socket: Socket;
  private readonly gone = (): void => this.finish(true);

  constructor(
    readonly core: MockCore,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.socket = req.socket;
    res.once('finish', () => this.finish(false));
    res.once('close', () => this.finish(!res.writableFinished));
    // Noticing a client that hung up as early as possible keeps inFlight exact: 'end' and
    // 'error' arrive on the tick the socket reads EOF, before any later request is parsed.
    this.socket.once('end', this.gone);
    this.socket.once('error', this.gone);
    this.socket.once('close', this.gone);
  }

  /** Counts this exchange as a generation request in flight. */
  enter(): void {
    if (this.counted || this.done) return;
    this.counted = true;
    this.core.enter();
  }

  /** Runs `fn` once when the exchange ends, however it ends. */
  onFinish(fn: () => void): void {
    if (this.done) fn();
    else this.cleanups.push(fn);
  }

  /** Runs `fn` after `ms` unless the exchange ended first. */
  later(ms: number, fn: () => void): void {
    if (this.done) return;
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.done) fn();
    }, ms);
    this.timers.add(t);
  }

  json(status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (this.done || this.res.headersSent) return;
    const text = JSON.stringify(body);
    this.core.status(status);
    this.res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    this.res.end(text);
  }

  raw(status: number, contentType: string, text: string): void {
    if (this.done || this.res.headersSent) return;
    this.core.status(status);
    this.res.writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(text),
    });
    this.res.end(text);
  }

  /** Opens an event stream; Dify starts streams with a ping, and pings every interval. */
  openStream(headers: Record<string, string> = {}, pingFirst = true): void {
    if (this.done || this.res.headersSent) return;
    this.core.status(200);
    this.streaming = true;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...headers,
    });
    if (pingFirst) this.ping();
    else this.res.flushHeaders();
    this.pinger = setInterval(() => this.ping(), this.core.options.pingIntervalMs);
  }

  private ping(): void {
    if (this.done) return;
    this.core.stats.pings++;
    this.res.write('event: ping\n\n');
  }

  event(data: unknown): void {
    if (this.done || !this.streaming) return;
    this.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  endStream(): void {
    if (this.done) return;
    this.res.end();
  }

  /** Destroys the socket: a broken stream or a reset connection. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Ends this exchange's bookkeeping once: timers, pings, in-flight count. */
  finish(aborted: boolean): void {
    if (this.done) return;
    this.done = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.pinger !== undefined) clearInterval(this.pinger);
    this.socket.off('end', this.gone);
    this.socket.off('error', this.gone);
    this.socket.off('close', this.gone);
    if (this.taskId !== undefined && !(aborted && this.hangs))
      this.core.running.delete(this.taskId);
    if (this.counted) this.core.leave(aborted);
    this.core.live.delete(this);
    for (const fn of this.cleanups) fn();
    this.cleanups = [];
    // A client that left mid-answer: nothing more can be written; free the socket.
    if (aborted && !this.res.writableEnded) this.socket.destroy();
  }
}

/** The mock's state, shared by the Dify and OpenAI handlers. */
export class MockCore {
  stats: MockStats = emptyStats();
  readonly live = new Set<Exchange>();
  /** Streaming runs still going upstream, by task id. */
  readonly running = new Map<string, Exchange>();
  private readonly logT: number[] = [];
  private readonly logTokens: number[] = [];
  private readonly logReqT: number[] = [];
  /** Per stamped request: the heartbeat before it, the earliest it can have arrived. */
  private readonly logReqE: number[] = [];
  /**
   * The event loop's last two heartbeats (`beat`, in its timers phase). A request read now
   * arrived after the loop's previous poll for I/O, which came after the beat before the last:
   * the last one may have fired in this very turn, after a stall, before the poll that reads
   * what arrived during it.
   */
  private lastBeat = performance.now();
  private beatBefore = this.lastBeat;
  private readonly recorded: RecordedRequest[] = [];
  private active = 0;
  private bucket: number;
  private bucketAt = performance.now();

  constructor(readonly options: ResolvedMockOptions) {
    this.bucket = options.rateLimit?.burst ?? 0;
  }

  enter(): void {
    const s = this.stats;
    s.inFlight++;
    if (s.inFlight > s.peakInFlight) s.peakInFlight = s.inFlight;
    const now = performance.now();
    if (this.logReqT.length < this.options.logLimit) {
      this.logReqT.push(now);
      this.logReqE.push(Math.min(this.beatBefore, now));
    }
  }

  /** The heartbeat: the event loop ran its timers now. */
  beat(): void {
    this.beatBefore = this.lastBeat;
    this.lastBeat = performance.now();
  }

  arrivals(windowMs: number): ArrivalWindow {
    return arrivalWindow(this.logReqT, this.logReqE, windowMs);
  }

  leave(aborted: boolean): void {
    this.stats.inFlight--;
    if (aborted) this.stats.aborted++;
  }

  status(code: number): void {
    const key = String(code);
    this.stats.byStatus[key] = (this.stats.byStatus[key] ?? 0) + 1;
  }

  private push(list: number[], value: number): void {
    if (list.length < this.options.logLimit) list.push(value);
  }

  /** Charges the tokens of an answered run. */
  charge(tokens: number): void {
    this.stats.tokens += tokens;
    if (this.logT.length < this.options.logLimit) {
      this.logT.push(performance.now());
      this.logTokens.push(tokens);
    }
  }

  record(ex: Exchange, endpoint: string, caseKey: string | undefined, body: unknown): void {
    if (!this.options.recordRequests) return;
    const { authorization: _, ...headers } = ex.req.headers;
    this.recorded.push({
      endpoint,
      caseKey,
      method: ex.req.method ?? '',
      path: ex.req.url ?? '',
      headers,
      body,
    });
  }

  recordedRequests(): RecordedRequest[] {
    return [...this.recorded];
  }

  count(map: Record<string, number>, key: string): number {
    const n = (map[key] ?? 0) + 1;
    map[key] = n;
    return n;
  }

  /**
   * Reads the per-request control values and draws a fault. `values` are the request's inputs
   * (Dify) or metadata (OpenAI); headers win.
   */
  control(ex: Exchange, values: Record<string, unknown>, defaultCase: string): Control {
    const h = ex.req.headers;
    const header = (name: string): string | undefined => {
      const v = h[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const caseKey =
      header('x-mock-case') ?? (typeof values.__case === 'string' ? values.__case : defaultCase);
    const n = this.count(this.stats.byCase, caseKey);
    const rawFault = header('x-mock-fault') ?? values.__fault;
    const timesRaw = header('x-mock-fault-times') ?? values.__fault_times;
    const times = timesRaw === undefined ? undefined : Number(timesRaw);
    let fault: MockFault | undefined;
    if (typeof rawFault === 'string' && MOCK_FAULTS.includes(rawFault as MockFault)) {
      if (times === undefined || !Number.isFinite(times) || n <= times)
        fault = rawFault as MockFault;
    } else if (this.options.errorRates.length > 0) {
      const r = this.options.random();
      let acc = 0;
      for (const [f, rate] of this.options.errorRates) {
        acc += rate;
        if (r < acc) {
          fault = f;
          break;
        }
      }
    }
    if (fault !== undefined) this.count(this.stats.faults, fault);
    const latRaw = header('x-mock-latency-ms') ?? values.__latency_ms;
    const lat = latRaw === undefined ? Number.NaN : Number(latRaw);
    const latencyMs = Number.isFinite(lat) && lat >= 0 ? lat : this.options.latency();
    const tokRaw = values.__tokens;
    const tok =
      typeof tokRaw === 'number' || typeof tokRaw === 'string' ? Number(tokRaw) : Number.NaN;
    const tokens = Number.isInteger(tok) && tok > 0 ? tok : this.options.tokens;
    return { fault, latencyMs, tokens, caseKey };
  }

  /**
   * The mock's own limits, checked before any work as Dify does: its app concurrency limiter,
   * then the request rate. Returns what was exceeded, or undefined (and then takes a slot that
   * `release` gives back).
   */
  admit(): { kind: 'concurrency'; limit: number } | { kind: 'rate'; waitMs: number } | undefined {
    const max = this.options.maxConcurrency;
    if (max !== undefined && this.active >= max) {
      this.stats.limited++;
      return { kind: 'concurrency', limit: max };
    }
    const rl = this.options.rateLimit;
    if (rl !== undefined) {
      const now = performance.now();
      const perMs = rl.perMinute / 60_000;
      this.bucket = Math.min(rl.burst, this.bucket + (now - this.bucketAt) * perMs);
      this.bucketAt = now;
      if (this.bucket < 1) {
        this.stats.limited++;
        return { kind: 'rate', waitMs: (1 - this.bucket) / perMs };
      }
      this.bucket -= 1;
    }
    this.active++;
    return undefined;
  }

  release(): void {
    this.active--;
  }

  setLimits(limits: MockLimits): void {
    const rl = this.options.rateLimit;
    if (rl !== undefined) {
      // What the bucket filled so far, at the old rate; from now on it fills at the new one.
      const now = performance.now();
      this.bucket = Math.min(
        rl.burst,
        this.bucket + ((now - this.bucketAt) * rl.perMinute) / 60_000,
      );
      this.bucketAt = now;
    }
    applyMockLimits(this.options, limits);
  }

  /** Requests left in the rate window, and ms until one more is available (for x-ratelimit-*). */
  rateState(): { limit: number; remaining: number; resetMs: number } | undefined {
    const rl = this.options.rateLimit;
    if (rl === undefined) return undefined;
    const perMs = rl.perMinute / 60_000;
    const now = performance.now();
    const tokens = Math.min(rl.burst, this.bucket + (now - this.bucketAt) * perMs);
    return {
      limit: rl.perMinute,
      remaining: Math.max(0, Math.floor(tokens)),
      resetMs: tokens >= 1 ? 0 : (1 - tokens) / perMs,
    };
  }

  maxInWindow(windowMs: number, what: 'tokens' | 'requests'): number {
    const times = what === 'tokens' ? this.logT : this.logReqT;
    const weights = what === 'tokens' ? this.logTokens : undefined;
    let best = 0;
    let sum = 0;
    let lo = 0;
    for (let hi = 0; hi < times.length; hi++) {
      sum += weights === undefined ? 1 : weights[hi]!;
      while (times[hi]! - times[lo]! >= windowMs) {
        sum -= weights === undefined ? 1 : weights[lo]!;
        lo++;
      }
      if (sum > best) best = sum;
    }
    return best;
  }

  reset(): void {
    const inFlight = this.stats.inFlight;
    this.stats = emptyStats();
    this.stats.inFlight = inFlight;
    this.stats.peakInFlight = inFlight;
    this.logT.length = 0;
    this.logTokens.length = 0;
    this.logReqT.length = 0;
    this.logReqE.length = 0;
    this.recorded.length = 0;
  }
}

const MAX_BODY = 10 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () =>
      resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks).toString('utf8')),
    );
    req.on('error', () => resolve(undefined));
  });
}

async function route(core: MockCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ex = new Exchange(core, req, res);
  core.live.add(ex);
  const url = new URL(req.url ?? '/', 'http://mock');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  if (path === '/__stats' && method === 'GET') {
    let orphaned = 0;
    for (const r of core.running.values()) if (r.done) orphaned++;
    ex.json(200, { ...core.stats, orphaned });
    return;
  }
  if (path === '/__reset' && method === 'POST') {
    core.reset();
    ex.json(200, { result: 'success' });
    return;
  }
  if (path === '/__limits' && method === 'POST') {
    try {
      core.setLimits(JSON.parse((await readBody(req)) ?? '') as MockLimits);
      ex.json(200, { result: 'success' });
    } catch (err) {
      ex.json(400, { code: 'invalid_param', message: String((err as Error).message), status: 400 });
    }
    return;
  }
  const isApi = path.startsWith('/v1/') || path === '/echo' || path.startsWith('/echo/');
  if (isApi) core.stats.requests++;
  // Generation requests count as in flight from the moment they arrive.
  if (isGeneration(path, method)) {
    core.stats.runs++;
    ex.enter();
  }
  const text = await readBody(req);
  if (ex.done) return;
  dispatch(core, ex, url, path, method, text);
}

/** `ANY /echo[/...]`: answers what it received (method, path, query, headers, body). */
export function handleEcho(core: MockCore, ex: Exchange, url: URL, text: string | undefined): void {
  let body: unknown = text;
  try {
    body = text === undefined || text === '' ? undefined : JSON.parse(text);
  } catch {}
  const values: Record<string, unknown> = Object.fromEntries(url.searchParams);
  const ctl = core.control(ex, values, `${ex.req.method} ${url.pathname}`);
  core.record(ex, 'echo', ctl.caseKey, body);
  const answer = (): void => {
    const f = ctl.fault;
    if (f === 'hang') return;
    if (f === 'reset' || f === 'break') {
      ex.destroy();
      return;
    }
    if (f !== undefined && /^\d{3}/.test(f)) {
      const status = Number(f.slice(0, 3));
      const headers: Record<string, string> =
        f === '429-retry-after' ? { 'retry-after': String(core.options.retryAfterSeconds) } : {};
      ex.json(status, { error: { message: `mock fault ${f}`, code: f } }, headers);
      return;
    }
    const tokens = ctl.tokens ?? 10;
    core.charge(tokens);
    ex.json(200, {
      method: ex.req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: ex.req.headers,
      body,
      usage: { total_tokens: tokens },
    });
  };
  ex.later(ctl.latencyMs, answer);
}

/** Dify's Bearer check (`controllers/service_api/wraps.py`); answers 401 itself when it fails. */
export function difyAuthorized(core: MockCore, ex: Exchange): boolean {
  const header = ex.req.headers.authorization;
  const fail = (message: string): false => {
    ex.json(
      401,
      { code: 'unauthorized', message, status: 401 },
      { 'www-authenticate': 'Bearer realm="api"' },
    );
    return false;
  };
  if (header === undefined || !header.includes(' '))
    return fail("Authorization header must be provided and start with 'Bearer'");
  const [scheme, token = ''] = header.split(' ', 2);
  if (scheme !== 'Bearer') return fail("Authorization scheme must be 'Bearer'");
  const known = core.options.apiKeys;
  const ok = known === undefined ? token.startsWith('app-') : known.has(token);
  if (!ok)
    return fail(
      core.options.leakKeyInErrors
        ? `Access token is invalid: ${token}`
        : 'Access token is invalid',
    );
  return true;
}

/**
 * Starts a mock on `options.host:options.port` (127.0.0.1, a free port by default).
 *
 * @example
 * ```ts
 * const mock = await startMock({ latencyMs: 20, errorRates: { '429': 0.1 } });
 * const target = new DifyTarget({ baseUrl: mock.baseUrl, apiKey: 'app-test' });
 * // ... run ...
 * console.log(mock.stats().peakInFlight);
 * await target.close();
 * await mock.close();
 * ```
 */
export async function startMock(options: MockOptions = {}): Promise<MockServer> {
  const resolved = resolveMockOptions(options);
  const core = new MockCore(resolved);
  // How long the loop is away between ticks says when the requests it stamps can have arrived.
  const heartbeat = setInterval(() => core.beat(), HEARTBEAT_MS);
  heartbeat.unref();
  const server: Server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    route(core, req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ code: 'internal_server_error', message: String(err), status: 500 }),
        );
      } else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : resolved.port;
  const host = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  const url = `http://${host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    baseUrl: `${url}/v1`,
    port,
    stats: () => {
      const snapshot = structuredClone(core.stats);
      for (const ex of core.running.values()) if (ex.done) snapshot.orphaned++;
      return snapshot;
    },
    reset: () => core.reset(),
    maxInWindow: (windowMs, what) => core.maxInWindow(windowMs, what),
    arrivals: (windowMs) => core.arrivals(windowMs),
    requests: () => core.recordedRequests(),
    setLimits: (limits) => core.setLimits(limits),
    close: () => {
      clearInterval(heartbeat);
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const ex of [...core.live]) ex.finish(!ex.res.writableEnded);
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
