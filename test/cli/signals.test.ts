/**
 * Ctrl-C before the run session listens: the bin keeps SIGINT/SIGTERM from its first line and
 * hands them to the graceful stop once the run is journaled (src/cli/signals.ts).
 */

import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import {
  closeSync,
  constants,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SignalGate } from '../../src/cli/signals.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { signalPending, until } from '../core/harness.js';
import { makePlan, spawnStride } from './helpers.js';

/** A process-like signal source the test drives. */
function fakeProcess(): EventEmitter & { send(signal: NodeJS.Signals): void } {
  const source = new EventEmitter() as EventEmitter & { send(signal: NodeJS.Signals): void };
  source.send = (signal) => {
    source.emit(signal, signal);
  };
  return source;
}

/**
 * Opens the FIFO for writing once a reader has it open (O_NONBLOCK: ENXIO while none has), or
 * resolves undefined once `done` says to stop waiting.
 */
async function writerOf(path: string, done: () => boolean): Promise<number | undefined> {
  let fd: number | undefined;
  await until(() => {
    if (done()) return true;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENXIO') return false;
      throw err;
    }
  }, `a reader of ${path}`);
  return fd;
}

/** Whether process `pid` has `path` open (Linux: /proc/<pid>/fd). */
function holds(pid: number, path: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return false; // the process is gone
  }
}

/**
 * Gives `text` to every reader of the FIFO (the CLI reads a plan more than once), one reader at
 * a time: the next is served once process `pid` has closed the last one, until `done`.
 */
async function serveFifo(pid: number, path: string, text: string, done: () => boolean) {
  for (;;) {
    const fd = await writerOf(path, done);
    if (fd === undefined) return;
    // Written once the reader's open() returned, never into an open a signal may restart.
    await until(() => done() || holds(pid, path), 'the reader to have the FIFO open');
    writeSync(fd, text);
    closeSync(fd);
    await until(() => done() || !holds(pid, path), 'the reader to finish');
  }
}

const tick = () => new Promise<void>((resolve) => queueMicrotask(resolve));

describe('SignalGate', () => {
  it('keeps signals nobody listens for and delivers each once, in order, to the first listener', async () => {
    const source = fakeProcess();
    const gate = new SignalGate({ source, force: () => expect.unreachable() });
    source.send('SIGTERM');
    source.send('SIGINT');
    expect(gate.kept).toEqual(['SIGTERM', 'SIGINT']);
    const heard: string[] = [];
    const listener = (s: NodeJS.Signals) => heard.push(`a:${s}`);
    gate.on('SIGINT', listener);
    gate.on('SIGTERM', listener);
    expect(heard).toEqual([]); // after the caller's own set-up, not inside on()
    await tick();
    await tick();
    expect(heard.sort()).toEqual(['a:SIGINT', 'a:SIGTERM']);
    expect(gate.kept).toEqual([]);
    // A later listener gets no replay; live signals go to whoever listens.
    const late: string[] = [];
    gate.on('SIGINT', (s) => late.push(s));
    await tick();
    expect(late).toEqual([]);
    source.send('SIGINT');
    expect(heard.filter((h) => h === 'a:SIGINT')).toHaveLength(2);
    expect(late).toEqual(['SIGINT']);
    // Without a listener of its kind a signal is kept again.
    gate.off('SIGINT', listener);
    gate.off('SIGTERM', listener);
    source.send('SIGTERM');
    expect(gate.kept).toEqual(['SIGTERM']);
    gate.dispose();
    expect(source.listenerCount('SIGINT') + source.listenerCount('SIGTERM')).toBe(0);
  });

  it('the third signal nobody listened for forces the end', () => {
    const source = fakeProcess();
    const forced: string[] = [];
    const gate = new SignalGate({ source, force: (s) => forced.push(s) });
    source.send('SIGINT');
    source.send('SIGINT');
    expect(forced).toEqual([]);
    source.send('SIGTERM');
    expect(forced).toEqual(['SIGTERM']);
    gate.dispose();
  });
});

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 5 });
});
afterAll(async () => {
  await mock.close();
});

describe('Ctrl-C before the session listens', () => {
  it('a SIGINT while the plan is still being read ends the command with 130 before any run exists', async () => {
    const { dir, plan } = makePlan({ cases: ['ok', 'ok'] });
    // The plan is a FIFO: the child blocks reading it, past the bin's first line and before its
    // session, until this test writes it. Before the fix nothing listened there and the SIGINT
    // killed the process (128); a signal in the same gap after the run's row was written left it
    // `running` with no resume command.
    const text = readFileSync(plan, 'utf8');
    unlinkSync(plan);
    execFileSync('mkfifo', [plan]);
    const env = { MOCK_URL: mock.baseUrl };
    const child = spawnStride(['run', plan, '--no-progress', '--db', 'j.db', '--run-id', 'early'], {
      cwd: dir,
      env,
    });
    // A child left blocked on the FIFO by a failed assertion must not outlive the test.
    onTestFinished(() => child.kill('SIGKILL'));
    let exited = false;
    const code = child.exited.finally(() => {
      exited = true;
    });
    // The child has the plan open to read: it is past the bin's first line, before its session.
    const fd = await writerOf(plan, () => exited);
    child.kill('SIGINT');
    await until(() => !signalPending(child.pid, 'SIGINT'), 'the SIGINT to be delivered');
    const before = mock.stats().requests;
    await until(() => exited || holds(child.pid, plan), 'the reader to have the FIFO open');
    writeSync(fd!, text);
    closeSync(fd!);
    await until(() => exited || !holds(child.pid, plan), 'the reader to finish');
    await serveFifo(child.pid, plan, text, () => exited);
    expect(await code).toBe(130);
    expect(child.stderr()).toContain('Interrupted (SIGINT) before the run started');
    expect(mock.stats().requests).toBe(before);
    // No run was recorded: the id is free for a run that goes through.
    unlinkSync(plan);
    writeFileSync(plan, text);
    const again = spawnStride(['run', plan, '--no-progress', '--db', 'j.db', '--run-id', 'early'], {
      cwd: dir,
      env,
    });
    expect(await again.exited).toBe(0);
  });

  it('a command that drives no run still ends on Ctrl-C as Node would (the signal is raised again)', async () => {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const text = readFileSync(plan, 'utf8');
    unlinkSync(plan);
    execFileSync('mkfifo', [plan]);
    const child = spawnStride(['validate', plan], { cwd: dir, env: { MOCK_URL: mock.baseUrl } });
    onTestFinished(() => child.kill('SIGKILL'));
    let exited = false;
    const code = child.exited.finally(() => {
      exited = true;
    });
    const fd = await writerOf(plan, () => exited);
    child.kill('SIGINT');
    // `validate` released the gate before it started reading: Node's default kills it at once.
    expect(await code).toBe(128);
    expect(text).not.toBe(''); // what it would have read, had it lived
    closeSync(fd!);
  });
});
