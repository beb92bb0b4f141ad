/**
 * The mock's honesty about its own stalls (issue #16 item 7): requests that reach its socket
 * apart while its event loop is stalled are stamped together; the mock reports the window at
 * the stamps, the least the window can have held, and the stall, instead of a silent overshoot.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { arrivalWindow, type MockServer, startMock } from '../../src/mock/index.js';

let mock: MockServer | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await mock?.close();
  mock = undefined;
});

describe('arrivalWindow', () => {
  it('no stall: the least possible is what was stamped', () => {
    const stamps = [0, 10, 20, 30, 200];
    expect(arrivalWindow(stamps, stamps, 100)).toEqual({
      windowMs: 100,
      stamped: 4,
      leastPossible: 4,
      stallMs: 0,
    });
  });

  it('four stamped at once after a 300 ms stall may have arrived 100 ms apart', () => {
    expect(arrivalWindow([300, 300, 300, 300], [0, 0, 0, 0], 100)).toEqual({
      windowMs: 100,
      stamped: 4,
      leastPossible: 1,
      stallMs: 300,
    });
    // After a 150 ms stall, 4 cannot spread to 1 per 100 ms, but to 2.
    expect(arrivalWindow([150, 150, 150, 150], [0, 0, 0, 0], 100).leastPossible).toBe(2);
  });

  it('a stall too short to spread what it stamped excuses nothing', () => {
    // On time at 0 and 50; two stamped at 120 after a loop away since 20. Spread as far as
    // their interval allows (one at 100, one at 120... or 50), some window still holds 3.
    const w = arrivalWindow([0, 50, 120, 120], [0, 50, 20, 20], 100);
    expect(w).toEqual({ windowMs: 100, stamped: 3, leastPossible: 3, stallMs: 100 });
  });
});

/** Four sockets to the mock, connected. */
async function sockets4(port: number): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
          sockets.push(s);
        }),
    ),
  );
}

function rawRun(i: number): string {
  const body = JSON.stringify({
    inputs: { query: `q${i}`, __latency_ms: 0 },
    response_mode: 'blocking',
    user: 'u',
  });
  return (
    'POST /v1/workflows/run HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer app-arrivals\r\n' +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // The mock's loop (this process's) is stalled: what a descheduled server looks like.
  }
}

describe('mock: arrivals during its own stall', () => {
  it('four requests written 60 ms apart while the mock is stalled: reported with the stall, 2 in 100 ms possible', async () => {
    mock = await startMock({});
    const conns = await sockets4(mock.port);
    const got = conns.map(() => '');
    for (const [i, s] of conns.entries())
      s.on('data', (d) => {
        got[i] += String(d);
      });
    // A first request on each connection: the mock has accepted all four and reads them, so
    // what is written below is read in one turn of its loop (no heartbeat between the stamps).
    for (const s of conns)
      s.write('GET /__stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    await vi.waitFor(() => expect(got.every((g) => g.endsWith('}'))).toBe(true));
    got.fill('');
    const answered = conns.map(
      (s, i) => new Promise<string>((resolve) => s.on('close', () => resolve(got[i]!))),
    );
    // The writes reach the kernel now (libuv writes at once to an idle socket), 60 ms apart;
    // the mock, in this process, reads them only when this turn ends.
    for (let i = 0; i < 4; i++) {
      conns[i]!.write(rawRun(i));
      busyWait(60);
    }
    const replies = await Promise.all(answered);
    for (const r of replies) expect(r).toMatch(/^HTTP\/1\.1 200/);
    // All four within a minute (the test's own timeout): the stall before them is the 240 ms
    // this test kept the loop busy, at least.
    const minute = mock.arrivals(60_000);
    expect(minute.stamped).toBe(4);
    expect(minute.stallMs).toBeGreaterThanOrEqual(240);
    // In 100 ms: however close the stamps (the machine's load may spread them), the arrivals
    // may have been 2 per 100 ms, and the report says it.
    const w = mock.arrivals(100);
    expect(w.stamped).toBe(mock.maxInWindow(100, 'requests'));
    expect(w.stamped).toBeGreaterThanOrEqual(w.leastPossible);
    expect(w.leastPossible).toBeLessThanOrEqual(2);
    expect(w.stallMs).toBeGreaterThanOrEqual(240);
  });
});
