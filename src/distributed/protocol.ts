/**
 * What travels through Redis between the coordinator (the run's scheduler) and the workers. No
 * secret ever does: the target's configuration is sent redacted, with the `${VAR}` templates of
 * its secrets, and each worker fills them from its own environment.
 */

import { createHash } from 'node:crypto';
import { classifyError, StrideError, toErrorInfo } from '../core/index.js';
import {
  interpolate,
  REDACTED,
  type RunManifest,
  setIn,
  type TargetConfig,
  type TestCase,
} from '../plans/index.js';
import type { SharedRate } from './bucket.js';

/** The queue a coordinator and its workers share. @default 'stride' */
export const DEFAULT_QUEUE = 'stride';

/** One attempt inside a job. */
export interface AttemptEntry {
  /** `jobId(runId, taskId, attempt)`: names the attempt in replies, cancels and the journal. */
  readonly id: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly testCase: TestCase;
}

/**
 * One BullMQ job: the attempts of one run that the scheduler started in the same tick, up to the
 * dispatcher's `batch` (1 when attempts start one at a time, as under a rate limit or with slow
 * targets). A job's fixed cost in Redis (add, take, finish, events) is then paid once for all of
 * them; each attempt still runs, answers and is cancelled on its own.
 */
export interface AttemptJob {
  readonly runId: string;
  /**
   * Names the run's target (`TargetSpec`), stored once in the hash `targetsKey(queue)`: jobs stay
   * small, and each worker builds a target once per key.
   */
  readonly targetKey: string;
  /** The shared bucket the worker takes a token from right before it starts each attempt. */
  readonly rate?: { readonly key: string } & SharedRate;
  /** The stream the worker adds outcomes to (the run's; see `Reply`). */
  readonly replyTo: string;
  /**
   * The dispatcher instance that sent it. A resumed coordinator reconciles only with jobs a
   * previous coordinator sent: its own earlier attempts are history (a retry must be sent).
   */
  readonly sender: string;
  readonly attempts: readonly AttemptEntry[];
}

/**
 * What a worker adds to the run's outcome stream, several per entry (those that ended in the same
 * tick). A stream, not BullMQ's event stream (trimmed at 10,000 events by default, so a coordinator
 * that reads slower than jobs finish would lose completions) and not a list popped on read (a
 * coordinator killed between reading an outcome and journaling it would lose it): entries stay
 * until the coordinator that read them trims them a minute later, so a resumed run reads again
 * everything its predecessor may not have journaled.
 */
export type Reply =
  | { readonly id: string; readonly sender: string; readonly outcome: AttemptOutcome }
  | {
      readonly id: string;
      readonly sender: string;
      /**
       * The attempt waits for a token of the shared bucket (true), or took it and its request
       * starts now (false). The coordinator holds the attempt's timeout meanwhile: as in
       * process, where an attempt starts only once it has its token, the timeout counts from
       * the request's start. Sent only by attempts that had to wait.
       */
      readonly waiting: boolean;
    }
  | {
      readonly id: string;
      readonly sender: string;
      /**
       * The worker gives the attempt back without an outcome, for the coordinator to send again:
       * it took more attempts than it had room for (`maybeSent: false`), or the job came back
       * after its worker was lost (`maybeSent: true`: that worker may have sent it).
       */
      readonly returned: true;
      readonly maybeSent: boolean;
      /** The job it came in: a coordinator that already sent it again in another ignores it. */
      readonly job: string;
    };

/** The target of a run as workers read it: redacted, with its secrets' `${VAR}` templates. */
export interface TargetSpec {
  readonly target: TargetConfig;
  readonly secrets: readonly { readonly path: readonly string[]; readonly template?: string }[];
}

/** The hash of target specs by key. */
export function targetsKey(queue: string): string {
  return `stride:${queue}:targets`;
}

/** How an attempt ended, as the worker reports it. */
export type AttemptOutcome = (
  | {
      readonly ok: true;
      readonly output: unknown;
    }
  | {
      readonly ok: false;
      readonly error: {
        readonly code: string;
        readonly name: string;
        readonly message: string;
        readonly status?: number;
        readonly retryable?: boolean;
        readonly retryAfterMs?: number;
      };
    }
) & {
  readonly usage: { tokens: number; cost: number; costUnknown?: boolean };
  readonly worker: string;
  /**
   * When the attempt took its token from the shared bucket, epoch ms on Redis's clock (absent
   * without a rate limit, or when it never got one): the start the window bound is about.
   */
  readonly takenAt?: number;
  /**
   * When the worker handed the request to its target, epoch ms on the worker's clock: what the
   * server sees lags `takenAt` by this process's stalls (bench/rate-window.mjs compares them).
   */
  readonly sentAt?: number;
};

/** The job id of an attempt. */
export function jobId(runId: string, taskId: string, attempt: number): string {
  // BullMQ's keys use ':', so ids are URI-encoded (which encodes ':' and '/') and joined by '/'.
  return `${encodeURIComponent(runId)}/${encodeURIComponent(taskId)}/${attempt}`;
}

/** The parts of a job id made by `jobId`. */
export function parseJobId(
  id: string,
): { runId: string; taskId: string; attempt: number } | undefined {
  const parts = id.split('/');
  if (parts.length !== 3) return undefined;
  return {
    runId: decodeURIComponent(parts[0]!),
    taskId: decodeURIComponent(parts[1]!),
    attempt: Number(parts[2]),
  };
}

/** The stream a run's outcomes are added to (it expires a day after its last use). */
export function replyKey(queue: string, runId: string): string {
  return `stride:${queue}:outcomes:${encodeURIComponent(runId)}`;
}

/** The channel the coordinator publishes cancels on; workers abort the attempt's signal. */
export function cancelChannel(queue: string): string {
  return `stride:${queue}:cancel`;
}

/**
 * The set of cancelled attempt ids (kept an hour): a worker that subscribed to `cancelChannel`
 * after a cancel was published still finds it here, and never starts that attempt.
 */
export function cancelledKey(queue: string): string {
  return `stride:${queue}:cancelled`;
}

/** An error as the worker sends it: what `classifyError` needs on the other side, no stack. */
export function serializeError(err: unknown): Extract<AttemptOutcome, { ok: false }>['error'] {
  const info = toErrorInfo(err);
  const cls = classifyError(err);
  return {
    code: cls.code ?? info.code,
    name: info.name,
    message: info.message,
    ...(info.status === undefined ? {} : { status: info.status }),
    retryable: cls.retryable,
    ...(cls.retryAfterMs === undefined ? {} : { retryAfterMs: cls.retryAfterMs }),
  };
}

/** The error the coordinator throws for a failed remote attempt, classified as it was remotely. */
export function deserializeError(e: Extract<AttemptOutcome, { ok: false }>['error']): Error {
  const err = new StrideError('UNKNOWN_ERROR', e.message, {
    ...(e.retryable === undefined ? {} : { retryable: e.retryable }),
    ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }),
    ...(e.status === undefined ? {} : { status: e.status }),
  });
  // Keep the remote code and name: the classification (and the journal) see what happened there.
  Object.defineProperty(err, 'code', { value: e.code, enumerable: true });
  Object.defineProperty(err, 'name', { value: e.name, enumerable: false });
  return err;
}

/** A target field's path as the plan spells it (`apiKey` -> `api_key`; header names as given). */
function planField(path: readonly string[]): string {
  const [field = '', ...rest] = path;
  return [field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), ...rest].join('.');
}

/** The target part of a plan as a job carries it. */
export function targetOf(manifest: RunManifest): TargetSpec & { readonly targetKey: string } {
  if (manifest.target === undefined || manifest.target.type === 'function') {
    throw new StrideError(
      'INVALID_OPTION',
      'a distributed run needs a dify, openai or http target (functions exist only in the process that registered them)',
    );
  }
  const secrets = manifest.secrets.filter((s) => s.path[0] === 'target');
  const literal = secrets.find((s) => s.template === undefined);
  if (literal !== undefined) {
    throw new StrideError(
      'INVALID_OPTION',
      `target.${planField(literal.path.slice(1))} holds a secret written in the plan${literal.path[1] === 'baseUrl' || literal.path[1] === 'url' ? ' (credentials in the URL)' : ''}: a distributed run sends no secret through Redis, so give it as \${VAR} and set VAR where the workers run`,
    );
  }
  // Redacted: the value of every secret is replaced; workers rebuild it from the template.
  let target: unknown = manifest.target;
  for (const s of secrets) target = setIn(target, s.path.slice(1), REDACTED);
  const refs = secrets.map((s) => ({
    path: s.path,
    ...(s.template === undefined ? {} : { template: s.template }),
  }));
  return {
    target: target as TargetConfig,
    secrets: refs,
    targetKey: createHash('sha256')
      .update(JSON.stringify([target, refs]))
      .digest('hex')
      .slice(0, 16),
  };
}

/** The job's target with its secrets filled from this worker's environment. */
export function resolveTarget(job: TargetSpec, env: NodeJS.ProcessEnv): TargetConfig {
  let target: unknown = job.target;
  for (const s of job.secrets) {
    if (s.template === undefined) continue;
    const r = interpolate(s.template, env);
    if (r.missing.length > 0) {
      throw new StrideError(
        'NON_RETRYABLE',
        `this worker's environment has no ${r.missing.join(', ')} (needed for target.${s.path.slice(1).join('.')})`,
        { retryable: false },
      );
    }
    target = setIn(target, s.path.slice(1), r.value);
  }
  return target as TargetConfig;
}

/** Orders two stream entry ids (`<ms>-<seq>`). */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am === bm ? as - bs : am - bm;
}

/** A reply as a Stride worker writes it (see `Reply`). */
export function isReply(r: unknown): r is Reply {
  if (r === null || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  if (typeof o.id !== 'string' || typeof o.sender !== 'string') return false;
  if (typeof o.waiting === 'boolean') return true;
  if (o.returned === true) return typeof o.job === 'string' && typeof o.maybeSent === 'boolean';
  const outcome = o.outcome as Record<string, unknown> | null | undefined;
  return (
    outcome !== null &&
    typeof outcome === 'object' &&
    typeof outcome.ok === 'boolean' &&
    typeof outcome.usage === 'object' &&
    outcome.usage !== null &&
    (outcome.ok || (typeof outcome.error === 'object' && outcome.error !== null))
  );
}
