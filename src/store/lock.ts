/**
 * Run locks: exactly one session drives a run at a time. A session takes its run's lock before
 * it writes or sends anything (`Store.lockRun`), keeps it alive with a heartbeat and gives it
 * back when the run ends. A second session on the same run (a second `stride resume ID`, a
 * `rerun` of a run being resumed, the same run resumed twice in one process) is refused with
 * `RUN_LOCKED`, naming the holder.
 *
 * A holder that died without giving the lock back (kill -9, a power cut) must not block the run
 * forever. Liveness is judged from the record itself:
 * - on the holder's own host, by its process: gone (or its pid now belongs to a process started
 *   later: pid reuse) means dead, at once, whatever the heartbeat says. A live process keeps its
 *   lock even when its heartbeat is late (an event loop blocked for a minute is slow, not dead;
 *   two drivers would be worse);
 * - from another host (a journal on a shared disk), by the heartbeat: older than
 *   `LOCK_STALE_MS` means dead.
 */

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { StrideError } from '../core/errors.js';

/** Who holds a run's lock. Plain data, for messages and the dashboard. */
export interface LockHolder {
  /** The holding process. */
  readonly pid: number;
  readonly host: string;
  /** When the lock was taken, epoch milliseconds. */
  readonly since: number;
  /** The holder's last heartbeat, epoch milliseconds. */
  readonly heartbeatAt: number;
}

/** A lock held by this process; `release()` gives it back (idempotent). */
export interface RunLease {
  readonly runId: string;
  readonly holder: LockHolder;
  release(): Promise<void>;
}

/** The stored form of a lock: the holder plus what identifies one acquisition. */
export interface LockRecord extends LockHolder {
  /** Random per acquisition: a release removes only its own lock, never a successor's. */
  readonly token: string;
  /** The holder process's start time (Linux: clock ticks after boot), to detect pid reuse. */
  readonly startTicks: number | undefined;
}

/** A holder's heartbeat interval. */
export const LOCK_HEARTBEAT_MS = 5_000;
/** A holder on another host whose heartbeat is older than this is taken for dead. */
export const LOCK_STALE_MS = 60_000;

/** When the process `pid` started (field 22 of /proc/PID/stat), or undefined off Linux. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process that took `lock` still holds it (see the module comment). */
export function holderAlive(lock: LockRecord, now: number = Date.now()): boolean {
  if (lock.host === hostname()) {
    if (!processAlive(lock.pid)) return false;
    if (lock.startTicks === undefined) return true;
    const ticks = processStartTicks(lock.pid);
    return ticks === undefined || ticks === lock.startTicks;
  }
  return now - lock.heartbeatAt < LOCK_STALE_MS;
}

/** A fresh lock record for this process. */
export function newLockRecord(now: number = Date.now()): LockRecord {
  return {
    pid: process.pid,
    host: hostname(),
    since: now,
    heartbeatAt: now,
    token: `${process.pid}-${now}-${Math.random().toString(36).slice(2, 10)}`,
    startTicks: processStartTicks(process.pid),
  };
}

/** The holder part of a record (what is shown). */
export function holderOf(lock: LockRecord): LockHolder {
  return { pid: lock.pid, host: lock.host, since: lock.since, heartbeatAt: lock.heartbeatAt };
}

/** The error of a refused lock: names the run and its holder. */
export function runLockedError(runId: string, holder: LockHolder): StrideError {
  const self = holder.pid === process.pid && holder.host === hostname();
  const who = self
    ? `another session of this process (pid ${holder.pid})`
    : `process ${holder.pid} on ${holder.host}`;
  return new StrideError(
    'RUN_LOCKED',
    `run "${runId}" is being driven by ${who} since ${new Date(holder.since).toISOString()}: ` +
      'one process drives a run at a time; wait for it to end or stop it (Ctrl-C) first',
  );
}
