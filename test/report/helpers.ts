import type { TestResult, TestStatus } from '../../src/report/convert.js';
import type { ReportMeta } from '../../src/report/summary.js';

export const META: ReportMeta = {
  runId: 'run-1',
  plan: 'support-bot',
  startedAt: Date.UTC(2024, 4, 1, 12, 0, 0),
  finishedAt: Date.UTC(2024, 4, 1, 12, 1, 30),
};

const TASK_STATUS = {
  success: 'succeeded',
  failed: 'failed',
  timeout: 'timeout',
  error: 'error',
} as const;

export interface ResultInit {
  id?: string | undefined;
  status?: TestStatus | undefined;
  dataset?: string | undefined;
  seconds?: number | undefined;
  tokens?: number | undefined;
  cost?: number | undefined;
  attempts?: number | undefined;
  inputs?: Record<string, unknown> | undefined;
  outputs?: unknown | undefined;
  errorMessage?: string | undefined;
  errorCode?: string | undefined;
  cancelled?: boolean | undefined;
  tags?: string[] | undefined;
  repeatIndex?: number | undefined;
  assertions?: TestResult['assertions'] | undefined;
  score?: number | undefined;
}

/** A TestResult with sensible defaults; `cancelled` gives the converter's cancelled shape. */
export function result(init: ResultInit = {}): TestResult {
  const status = init.cancelled === true ? 'error' : (init.status ?? 'success');
  return {
    workflowId: 'support-bot',
    executionId: init.id ?? 'case',
    timestamp: new Date(Date.UTC(2024, 4, 1, 12, 0, 5)),
    status,
    executionTime: init.seconds ?? 0.5,
    tokensUsed: init.tokens ?? 0,
    cost: init.cost ?? 0,
    inputs: init.inputs ?? {},
    outputs: init.outputs,
    errorMessage: init.errorMessage ?? (init.cancelled === true ? 'cancelled (user)' : undefined),
    dataset: init.dataset,
    metadata: {
      dataset: init.dataset,
      scenario: undefined,
      attemptCount: init.attempts ?? 1,
      taskStatus: init.cancelled === true ? 'cancelled' : TASK_STATUS[status],
      errorCode: init.errorCode,
      cancelReason: init.cancelled === true ? 'user' : undefined,
      tags: init.tags ?? [],
      repeatIndex: init.repeatIndex,
    },
    assertions: init.assertions ?? [],
    score: init.score,
  };
}

/**
 * A strict RFC 4180 reader, written independently of the writer: quoted fields may hold commas,
 * CR/LF and doubled quotes; records end with CRLF or LF; a quote inside an unquoted field or
 * text after a closing quote is an error.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let fieldStarted = false;
  const endField = () => {
    row.push(field);
    field = '';
    fieldStarted = false;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\r' && next !== '\n') {
          throw new Error(`text after a closing quote at ${i}`);
        }
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (fieldStarted) throw new Error(`quote inside an unquoted field at ${i}`);
      quoted = true;
      fieldStarted = true;
      i++;
    } else if (c === ',') {
      endField();
      i++;
    } else if (c === '\r' || c === '\n') {
      endField();
      rows.push(row);
      row = [];
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
    } else {
      field += c;
      fieldStarted = true;
      i++;
    }
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (fieldStarted || row.length > 0) {
    endField();
    rows.push(row);
  }
  return rows;
}
