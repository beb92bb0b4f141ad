/**
 * JUnit XML in the Ant schema, the dialect Jenkins, GitLab, Azure DevOps and GitHub actions such
 * as dorny/test-reporter read: one `<testsuite>` per dataset, one `<testcase>` per case.
 */

import { appendFile } from 'node:fs/promises';
import type { TestResult } from './convert.js';
import { diffText } from './diff.js';
import { reportIoError } from './disk.js';
import { copyInto, type ResultSource, StagedFile } from './sink.js';
import {
  type DatasetSummary,
  MAX_DATASETS,
  OTHER_DATASETS,
  type ReportSummary,
} from './summary.js';
import { caseName, clip, datasetOf, escapeXml, escapeXmlAttr, isCancelled } from './text.js';
import { type FormatWriter, ResultRow, removeAll, scratchPath } from './writer.js';

/** A failure body's values are cut here: CI pages render the body inline. */
const MAX_VALUE = 4000;

/** Seconds with millisecond precision, the way JUnit writers print `time`. */
function seconds(n: number): string {
  return (Number.isFinite(n) ? Math.max(0, n) : 0).toFixed(3);
}

/**
 * The Ant schema's timestamp: ISO 8601 without a zone or fraction (`2024-05-01T12:00:00`).
 * Written in UTC: the schema has no place for the zone, and UTC is what CI servers log in.
 */
function antTimestamp(epochMs: number): string {
  const d = new Date(epochMs);
  return Number.isNaN(d.getTime()) ? '1970-01-01T00:00:00' : d.toISOString().slice(0, 19);
}

function attrs(pairs: Record<string, string | number>): string {
  return Object.entries(pairs)
    .map(([k, v]) => ` ${k}="${escapeXmlAttr(String(v))}"`)
    .join('');
}

function suiteCounts(d: DatasetSummary) {
  // A cancelled case (status `error` from the converter, apart in the summary) is `skipped`.
  return {
    tests: d.total,
    failures: d.failed,
    errors: d.error + d.timeout,
    skipped: d.cancelled,
  };
}

function show(value: unknown): string {
  return clip(diffText(value), MAX_VALUE);
}

/** The body of a `<failure>`: each failed assertion with expected and actual, then the case. */
function failureBody(result: TestResult): string {
  const lines: string[] = [];
  for (const a of result.assertions) {
    if (a.passed) continue;
    lines.push(`- [${a.type}] ${a.message}`);
    if ('expected' in a) lines.push(`  expected: ${show(a.expected).replaceAll('\n', '\n  ')}`);
    if ('actual' in a) lines.push(`  actual:   ${show(a.actual).replaceAll('\n', '\n  ')}`);
  }
  if (lines.length === 0 && result.errorMessage !== undefined) lines.push(result.errorMessage);
  lines.push(`inputs: ${show(result.inputs)}`, `outputs: ${show(result.outputs)}`);
  return lines.join('\n');
}

/** The `<testcase>` element of one result. */
function testcase(result: TestResult, classname: string): string {
  const head = `    <testcase${attrs({ classname, name: caseName(result), time: seconds(result.executionTime) })}`;
  // The score as a property (JUnit has no place for it; CI viewers show properties).
  const score =
    result.score === undefined
      ? ''
      : `\n      <properties><property${attrs({ name: 'score', value: String(result.score) })}/></properties>`;
  if (result.status === 'success')
    return score === '' ? `${head}/>\n` : `${head}>${score}\n    </testcase>\n`;
  let child: string;
  if (isCancelled(result)) {
    const message = result.errorMessage ?? `cancelled (${result.metadata.cancelReason ?? 'user'})`;
    child = `<skipped${attrs({ message })}/>`;
  } else if (result.status === 'failed') {
    const failed = result.assertions.filter((a) => !a.passed).map((a) => a.message);
    const message =
      failed.length > 0 ? failed.join('; ') : (result.errorMessage ?? 'the case failed');
    child = `<failure${attrs({ message, type: 'assertion' })}>${escapeXml(failureBody(result))}</failure>`;
  } else {
    // error and timeout: the error code is the type CI groups by.
    const type = result.metadata.errorCode ?? (result.status === 'timeout' ? 'timeout' : 'error');
    const message = result.errorMessage ?? result.status;
    const body = `attempts: ${result.metadata.attemptCount}\ninputs: ${show(result.inputs)}`;
    child = `<error${attrs({ message, type })}>${escapeXml(body)}</error>`;
  }
  return `${head}>${score}\n      ${child}\n    </testcase>\n`;
}

/** Characters of `<testcase>` text held in memory over all suites before they go to disk. */
const HELD = 8 * 1024 * 1024;

/** A suite's cases so far: held in memory, the older ones in a scratch file once spilled. */
interface Part {
  held: string[];
  length: number;
  file: string | undefined;
}

/**
 * The JUnit report fed one result at a time. A suite's counts come before its cases and are
 * known last, so each dataset's `<testcase>` elements are kept aside (in memory up to HELD
 * characters in all, then appended to one scratch file per dataset) and written behind their
 * suite's head at `finish`: one read of the results whatever the number of datasets.
 * Past MAX_DATASETS names the rest share one part, the summary's OTHER_DATASETS suite.
 */
class JunitWriter implements FormatWriter {
  private readonly parts = new Map<string, Part>();
  private readonly overflow: Part = { held: [], length: 0, file: undefined };
  private held = 0;

  /** `plan`: the summary's `meta.plan`, the first half of every classname. */
  constructor(
    readonly path: string,
    private readonly plan: string,
  ) {}

  private partOf(name: string): Part {
    let part = this.parts.get(name);
    if (part === undefined) {
      if (this.parts.size >= MAX_DATASETS) return this.overflow;
      part = { held: [], length: 0, file: undefined };
      this.parts.set(name, part);
    }
    return part;
  }

  async add(row: ResultRow): Promise<void> {
    const result = row.result;
    const name = datasetOf(result);
    const part = this.partOf(name);
    const text = testcase(result, `${this.plan}.${part === this.overflow ? OTHER_DATASETS : name}`);
    part.held.push(text);
    part.length += text.length;
    this.held += text.length;
    if (this.held >= HELD) await this.spill();
  }

  private async spill(): Promise<void> {
    let n = 0;
    for (const part of [...this.parts.values(), this.overflow]) {
      n++;
      if (part.length === 0) continue;
      part.file ??= scratchPath(this.path, `suite${n}`);
      const text = part.held.join('');
      part.held = [];
      part.length = 0;
      try {
        await appendFile(part.file, text, 'utf8');
      } catch (e) {
        throw reportIoError('write', this.path, e);
      }
    }
    this.held = 0;
  }

  private files(): string[] {
    return [...this.parts.values(), this.overflow].flatMap((p) =>
      p.file === undefined ? [] : [p.file],
    );
  }

  async finish(summary: ReportSummary): Promise<void> {
    try {
      const out = await StagedFile.open(this.path);
      try {
        await writeDocument(out, summary, async (d) => {
          const known = d.name === OTHER_DATASETS ? undefined : this.parts.get(d.name);
          const parts =
            d.name !== OTHER_DATASETS
              ? known === undefined
                ? []
                : [known]
              : [
                  // Names the summary lumped under OTHER_DATASETS: the overflow, and any part
                  // of a name the summary did not keep (a summary made elsewhere).
                  ...[...this.parts.entries()]
                    .filter(([name]) => !summary.datasets.some((s) => s.name === name))
                    .map(([, p]) => p),
                  this.overflow,
                ];
          for (const part of parts) {
            if (part.file !== undefined) await copyInto(out.sink, part.file, this.path);
            for (const text of part.held) await out.write(text);
          }
        });
      } catch (e) {
        await out.abort();
        throw e;
      }
      await out.commit();
    } finally {
      await removeAll(this.files());
    }
  }

  async abort(): Promise<void> {
    await removeAll(this.files());
  }
}

/** The document around the suites' cases; `cases` writes one suite's `<testcase>` elements. */
async function writeDocument(
  out: StagedFile,
  summary: ReportSummary,
  cases: (d: DatasetSummary) => Promise<void>,
): Promise<void> {
  const plan = summary.meta.plan;
  const timestamp = antTimestamp(summary.meta.startedAt);
  const totals = { tests: 0, failures: 0, errors: 0, skipped: 0 };
  for (const d of summary.datasets) {
    const c = suiteCounts(d);
    totals.tests += c.tests;
    totals.failures += c.failures;
    totals.errors += c.errors;
    totals.skipped += c.skipped;
  }
  const caseSeconds = summary.datasets.reduce((sum, d) => sum + d.seconds, 0);
  await out.write('<?xml version="1.0" encoding="UTF-8"?>\n');
  await out.write(
    `<testsuites${attrs({
      name: plan,
      ...totals,
      // The run's wall-clock time when known; cases run concurrently, so it is not their sum.
      time: seconds(summary.durationSeconds ?? caseSeconds),
      timestamp,
    })}>\n`,
  );
  let id = 0;
  for (const d of summary.datasets) {
    await out.write(
      `  <testsuite${attrs({
        name: d.name,
        ...suiteCounts(d),
        time: seconds(d.seconds),
        timestamp,
        hostname: 'stride',
        id: id++,
        package: plan,
      })}>\n`,
    );
    await out.write(
      `    <properties>\n      <property${attrs({ name: 'stride.run_id', value: summary.meta.runId })}/>\n    </properties>\n`,
    );
    await cases(d);
    // The Ant schema requires both, even empty.
    await out.write('    <system-out/>\n    <system-err/>\n  </testsuite>\n');
  }
  await out.write('</testsuites>\n');
}

/**
 * Opens a JUnit report writer for `path` (report/fanout.ts feeds it). `plan` must be the
 * `meta.plan` of the summary given to `finish`: each case's classname is `<plan>.<dataset>`.
 */
export async function openJunitWriter(path: string, plan: string): Promise<FormatWriter> {
  return new JunitWriter(path, plan);
}

/**
 * Writes `junit.xml`, reading `source` once.
 *
 * A suite's counts come before its cases, so they are taken from the summary; the cases are
 * kept aside per dataset while the source is read (memory bounded, spilled to scratch files
 * beside the report) and written behind their suite. The summary must come from the same
 * results: a case whose dataset the summary does not know is written under OTHER_DATASETS.
 *
 * Mapping: `failed` -> `<failure type="assertion">` (message: the failed assertions' messages;
 * body: expected and actual of each, the inputs and outputs); `error` and `timeout` ->
 * `<error type="<errorCode>">` (`timeout` when there is no code); a cancelled case ->
 * `<skipped>`. Attribute values keep tab/CR/LF as character references; characters XML 1.0
 * forbids (NUL and other C0 controls, lone surrogates) are removed.
 *
 * @example
 * ```ts
 * await writeJunit('out/junit.xml', summary, () => store.results(runId));
 * ```
 */
export async function writeJunit(
  path: string,
  summary: ReportSummary,
  source: ResultSource,
): Promise<void> {
  const writer = new JunitWriter(path, summary.meta.plan);
  try {
    for await (const result of source()) await writer.add(new ResultRow(result));
  } catch (e) {
    await writer.abort();
    throw e;
  }
  await writer.finish(summary);
}
