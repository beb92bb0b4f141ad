/**
 * The CLI faces of run comparison: `stride compare <base> <head>`, `stride run --baseline`
 * (the comparison at the end of a run, with the same gate), and `stride runs --plan NAME` (the
 * plan's runs with pass rate, cost, p50 and a sparkline). Bad input exits 2 before anything is
 * written: the comparison is computed whole first.
 */

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { compareRuns } from '../compare/compare.js';
import { writeComparisonHtml } from '../compare/html.js';
import { resolveRuns } from '../compare/refs.js';
import { comparisonMarkdown, formatComparison } from '../compare/text.js';
import { type RunFigures, runFigures, runsOfPlan, sparkline } from '../compare/trend.js';
import type { Comparison } from '../compare/types.js';
import { isStrideError } from '../core/index.js';
import { makeDirectory } from '../report/disk.js';
import type { HtmlOptions } from '../report/index.js';
import { runFolder } from '../report/run-folder.js';
import { writeFileStreamed } from '../report/sink.js';
import { RunHistory } from '../runner/history.js';
import { SqliteStore } from '../store/sqlite.js';
import type { CompareFormat as Format, RegressionGate } from './flags.js';
import type { Io } from './io.js';
import type { AfterRun } from './session.js';
import { UsageError } from './usage.js';

/** A bad flag combination found after parsing: exit 2 (a UsageError). */
export class CompareUsageError extends UsageError {}

/** True when the gate fails the comparison. */
export function gateTrips(c: Comparison, gate: RegressionGate | undefined): boolean {
  if (gate === undefined || c.regressions.length === 0) return false;
  return gate.when === 'any' || c.summary.significant;
}

function gateMessage(c: Comparison, gate: RegressionGate): string {
  const n = c.regressions.length;
  return gate.when === 'any'
    ? `--fail-on-regression: ${n} regression(s) (${c.regressions
        .slice(0, 5)
        .map((r) => r.id)
        .join(', ')}${n > 5 ? ', ...' : ''})`
    : `--fail-on-regression=significant: ${n} regression(s) against ${c.fixes.length} fix(es), p = ${c.summary.p_value.toPrecision(3)} < ${gate.alpha}`;
}

/**
 * The comparison as JSON, in chunks: stable snake_case keys (types.ts), one case per line (jq
 * and grep friendly), the summary indented. Chunked so a 100,000-case comparison is never one
 * string in memory.
 */
export function* comparisonJson(c: Comparison): Generator<string> {
  const lists = Object.keys(c).filter((k) => k !== 'summary') as (keyof Omit<
    Comparison,
    'summary'
  >)[];
  yield '{\n';
  for (const key of lists) {
    yield `${JSON.stringify(key)}: [`;
    yield* chunked(c[key]);
    yield `${c[key].length === 0 ? '' : '\n'}],\n`;
  }
  yield `"summary": ${JSON.stringify(c.summary, null, 2)}\n}\n`;
}

function* chunked(items: readonly unknown[]): Generator<string> {
  let chunk = '';
  for (let i = 0; i < items.length; i++) {
    chunk += `${i === 0 ? '\n' : ',\n'}${JSON.stringify(items[i])}`;
    if (chunk.length > 65_536) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}

/** Writes chunks to a stream, waiting for 'drain' when it is full (a pipe to a slow reader). */
async function writeChunks(out: Io['stdout'], chunks: Iterable<string>): Promise<void> {
  const stream = out as Io['stdout'] & { once?: (e: string, f: () => void) => unknown };
  for (const chunk of chunks) {
    if (stream.write(chunk) === false && typeof stream.once === 'function') {
      await new Promise<void>((resolve) => stream.once!('drain', resolve));
    }
  }
}

/** Writes `text` to `path` whole or not at all (a temporary file renamed). */
async function writeWhole(path: string, text: string | Iterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileStreamed(path, async (sink) => {
    for (const chunk of typeof text === 'string' ? [text] : text) await sink.write(chunk);
  });
}

/** Writes one format of the comparison to `path`. */
async function writeComparison(path: string, format: Format, c: Comparison): Promise<void> {
  if (format === 'html') {
    await mkdir(dirname(path), { recursive: true });
    await writeComparisonHtml(path, c);
  } else if (format === 'json') await writeWhole(path, comparisonJson(c));
  else if (format === 'md') await writeWhole(path, comparisonMarkdown(c));
  else await writeWhole(path, `${formatComparison(c)}\n`);
}

function openJournal(db: string): RunHistory {
  if (db !== ':memory:' && !existsSync(db)) {
    throw new CompareUsageError(
      `--db ${db}: no such run journal (start a run first, or pass --db)`,
    );
  }
  return new RunHistory({ store: new SqliteStore({ path: db }) });
}

export interface CompareFlags {
  db: string;
  plan?: string;
  json?: boolean;
  format?: Format;
  output?: string;
  failOnRegression?: RegressionGate;
  details: number;
}

/**
 * `stride compare BASE HEAD` once its flags are parsed (commands/compare.ts declares them):
 * prints or writes the comparison and resolves with the exit code (1 when the gate trips).
 */
export async function compareCommand(
  io: Io,
  base: string,
  head: string,
  flags: CompareFlags,
): Promise<number> {
  if (flags.json === true && flags.format !== undefined && flags.format !== 'json') {
    throw new CompareUsageError(`--json and --format ${flags.format}: choose one`);
  }
  const format: Format = flags.json === true ? 'json' : (flags.format ?? 'text');
  if (format === 'html' && flags.output === undefined) {
    throw new CompareUsageError('--format html needs -o FILE (the page is not for a terminal)');
  }
  const history = openJournal(flags.db);
  try {
    const gate = flags.failOnRegression;
    const c = await compareRuns(history, base, head, {
      ...(flags.plan === undefined ? {} : { plan: flags.plan }),
      details: flags.details,
      ...(gate?.when === 'significant' ? { alpha: gate.alpha } : {}),
    });
    if (flags.output !== undefined) {
      await writeComparison(flags.output, format, c);
      io.stdout.write(`${formatComparison(c)}\n\n${format.padEnd(5)} ${flags.output}\n`);
    } else {
      await writeChunks(
        io.stdout,
        format === 'json'
          ? comparisonJson(c)
          : [format === 'md' ? comparisonMarkdown(c) : `${formatComparison(c)}\n`],
      );
    }
    if (gate !== undefined && gateTrips(c, gate)) {
      io.stderr.write(`stride: ${gateMessage(c, gate)}\n`);
      return 1;
    }
    return 0;
  } finally {
    await history.store.close();
  }
}

/** The comparison files `run --baseline` writes beside the run's reports. */
export const COMPARE_FILES = {
  json: 'compare.json',
  md: 'compare.md',
  html: 'compare.html',
} as const;

/**
 * For `stride run --baseline REF`: resolves the baseline before anything runs or is written (a
 * bad reference exits 2), in its own read of the journal.
 */
export async function resolveBaseline(db: string, spec: string, plan: string): Promise<string[]> {
  if (db !== ':memory:' && !existsSync(db)) {
    throw new CompareUsageError(`--baseline ${spec}: no run journal at ${db} (pass --db)`);
  }
  const history = openJournal(db);
  try {
    return (await resolveRuns(history, spec, { plan, label: '--baseline' })).map((r) => r.id);
  } finally {
    await history.store.close();
  }
}

/**
 * The session's `afterRun` for `stride run --baseline`: compares the finished run with the
 * baseline runs `ids`, writes compare.json, compare.md and compare.html into the run's folder `out/<run-id>/`, links the
 * page from report.html and applies the gate.
 */
export function baselineHook(
  history: RunHistory,
  ids: readonly string[],
  options: { spec: string; out: string; gate: RegressionGate | undefined },
): (runId: string) => Promise<AfterRun> {
  const spec = options.spec;
  return async (runId) => {
    let c: Comparison;
    try {
      c = await compareRuns(history, ids, runId, {
        ...(options.gate?.when === 'significant' ? { alpha: options.gate.alpha } : {}),
      });
    } catch (err) {
      // The run is done and its reports are still written; the gate cannot judge it.
      if (!isStrideError(err)) throw err;
      const message = `--baseline ${spec}: ${err.message}`;
      return {
        text: `stride: ${message}`,
        json: { comparison: { error: { code: err.code, message } } },
        code: 2,
      };
    }
    // Beside the run's report.html, which links to compare.html: the run's own folder.
    const dir = runFolder(options.out, runId);
    await makeDirectory(dir);
    const paths = {
      json: join(dir, COMPARE_FILES.json),
      md: join(dir, COMPARE_FILES.md),
      html: join(dir, COMPARE_FILES.html),
    };
    await writeComparison(paths.json, 'json', c);
    await writeComparison(paths.md, 'md', c);
    await writeComparison(paths.html, 'html', c);
    const tripped = gateTrips(c, options.gate);
    const n = c.summary.counts;
    const html: HtmlOptions = {
      comparison: {
        href: COMPARE_FILES.html,
        text: `Compared with ${ids.join(', ')}: ${n.regressions} regression(s), ${n.fixes} fix(es)`,
      },
    };
    return {
      html,
      text:
        `${formatComparison(c)}\n  comparison files: ${paths.json}, ${paths.md}, ${paths.html}` +
        (tripped ? `\nstride: ${gateMessage(c, options.gate!)}` : ''),
      json: {
        comparison: {
          baseline: ids,
          regressions: c.regressions.map((r) => ({ id: r.id, dataset: r.dataset })),
          fixes: c.fixes.map((r) => ({ id: r.id, dataset: r.dataset })),
          counts: n,
          p_value: c.summary.p_value,
          significant: c.summary.significant,
          gate: tripped ? 'failed' : options.gate === undefined ? 'off' : 'passed',
          reports: paths,
        },
      },
      code: tripped ? 1 : 0,
    };
  };
}

function pct(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(1)}%`;
}

function secs(s: number | null): string {
  if (s === null) return '-';
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}

/** A run's cost cell: unknown is said, never shown as a total (as `stride compare` does). */
function figureCost(f: RunFigures): string {
  if (f.costUnknown === 0) return f.cost.toFixed(4);
  if (f.costUnknown >= f.total) return 'unknown';
  return `unknown for ${f.costUnknown} (partial ${f.cost.toFixed(4)})`;
}

/**
 * `stride runs --plan NAME`: the plan's runs, newest first, with each run's pass rate, cost and
 * p50 as its report gives them (each run's results are read once), and a sparkline of the pass
 * rate, oldest to newest.
 */
export async function planRunsText(
  history: RunHistory,
  plan: string,
  limit: number,
  json: boolean,
): Promise<string> {
  const runs = await runsOfPlan(history, plan, limit);
  const figures = [];
  for (const r of runs) figures.push(await runFigures(history, r));
  if (json) return `${JSON.stringify(figures)}\n`;
  if (figures.length === 0) {
    const plans = [...new Set((await history.listRuns({ limit: 200 })).map((r) => r.plan))];
    return `no runs of plan ${plan}${plans.length === 0 ? '' : ` (plans in the journal: ${plans.slice(0, 10).join(', ')})`}\n`;
  }
  const header = ['RUN', 'STATUS', 'CASES', 'PASS RATE', 'COST', 'P50'];
  const rows = figures.map((f) => [
    f.id,
    f.status,
    String(f.total),
    pct(f.passRate),
    figureCost(f),
    secs(f.p50),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const lines = [header, ...rows].map((row) =>
    row
      .map((cell, i) => (i >= 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  const rates = figures.map((f) => f.passRate).reverse();
  const known = rates.filter((r): r is number => r !== null);
  const range =
    known.length === 0 ? '' : ` (${pct(Math.min(...known))} to ${pct(Math.max(...known))})`;
  lines.push('', `pass rate, oldest → newest: ${sparkline(rates)}${range}`);
  return `${lines.join('\n')}\n`;
}
