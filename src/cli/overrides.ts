/**
 * `stride run`'s flags and how they apply over a test plan: its execution policy (concurrency,
 * rate, timeout, stop rules) and its case selection (tags, range, sample, repeat).
 */

import type { RunManifest } from '../plans/index.js';
import type { RegressionGate } from './flags.js';
import type { DispatchFlags, OutputFlags } from './options.js';
import { UsageError } from './usage.js';

export interface RunFlags extends OutputFlags, DispatchFlags {
  concurrency?: number;
  rate?: number;
  burst?: number;
  timeout?: number;
  maxFailures?: number;
  tag?: string[];
  excludeTag?: string[];
  range?: { from: number; to?: number };
  sample?: number;
  seed?: number;
  repeat?: number;
  runId?: string;
  baseline?: string;
  failOnRegression?: RegressionGate;
}

/** Applies the `run` flags over the plan: its execution policy and its case selection. */
export function applyOverrides(manifest: RunManifest, flags: RunFlags): RunManifest {
  const p = manifest.executionPolicy;
  const sel = manifest.select;
  if (flags.seed !== undefined && flags.sample === undefined && sel.sample === undefined) {
    throw new UsageError(
      `--seed ${flags.seed}: it seeds --sample, and neither it nor the plan samples`,
    );
  }
  if (flags.burst !== undefined && flags.rate === undefined && p.rateControl === undefined) {
    throw new UsageError(`--burst ${flags.burst}: it needs --rate (the plan has no rate_control)`);
  }
  const rate =
    flags.rate === undefined && flags.burst === undefined
      ? p.rateControl
      : {
          perMinute: flags.rate ?? p.rateControl?.perMinute ?? 60,
          burst: flags.burst ?? p.rateControl?.burst ?? 1,
        };
  const sampleSize = flags.sample ?? sel.sample?.size;
  return {
    ...manifest,
    executionPolicy: {
      ...p,
      ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
      ...(flags.timeout === undefined ? {} : { timeoutMs: flags.timeout }),
      ...(rate === undefined ? {} : { rateControl: rate }),
      stopConditions: {
        ...p.stopConditions,
        ...(flags.maxFailures === undefined ? {} : { maxFailures: flags.maxFailures }),
      },
    },
    select: {
      ...sel,
      ...(flags.tag === undefined ? {} : { tags: flags.tag }),
      ...(flags.excludeTag === undefined ? {} : { excludeTags: flags.excludeTag }),
      ...(flags.range === undefined ? {} : { range: flags.range }),
      ...(sampleSize === undefined
        ? {}
        : { sample: { size: sampleSize, seed: flags.seed ?? sel.sample?.seed ?? 1 } }),
      ...(flags.repeat === undefined ? {} : { repeat: flags.repeat }),
    },
  };
}
