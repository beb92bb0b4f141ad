import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A program some tests run, and the Debian package that provides it. */
interface Requirement {
  readonly command: string;
  readonly pkg: string;
  readonly usedBy: string;
  /** An explicit path set by the user (e.g. `CHROMIUM_PATH`) replaces the PATH lookup. */
  readonly override?: string | undefined;
}

export const REQUIREMENTS: readonly Requirement[] = [
  {
    command: 'chromium',
    pkg: 'chromium',
    usedBy: 'the HTML report and dashboard tests (headless, driven by playwright-core)',
    override: process.env.CHROMIUM_PATH,
  },
  {
    command: 'redis-server',
    pkg: 'redis-server',
    usedBy: 'the distributed (BullMQ) tests',
  },
];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `command` resolves to an executable on PATH (or is an executable path itself). */
export function onPath(command: string, path = process.env.PATH ?? ''): boolean {
  if (command.includes('/')) return executable(command);
  return path
    .split(delimiter)
    .filter((dir) => dir !== '')
    .some((dir) => executable(join(dir, command)));
}

/** The requirements not met on this machine. */
export function missingRequirements(path = process.env.PATH ?? ''): Requirement[] {
  return REQUIREMENTS.filter((r) => !onPath(r.override ?? r.command, path));
}

/** The message a user gets when a requirement is missing and cannot be installed from here. */
export function missingMessage(missing: readonly Requirement[], why: string): string {
  const pkgs = missing.map((r) => r.pkg).join(' ');
  const lines = missing.map((r) => `  - ${r.command} (Debian package ${r.pkg}): ${r.usedBy}`);
  return [
    `The test suite needs programs this machine does not have (${why}):`,
    ...lines,
    `Install them with:  sudo apt-get update && sudo apt-get install -y ${pkgs}`,
    'or point CHROMIUM_PATH at a Chromium binary. No test is skipped instead.',
  ].join('\n');
}

/**
 * Makes sure every requirement is there: installs the missing ones through apt when running as
 * root with apt-get available, else throws with the packages and the install command.
 */
export function ensureSystemPackages(given: { path?: string; root?: boolean } = {}): void {
  const path = given.path ?? process.env.PATH ?? '';
  const missing = missingRequirements(path);
  if (missing.length === 0) return;
  const root = given.root ?? (typeof process.getuid === 'function' && process.getuid() === 0);
  if (!root || !onPath('apt-get', path)) {
    throw new Error(missingMessage(missing, root ? 'apt-get not found' : 'not root'));
  }
  const pkgs = missing.map((r) => r.pkg);
  process.stderr.write(`[test set-up] installing ${pkgs.join(', ')} through apt-get\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', ...pkgs],
  ]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8', stdio: 'pipe' });
    if (r.status !== 0) {
      throw new Error(
        `${missingMessage(missing, `apt-get ${args[0]} failed with ${r.status ?? r.signal}`)}\n${r.stderr}`,
      );
    }
  }
  const still = missingRequirements();
  if (still.length > 0)
    throw new Error(missingMessage(still, 'still missing after apt-get install'));
}
