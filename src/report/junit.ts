/**
 * JUnit XML in the Ant schema, the dialect Jenkins, GitLab, Azure DevOps and GitHub actions such
 * as dorny/test-reporter read: one `<testsuite>` per dataset, one `<testcase>` per case.
 */

import type { TestResult } from './convert.js';
import { diffText } from './diff.js';
import { type ResultSource, writeFileStreamed } from './sink.js';
import { type DatasetSummary, datasetResolver, type ReportSummary } from './summary.js';
import { caseName, clip, escapeXml, escapeXmlAttr, isCancelled } from './text.js';

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
  if (result.status === 'success') return `${head}/>\n`;
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
  return `${head}>\n      ${child}\n    </testcase>\n`;
}

/**
 * Writes `junit.xml`.
 *
 * A suite's counts come before its cases, so they are taken from the summary, and the source is
 * read once per dataset, writing that dataset's cases (one read when there is one dataset).
 * Memory stays bounded; the cost is D reads for D datasets. The summary must come from the same
 * results: a case whose dataset the summary does not know is not written.
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
  const plan = summary.meta.plan;
  const timestamp = antTimestamp(summary.meta.startedAt);
  const suiteOf = datasetResolver(summary);
  const totals = { tests: 0, failures: 0, errors: 0, skipped: 0 };
  for (const d of summary.datasets) {
    const c = suiteCounts(d);
    totals.tests += c.tests;
    totals.failures += c.failures;
    totals.errors += c.errors;
    totals.skipped += c.skipped;
  }
  const caseSeconds = summary.datasets.reduce((sum, d) => sum + d.seconds, 0);
  await writeFileStreamed(path, async (sink) => {
    await sink.write('<?xml version="1.0" encoding="UTF-8"?>\n');
    await sink.write(
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
      await sink.write(
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
      await sink.write(
        `    <properties>\n      <property${attrs({ name: 'stride.run_id', value: summary.meta.runId })}/>\n    </properties>\n`,
      );
      const classname = `${plan}.${d.name}`;
      for await (const result of source()) {
        if (suiteOf(result) === d.name) await sink.write(testcase(result, classname));
      }
      // The Ant schema requires both, even empty.
      await sink.write('    <system-out/>\n    <system-err/>\n  </testsuite>\n');
    }
    await sink.write('</testsuites>\n');
  });
}
