import { describe, expect, it, vi } from 'vitest';
import { isLiveTerminal, Progress, progressBefore } from '../../src/cli/progress.js';
import { Run, VirtualClock } from '../../src/core/index.js';

function sink(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return {
    out: {
      isTTY,
      ...(columns === undefined ? {} : { columns }),
      write: (s: string) => chunks.push(s),
    },
    chunks,
  };
}

describe('Progress', () => {
  it('counts done, verdicts, retries and rate waits of a real run', async () => {
    const clock = new VirtualClock();
    // The first wave (t0-t3) is refused once each: a quarter and more of the answers, so the
    // adaptive pace lowers the concurrency (a lone 503 among clean answers would not).
    const calls = new Map<number, number>();
    const run = new Run(
      Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, input: i })),
      {
        execute: async ({ input }: { input: number }) => {
          calls.set(input, (calls.get(input) ?? 0) + 1);
          await clock.sleep(100);
          if (input < 4 && calls.get(input) === 1) {
            throw Object.assign(new Error('busy'), { status: 503 });
          }
          if (input === 5) throw Object.assign(new Error('bad'), { status: 400 });
          return input;
        },
      },
      {
        clock,
        concurrency: 4,
        rate: { perMinute: 600, burst: 2 },
        retry: { maxAttempts: 3, backoffMs: 10, jitter: 'none' },
      },
    );
    let now = 0;
    const { out } = sink(false);
    const progress = new Progress(run, out, { tty: false, total: 20, now: () => now });
    progress.start();
    await run.start();
    now = 2_000;
    const line = progress.line();
    progress.stop();
    expect(line).toMatch(/^\[100%\] 20\/20 ok 19 fail 0 err 1 \| /);
    expect(line).toContain('ETA 0s');
    // The 503s lowered the concurrency (adaptive pace): the line shows it, of the plan's 4, and
    // the pace's last change in its own words.
    expect(line).toContain('conc 0/2 of 4 ');
    expect(line).toMatch(/ \| concurrency \d+ → 2: [^|]+$/);
    expect(line).toMatch(/waits [1-9]\d*/); // 20 starts at 10/s with a burst of 2 must wait
    expect(line).toContain('retries 4');
  });

  it("after a resume every count is the whole run, labelled, not done cumulative beside this session's verdicts (issue #18 item 3)", async () => {
    const clock = new VirtualClock();
    // This session: the 20 cases the first session left (cancelled), 19 pass and 1 errors.
    const run = new Run(
      Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, input: i })),
      {
        execute: async ({ input }: { input: number }) => {
          await clock.sleep(100);
          if (input === 5) throw Object.assign(new Error('bad'), { status: 400 });
          return input;
        },
      },
      { clock, concurrency: 4 },
    );
    // The stored run after the first session: 30 cases, 10 decided, 20 cancelled.
    const before = progressBefore({
      total: 30,
      succeeded: 7,
      failed: 2,
      timeout: 1,
      error: 0,
      cancelled: 20,
    });
    expect(before).toEqual({ done: 10, succeeded: 7, failed: 2, error: 1 });
    let now = 0;
    const { out } = sink(false);
    const progress = new Progress(run, out, { tty: false, total: 30, before, now: () => now });
    progress.start();
    await run.start();
    now = 2_000;
    const line = progress.line();
    progress.stop();
    // 7 + 19 ok, 2 failed, 1 timeout + 1 error: they add up to the 30 done.
    expect(line).toMatch(/^\[100%\] 30\/30 ok 26 fail 2 err 2 \(whole run; 20 this session\) \| /);
  });

  it('rewrites one line on a TTY, clipped to the width, and clears it on stop', () => {
    vi.useFakeTimers();
    try {
      const run = new Run([{ id: 'a', input: 1 }], { execute: async () => 1 });
      const { out, chunks } = sink(true, 30);
      const progress = new Progress(run, out, { tty: true, ttyEveryMs: 100 });
      progress.start();
      vi.advanceTimersByTime(250);
      progress.stop();
      expect(chunks.length).toBe(3); // two ticks and the clear
      expect(chunks[0]!.startsWith('\r\x1b[2K[  0%] 0/1 ok 0')).toBe(true);
      expect(chunks[0]!.length).toBe('\r\x1b[2K'.length + 29);
      expect(chunks[2]).toBe('\r\x1b[2K');
    } finally {
      vi.useRealTimers();
    }
  });

  it('prints plain lines every few seconds off a TTY, and never in CI as a live line', () => {
    vi.useFakeTimers();
    try {
      const run = new Run([{ id: 'a', input: 1 }], { execute: async () => 1 });
      const { out, chunks } = sink(false);
      const progress = new Progress(run, out, { tty: false });
      progress.start();
      vi.advanceTimersByTime(12_000);
      progress.stop();
      expect(chunks).toHaveLength(2);
      expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    } finally {
      vi.useRealTimers();
    }
    expect(isLiveTerminal({ isTTY: true, write: () => 0 }, {})).toBe(true);
    expect(isLiveTerminal({ isTTY: true, write: () => 0 }, { CI: 'true' })).toBe(false);
    expect(isLiveTerminal({ isTTY: false, write: () => 0 }, {})).toBe(false);
  });
});
