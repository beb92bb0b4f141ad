/**
 * The `stride` commands, one file each, in the order `stride --help` lists them. Each file's
 * `register` declares its flags and an action that parses them and calls the runner.
 */

import type { Command } from 'commander';
import type { CommandContext } from '../options.js';
import { registerCompare } from './compare.js';
import { registerDemo } from './demo.js';
import { registerMock } from './mock.js';
import { registerPrune } from './prune.js';
import { registerReport } from './report.js';
import { registerRerun } from './rerun.js';
import { registerResume } from './resume.js';
import { registerRun } from './run.js';
import { registerRuns } from './runs.js';
import { registerServe } from './serve.js';
import { registerShow } from './show.js';
import { registerValidate } from './validate.js';
import { registerWorker } from './worker.js';

/** Adds one command to the program. */
export type RegisterCommand = (root: Command, context: CommandContext) => void;

export const COMMANDS: readonly RegisterCommand[] = [
  registerRun,
  registerResume,
  registerRerun,
  registerRuns,
  registerShow,
  registerReport,
  registerValidate,
  registerPrune,
  registerWorker,
  registerCompare,
  registerServe,
  registerMock,
  registerDemo,
];
