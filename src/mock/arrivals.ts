/**
 * When requests arrived at the mock, as honestly as a process can tell (issue #16 item 7).
 *
 * The mock stamps a request when its event loop gets to it. When the loop was stalled (the
 * machine did not run this process, or something blocked it), requests that reached the socket
 * apart are stamped together, and a window of the stamps holds more than arrived in it. Nothing
 * in the process can say when, inside the stall, each one arrived; what it can say is the
 * interval: after the loop's last poll for I/O before the one that read it (bounded below by the
 * heartbeat before the last one: a heartbeat every few ms, in the timers phase, which may fire
 * after a stall and before the poll that reads what arrived during it), and at the stamp at
 * the latest. So a window is reported at the stamps, with the least any window
 * could hold for arrivals inside those intervals: a window over a bound at the stamps whose
 * least is within it was bunched by the mock's own stall, and is reported as such, not dropped.
 */

/** The heartbeat period: the resolution of "the loop was running then". */
export const HEARTBEAT_MS = 5;

/** A window's arrivals (`MockServer.arrivals`). Plain data. */
export interface ArrivalWindow {
  readonly windowMs: number;
  /** The most requests stamped within any window of `windowMs` (`maxInWindow`). */
  readonly stamped: number;
  /**
   * The least the fullest window can have held: the smallest most-in-a-window over every
   * arrival time consistent with the stamps and the mock's own stalls (each request arrived
   * between the heartbeat before the loop's last one and its stamp). Equal to `stamped` when
   * the loop never stalled long enough to move a request across a window's edge.
   */
  readonly leastPossible: number;
  /**
   * The longest the mock's loop had been away (no heartbeat) when it stamped one of the
   * requests of a fullest window of the stamps, in ms: how much of `stamped` is the mock's own.
   */
  readonly stallMs: number;
}

/**
 * The arrival figures of one window length. `stamps` are the requests' stamps in order;
 * `earliest[i]` is when request i can have arrived at the earliest (the heartbeat before it),
 * non-decreasing too and never after its stamp.
 *
 * @example
 * ```ts
 * // Three requests stamped together after a 300 ms stall: 3 in 100 ms at the stamps, but
 * // they may have arrived 100 ms apart.
 * arrivalWindow([300, 300, 300], [0, 0, 0], 100);
 * // { windowMs: 100, stamped: 3, leastPossible: 1, stallMs: 300 }
 * ```
 */
export function arrivalWindow(
  stamps: readonly number[],
  earliest: readonly number[],
  windowMs: number,
): ArrivalWindow {
  const n = stamps.length;
  let stamped = 0;
  let lo = 0;
  for (let hi = 0; hi < n; hi++) {
    while (stamps[hi]! - stamps[lo]! >= windowMs) lo++;
    stamped = Math.max(stamped, hi - lo + 1);
  }
  // The stall behind the fullest windows of the stamps.
  let stallMs = 0;
  lo = 0;
  for (let hi = 0; hi < n; hi++) {
    while (stamps[hi]! - stamps[lo]! >= windowMs) lo++;
    if (hi - lo + 1 === stamped)
      for (let i = lo; i <= hi; i++) stallMs = Math.max(stallMs, stamps[i]! - earliest[i]!);
  }
  let leastPossible = stamped;
  for (let b = 1; b < stamped; b++) {
    if (fits(stamps, earliest, windowMs, b)) {
      leastPossible = b;
      break;
    }
  }
  return { windowMs, stamped, leastPossible, stallMs };
}

/**
 * Can the requests have arrived with no window of `windowMs` holding more than `bound`? Each
 * arrival is placed as early as its interval and the bound allow (the `bound`-th arrival before
 * it at least a window earlier); with intervals ordered alike at both ends, this earliest
 * placement fails only if no placement fits.
 */
function fits(
  stamps: readonly number[],
  earliest: readonly number[],
  windowMs: number,
  bound: number,
): boolean {
  const at: number[] = [];
  for (let i = 0; i < stamps.length; i++) {
    let t = Math.max(earliest[i]!, i > 0 ? at[i - 1]! : Number.NEGATIVE_INFINITY);
    if (i >= bound) t = Math.max(t, at[i - bound]! + windowMs);
    if (t > stamps[i]!) return false;
    at.push(t);
  }
  return true;
}
