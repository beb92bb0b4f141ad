/**
 * Adaptive pace: the concurrency and request rate a run actually uses, learned from what the
 * target answers. The run's `concurrency` (and `rate`) are ceilings; this controller keeps the
 * effective values below them (docs/architecture.md, "Adaptive pace").
 *
 * The rule, in short (AIMD, as TCP and Netflix's concurrency-limits `AIMDLimit` do it):
 * - a bare refusal (a 429 without Retry-After or rate-limit headers, or a 503) of an attempt
 *   sent under the current pace lowers the concurrency to at most ⌊0.9 × limit⌋ (and by at
 *   least 1), and never above what we had in flight when the refused attempt was sent: the
 *   target admitted fewer than that. Refusals of attempts sent before the last decrease only
 *   apply that second bound (one multiplicative decrease per window, as TCP); a fresh refusal
 *   before any clean window followed the last decrease halves instead (the pace is far off);
 * - at the concurrency floor, a further bare 429 means the target limits the rate: the first
 *   time the rate goes to 0.9 × the lower of what we sent and what the target admitted at this
 *   concurrency, later to 0.9 × the rate refused;
 * - a window of clean answers (as many as the limit; with the rate limited, at least 8) while
 *   the limit (or the rate) was what held us back raises the limit by 1, or the rate by 5 % of
 *   the level last refused; a step that would reach
 *   that level again waits 2, 4, ... 32 windows (doubling after every refused probe), so
 *   probing a fixed limit costs few requests, and a raised one is found within 32 windows.
 *
 * No I/O and no timers: the run calls it on every start and answer, on its own clock.
 */

import type { Clock } from './clock.js';
import { type ErrorClassification, InvalidOptionError } from './errors.js';
import { RateLimiter } from './rate.js';

/** Options of adaptive pace (`RunOptions.adaptive`). */
export interface AdaptiveOptions {
  /** The lowest concurrency the pace may go down to. @default 1 */
  readonly minConcurrency?: number;
}

/**
 * Why the pace changed: the target refused without saying how long to wait (`rate_limited`: a
 * 429, `busy`: a 503), a run of clean answers (`recovered`), or `setConcurrency` (`set`).
 */
export type PaceReason = 'rate_limited' | 'busy' | 'recovered' | 'set';

/** One change of the effective pace (event `paceChanged`). Plain data. */
export interface PaceChange {
  /** Run clock time. */
  readonly at: number;
  /** The effective concurrency before and after (equal when only the rate changed). */
  readonly concurrency: { readonly from: number; readonly to: number };
  /** The adapted request rate per minute before and after; undefined: not limited by the pace. */
  readonly ratePerMinute: { readonly from: number | undefined; readonly to: number | undefined };
  readonly reason: PaceReason;
  /** For people: `concurrency 20 → 4: target answered 429 without Retry-After`. */
  readonly message: string;
}

/** The pace now (`Run.pace`). */
export interface PaceState {
  /** False when the run was built with `adaptive: false`: the concurrency is the plan's. */
  readonly adaptive: boolean;
  /** The plan's concurrency: the ceiling. */
  readonly ceiling: number;
  /** The effective concurrency. */
  readonly concurrency: number;
  readonly minConcurrency: number;
  /** The adapted rate per minute, or undefined when the pace does not limit the rate. */
  readonly ratePerMinute: number | undefined;
}

/** The pace over a whole run, in its statistics. */
export interface PaceStatistics {
  readonly ceiling: number;
  /** Effective concurrency at the end. */
  readonly concurrency: number;
  /** Lowest effective concurrency during the run. */
  readonly lowestConcurrency: number;
  /** Adapted rate per minute at the end, or undefined. */
  readonly ratePerMinute: number | undefined;
  /** Lowest adapted rate per minute during the run, or undefined if the rate was never lowered. */
  readonly lowestRatePerMinute: number | undefined;
  /** How many times the pace changed. */
  readonly changes: number;
  /** The message of the first decrease: why the pace went down. */
  readonly firstDecrease: string | undefined;
}

/** A refusal that says "slow down" without saying how much (a pace signal). */
export type PaceSignal = 'rate_limited' | 'busy';

/**
 * The pace signal of a failed attempt, if it is one: a 429 (not a spent quota) or a 503, with
 * no Retry-After and no rate-limit headers. Headers are exact, so when present they decide (the
 * bucket cools for the time they give) and the pace does not guess.
 */
export function paceSignalOf(
  err: unknown,
  cls: ErrorClassification,
  limitsReported: boolean,
): PaceSignal | undefined {
  if (cls.retryAfterMs !== undefined || limitsReported) return undefined;
  if (cls.rateLimited) return 'rate_limited';
  const status = (err as { status?: unknown } | null)?.status;
  return status === 503 && cls.retryable ? 'busy' : undefined;
}

/** Multiplicative decrease: Netflix's AIMDLimit default backoff ratio. */
const BACKOFF = 0.9;
/**
 * The decrease when the target still refuses before a single clean window followed the last
 * decrease: the pace is far above what it admits, so halve (TCP's ratio) instead of creeping.
 */
const STEEP_BACKOFF = 0.5;
/**
 * The rate's decrease before a clean window followed the last one. Gentler than the halving of
 * the concurrency: the refusals that reach the rate loop include cases the target refuses for
 * themselves, and the rate recovers by small steps.
 */
const RATE_STEEP_BACKOFF = 0.8;
/** Refused probes double the wait before the next, up to 2^5 = 32 windows. */
const MAX_PROBE_SHIFT = 5;
/** Decreases that refused no raise double it up to 2^2 = 4 windows. */
const LEARNING_PROBE_SHIFT = 2;
/** The additive rate step, as a share of the rate last refused. */
const RATE_STEP = 0.05;
/** The most the rate's step grows to, doubling over clean windows in a row. */
const MAX_RATE_STEP_SCALE = 8;
/** The adapted rate never goes below one request a minute. */
const MIN_RATE_PER_MINUTE = 1;
/** With the rate limited, a clean window holds at least this many answers. */
const RATE_WINDOW = 8;
/**
 * A fresh refusal is congestion when refusals are at least 1 / this of the answers (above the
 * concurrency floor; at the floor, where the rate is what is too high, 1 / RATE_SHARE)...
 */
const CONCURRENCY_SHARE = 4;
const RATE_SHARE = 8;
/** ...counted over at least this many answers (so a lone refusal is not: 1 / 16). */
const MIN_OUTCOMES = 16;
/** Rates are measured over the last 64 events, at most this far back. */
const RATE_WINDOW_MS = 10_000;

/** Times of the last few events, to measure a rate. */
class TimeRing {
  private readonly times = new Float64Array(64);
  private size = 0;
  private head = 0;

  push(t: number): void {
    this.times[this.head] = t;
    this.head = (this.head + 1) % this.times.length;
    if (this.size < this.times.length) this.size++;
  }

  /** Events the ring holds from `since` (and `RATE_WINDOW_MS` ago) to `now`. */
  count(now: number, since: number): number {
    const from = Math.max(since, now - RATE_WINDOW_MS);
    let k = 0;
    for (let i = 1; i <= this.size; i++) {
      if (this.times[(this.head - i + this.times.length) % this.times.length]! < from) break;
      k++;
    }
    return k;
  }

  /**
   * Events per minute from `since` (or `RATE_WINDOW_MS` ago, if later; or the oldest event the
   * ring still holds, if the ring is full) to `now`; undefined with no event in it.
   */
  perMinute(now: number, since: number): number | undefined {
    const from = Math.max(since, now - RATE_WINDOW_MS);
    let k = 0;
    let start = from;
    for (let i = 1; i <= this.size; i++) {
      const t = this.times[(this.head - i + this.times.length) % this.times.length]!;
      if (t < from) break;
      k++;
      if (i === this.times.length) start = t;
    }
    if (k === 0) return undefined;
    return (k * 60_000) / Math.max(1, now - start);
  }
}

/**
 * Answers to the attempts sent since the last change, and how many were fresh refusals. Past 32
 * answers both counts halve, so the share follows the last few dozen answers.
 */
class Outcomes {
  answers = 0;
  refusals = 0;

  add(refused: boolean): void {
    if (refused) this.refusals++;
    if (++this.answers > 32) {
      this.answers /= 2;
      this.refusals /= 2;
    }
  }

  clear(): void {
    this.answers = 0;
    this.refusals = 0;
  }
}

/**
 * Probing above a level the target refused: the lowest level refused since the capacity last
 * grew, and how many clean windows to wait before stepping onto it again.
 */
class Probe {
  refusedAt = Number.POSITIVE_INFINITY;
  private shift = 0;
  private wait = 0;

  /**
   * A refusal at `level`; `fresh` when it was sent under the current pace. `probe`: it refused
   * a raise (the default for a fresh one), which doubles the wait up to 32 windows; any other
   * fresh refusal (the pace still coming down) doubles it up to 4 only. The rate's learning
   * decreases doubled it five times in a row under load, and the run then sat 32 windows
   * (~20 s) at 0.86 x the target's rate (bench/pace.mjs rate600 at a load of 15-25).
   */
  refused(level: number, fresh: boolean, probe = fresh): void {
    if (!fresh) {
      this.refusedAt = Math.min(this.refusedAt, level);
      return;
    }
    this.refusedAt = level;
    const cap = probe ? MAX_PROBE_SHIFT : LEARNING_PROBE_SHIFT;
    this.shift = Math.max(this.shift, Math.min(cap, this.shift + 1));
    this.wait = 2 ** this.shift;
  }

  /**
   * A clean window at `level`: may the pace step by `step` now? A step that comes within half a
   * step of the level refused counts as reaching it (rates are not integers).
   */
  mayStep(level: number, step: number): boolean {
    if (level > this.refusedAt - step / 2) {
      // The target admitted a level it refused before: its capacity grew. Probe freely.
      this.refusedAt = Number.POSITIVE_INFINITY;
      this.shift = 0;
      this.wait = 0;
    }
    if (level + step <= this.refusedAt - step / 2) return true;
    if (this.wait > 0) {
      this.wait--;
      return false;
    }
    return true;
  }
}

function perMinuteText(r: number | undefined): string {
  if (r === undefined) return 'unlimited';
  return `${r >= 100 ? Math.round(r) : Number(r.toPrecision(3))}/min`;
}

/**
 * The adaptive pace of one run. The run tells it every start (`started`, whose number the
 * attempt keeps), every answer (`answered`) and every pace signal (`refused`); it returns the
 * change to apply, if any. `bucket` is the gate of the adapted rate, when the rate is limited.
 */
export class PaceController {
  private floorValue: number;
  private limitValue: number;
  private ceilingValue: number;
  private rateValue: number | undefined = undefined;
  private bucketValue: RateLimiter | undefined = undefined;
  private readonly rateCeiling: number;
  /** Number of the last start; `changedAt` / `decreasedAt`: of the last start before a change. */
  private seq = 0;
  private changedAt = 0;
  private decreasedAt = 0;
  /** The refused attempt behind the last decrease. */
  private decreasedBy = 0;
  private clean = 0;
  /** A clean window passed since the last decrease of each (else a fresh refusal halves). */
  private concurrencySettled = true;
  private rateSettled = true;
  /** When the concurrency last changed: rates are measured under the current one. */
  private limitSince: number | undefined = undefined;
  private heldByLimit = false;
  private heldByRate = false;
  private readonly concurrencyProbe = new Probe();
  private readonly rateProbe = new Probe();
  private rateStep = 0;
  /** Clean windows in a row since the rate's last decrease double its step, up to 8 x. */
  private rateStepScale = 1;
  /** The adapted rate at the end of the last clean window since its last decrease. */
  private rateHeld: number | undefined = undefined;
  /** The answers to attempts sent since the last change. */
  private readonly outcomes = new Outcomes();
  /** The last change raised the pace: a refusal under it is a refused probe. */
  private probing = false;
  /** The fewest in flight beside a refused attempt since the last change. */
  private refusedInFlight = Number.POSITIVE_INFINITY;
  private readonly starts = new TimeRing();
  private readonly admits = new TimeRing();
  private firstStart: number | undefined = undefined;
  // Statistics.
  private changes = 0;
  private lowest: number;
  private lowestRate: number | undefined = undefined;
  private firstDecrease: string | undefined = undefined;

  constructor(
    private readonly clock: Clock,
    ceiling: number,
    options: AdaptiveOptions = {},
    /** The run's own rate per minute (`RunOptions.rate`): the adapted rate never exceeds it. */
    rateCeiling: number | undefined = undefined,
  ) {
    this.floorValue = validateMinConcurrency(options.minConcurrency, ceiling);
    this.ceilingValue = ceiling;
    this.limitValue = ceiling;
    this.lowest = ceiling;
    this.rateCeiling = rateCeiling ?? Number.POSITIVE_INFINITY;
  }

  /** The lowest the concurrency may go (`minConcurrency`, at most the ceiling). */
  get floor(): number {
    return this.floorValue;
  }

  /** The effective concurrency. */
  get limit(): number {
    return this.limitValue;
  }

  /** The gate of the adapted rate, or undefined while the pace does not limit the rate. */
  get bucket(): RateLimiter | undefined {
    return this.bucketValue;
  }

  get state(): PaceState {
    return {
      adaptive: true,
      ceiling: this.ceilingValue,
      concurrency: this.limitValue,
      minConcurrency: this.floor,
      ratePerMinute: this.rateValue,
    };
  }

  statistics(): PaceStatistics {
    return {
      ceiling: this.ceilingValue,
      concurrency: this.limitValue,
      lowestConcurrency: this.lowest,
      ratePerMinute: this.rateValue,
      lowestRatePerMinute: this.lowestRate,
      changes: this.changes,
      firstDecrease: this.firstDecrease,
    };
  }

  /** An attempt starts; returns its number (the attempt keeps it for `answered` / `refused`). */
  started(now: number): number {
    this.starts.push(now);
    this.firstStart ??= now;
    this.limitSince ??= now;
    return ++this.seq;
  }

  /** The run waited for the adapted rate's token: the rate is what holds the run back. */
  waitedForRate(): void {
    this.heldByRate = true;
  }

  /**
   * The target answered attempt `seq` (sent while `inFlight` others of this run were in flight):
   * a success, or an answer judged wrong. Counts towards a clean window.
   */
  answered(seq: number, inFlight: number, now: number): PaceChange | undefined {
    this.admits.push(now);
    if (seq <= this.changedAt) return undefined; // sent under an earlier pace
    this.outcomes.add(false);
    if (inFlight + 1 >= this.limitValue) this.heldByLimit = true;
    // A window: one round of the limit; with the rate limited, at least RATE_WINDOW answers, as
    // one answer at a time says little about a rate.
    const window =
      this.rateValue === undefined ? this.limitValue : Math.max(this.limitValue, RATE_WINDOW);
    if (++this.clean < window) return undefined;
    this.clean = 0;
    this.probing = false; // the raised pace held a whole window
    this.rateHeld = this.rateValue;
    this.concurrencySettled = true;
    this.rateSettled = true;
    let change: PaceChange | undefined;
    if (this.rateValue !== undefined && this.heldByRate) change = this.raiseRate(now);
    else if (this.heldByLimit && this.limitValue < this.ceilingValue)
      change = this.raiseConcurrency(now);
    this.heldByLimit = false;
    this.heldByRate = false;
    return change;
  }

  /**
   * The target refused attempt `seq` without saying how long to wait. `previous`: the number of
   * the same case's last refused attempt, if it was refused before. Returns the change, or
   * `own` when the refusal is the case's own, not news about the target: its case was refused
   * before under this same pace (no decrease since), and other cases would show a limit.
   */
  refused(
    seq: number,
    inFlight: number,
    signal: PaceSignal,
    now: number,
    previous?: number,
  ): PaceChange | 'own' | undefined {
    // Refused before under this pace, or under the one its own refusal lowered: the lower pace
    // did not help it.
    if (previous !== undefined && (previous > this.decreasedAt || previous === this.decreasedBy))
      return 'own';
    const fresh = seq > this.decreasedAt;
    // Every refusal is evidence that the target admitted fewer than we had in flight.
    this.refusedInFlight = Math.min(this.refusedInFlight, inFlight);
    if (fresh && !this.congested(seq)) return undefined;
    // Once the target was found to limit the rate (the rate is adapted), a bare 429 is the
    // rate's, at any concurrency: blaming the concurrency pinned it at the floor (a refused
    // probe to 2 doubles the next probe's wait), and at concurrency 1 a target slower than a
    // token period caps the run below its rate (1.47 x the ideal at 600/min on the VirtualClock
    // with latencies of 30-230 ms, as a loaded machine sees them; 4 x in bench/pace.mjs at a
    // load of 22). The concurrency still rises over clean windows the rate did not hold back.
    // One sent before the last decrease is news that decrease already took.
    if (signal === 'rate_limited' && this.rateValue !== undefined)
      return fresh ? this.lowerRate(seq, now) : undefined;
    if (this.limitValue > this.floor || !fresh) {
      return this.lowerConcurrency(seq, inFlight, fresh, signal, now);
    }
    // At the floor, and still refused: the target limits the rate, not the concurrency. A 503
    // says "busy", which the floor already answers.
    return signal === 'rate_limited' ? this.lowerRate(seq, now) : undefined;
  }

  /** `setConcurrency`: a new ceiling. An unlowered limit follows it; a lowered one stays under. */
  setCeiling(n: number, now: number): PaceChange | undefined {
    const from = this.limitValue;
    const to = from === this.ceilingValue ? n : Math.min(from, n);
    this.ceilingValue = n;
    if (this.floorValue > n) this.floorValue = n;
    if (to === from) return undefined;
    this.clean = 0;
    this.changedAt = this.seq;
    return this.change(now, from, to, this.rateValue, 'set', `concurrency ${from} → ${to}: set`);
  }

  /**
   * Is refusal `seq` (sent under the current pace) a sign the pace is too high? Yes right after
   * a raise (a refused probe), or when refusals are at least a quarter of the answers sent under
   * this pace (counted over at least 16). A lone refusal among clean answers is more likely the
   * case's own (a random fault, a case the target always refuses) than the target's limit: a
   * target over its limit refuses about every request above it, a quarter and more.
   */
  private congested(seq: number): boolean {
    // Sent before the last raise, under a lower pace: no news about the current one.
    if (seq <= this.changedAt) return false;
    this.outcomes.add(true);
    if (this.probing) return true;
    // At the floor the refusals say the rate is too high: by how much is their share, so a
    // smaller one counts (else the run would stay a quarter above the target's rate).
    // Once the rate is adapted, refusals are the rate's at any concurrency (see `refused`).
    const share =
      this.limitValue > this.floor && this.rateValue === undefined ? CONCURRENCY_SHARE : RATE_SHARE;
    return this.outcomes.refusals * share >= Math.max(this.outcomes.answers, MIN_OUTCOMES);
  }

  private lowerConcurrency(
    seq: number,
    inFlight: number,
    fresh: boolean,
    signal: PaceSignal,
    now: number,
  ): PaceChange | undefined {
    const from = this.limitValue;
    // The target refused while `inFlight` others of ours were there: it admits no more than that.
    let to = Math.min(from, Math.max(this.floor, Math.min(inFlight, this.refusedInFlight)));
    if (fresh) {
      const cut = Math.min(from - 1, Math.floor(from * this.backoff('concurrency')));
      to = Math.min(to, Math.max(this.floor, cut));
      this.decreasedAt = this.seq;
      this.decreasedBy = seq;
    }
    this.concurrencyProbe.refused(inFlight + 1, fresh);
    if (to === from) return undefined;
    this.clean = 0;
    this.changedAt = this.seq;
    const why =
      signal === 'busy' ? 'target answered 503 (busy)' : 'target answered 429 without Retry-After';
    return this.change(
      now,
      from,
      to,
      this.rateValue,
      signal,
      `concurrency ${from} → ${to}: ${why}`,
    );
  }

  /**
   * A fresh refusal at the concurrency floor. Once the rate is limited, it is the level refused;
   * the first time, what we sent and what the target admitted at this concurrency (10 s at most;
   * since the run began if too little was admitted yet) say where the target's rate is: the
   * lower of the two.
   */
  private lowerRate(seq: number, now: number): PaceChange | undefined {
    const from = this.rateValue;
    const level = Math.min(from ?? this.measuredLevel(now), this.rateCeiling);
    if (!Number.isFinite(level)) return undefined;
    let to: number;
    if (from !== undefined && this.probing && this.rateHeld !== undefined && this.rateHeld < from) {
      // A refused probe: back to the level that held a whole clean window, not 0.9 x the
      // probe (a 0.9 cut below a level that held, then a climb back, cost ~5 % of the run).
      to = this.rateHeld;
      this.rateSettled = true;
    } else {
      // The target admitted `admitted` a minute over the last 10 s: its limit is no lower. The
      // first time, what it admitted at this concurrency is that evidence too: cutting 10 %
      // below it began the run at 355/min against 600 under load.
      const admitted = Math.max(
        this.admittedPerMinute(now),
        from === undefined ? this.admittedHere(now) : 0,
      );
      to = Math.max(
        MIN_RATE_PER_MINUTE,
        Math.min(
          Math.max(level * BACKOFF, from === undefined ? admitted : 0),
          Math.max(level * this.backoff('rate'), admitted),
        ),
      );
    }
    this.rateHeld = undefined;
    // The first level was measured while refused, not probed (under load, or with a target
    // slow to start, it comes out low): stepping onto it again does not wait.
    this.rateProbe.refused(level, from !== undefined, this.probing);
    this.rateStep = level * RATE_STEP;
    this.rateStepScale = 1;
    this.decreasedAt = this.seq;
    this.decreasedBy = seq;
    this.clean = 0;
    this.changedAt = this.seq;
    this.setRate(to);
    return this.change(
      now,
      this.limitValue,
      this.limitValue,
      from,
      'rate_limited',
      `rate ${perMinuteText(from)} → ${perMinuteText(to)}: target answered 429 without Retry-After at concurrency ${this.limitValue}`,
    );
  }

  /**
   * The rate the target admitted over the last 10 s, per minute: 0 with fewer than 8
   * admissions to measure it on.
   */
  private admittedPerMinute(now: number): number {
    const since = now - RATE_WINDOW_MS;
    if (this.admits.count(now, since) < RATE_WINDOW) return 0;
    return this.admits.perMinute(now, since) ?? 0;
  }

  /** The rate admitted at the current concurrency, per minute: 0 with fewer than 2 admissions. */
  private admittedHere(now: number): number {
    const since = this.limitSince ?? now;
    if (this.admits.count(now, since) < 2) return 0;
    return this.admits.perMinute(now, since) ?? 0;
  }

  /** The lower of the rates sent and admitted (per minute), measured as `lowerRate` says. */
  private measuredLevel(now: number): number {
    const none = Number.POSITIVE_INFINITY;
    const since = this.limitSince ?? now;
    const admittedHere = this.admits.count(now, since);
    const from = admittedHere >= 2 ? since : (this.firstStart ?? now);
    return Math.min(
      this.starts.perMinute(now, from) ?? none,
      this.admits.perMinute(now, from) ?? none,
    );
  }

  /** The decrease ratio of a fresh refusal (and, from now on, the last decrease). */
  private backoff(loop: 'concurrency' | 'rate'): number {
    if (loop === 'rate') {
      const ratio = this.rateSettled ? BACKOFF : RATE_STEEP_BACKOFF;
      this.rateSettled = false;
      return ratio;
    }
    const ratio = this.concurrencySettled ? BACKOFF : STEEP_BACKOFF;
    this.concurrencySettled = false;
    return ratio;
  }

  private raiseConcurrency(now: number): PaceChange | undefined {
    const from = this.limitValue;
    if (!this.concurrencyProbe.mayStep(from, 1)) return undefined;
    this.changedAt = this.seq;
    return this.change(
      now,
      from,
      from + 1,
      this.rateValue,
      'recovered',
      `concurrency ${from} → ${from + 1}: ${from} answer${from === 1 ? '' : 's'} in a row without a refusal`,
    );
  }

  /**
   * A clean window with the rate holding the run back: a step of 5 % of the level last refused
   * (or of the rate, if higher), doubled after every raise in a row while the next level stays
   * clear of the refused one (which only the probe's back-off may step onto). A first level measured low (under load the
   * target's limiter refuses below its rate too) is left within a few windows, not after one
   * 5 % step per window: at 355/min, 15 s to reach 560.
   */
  private raiseRate(now: number): PaceChange | undefined {
    const from = this.rateValue!;
    const base = this.rateStep;
    if (!this.rateProbe.mayStep(from, base)) return undefined;
    // Past the level refused (mayStep forgot it then), the step grows with the rate itself.
    const scaled = Math.max(base, from * RATE_STEP) * this.rateStepScale;
    const clear = from + scaled <= this.rateProbe.refusedAt - base / 2;
    const step = clear ? scaled : base;
    this.rateStepScale = clear ? Math.min(MAX_RATE_STEP_SCALE, this.rateStepScale * 2) : 1;
    const next = from + step;
    this.changedAt = this.seq;
    this.setRate(next >= this.rateCeiling ? undefined : next);
    const to = this.rateValue;
    return this.change(
      now,
      this.limitValue,
      this.limitValue,
      from,
      'recovered',
      `rate ${perMinuteText(from)} → ${perMinuteText(to)}: answers without a refusal`,
    );
  }

  private setRate(perMinute: number | undefined): void {
    this.rateValue = perMinute;
    if (perMinute === undefined) {
      this.bucketValue = undefined;
      return;
    }
    if (this.lowestRate === undefined || perMinute < this.lowestRate) this.lowestRate = perMinute;
    if (this.bucketValue === undefined) {
      // Created empty, as a cooled bucket restarts: the first start after the refusal is paced.
      this.bucketValue = new RateLimiter({ perMinute, burst: 1 }, { clock: this.clock });
      this.bucketValue.forceTake(1);
    } else this.bucketValue.setRate(perMinute);
  }

  private change(
    at: number,
    from: number,
    to: number,
    rateFrom: number | undefined,
    reason: PaceReason,
    message: string,
  ): PaceChange {
    if (to !== this.limitValue) this.limitSince = at;
    this.probing = reason === 'recovered';
    this.outcomes.clear();
    this.refusedInFlight = Number.POSITIVE_INFINITY;
    this.limitValue = to;
    if (to < this.lowest) this.lowest = to;
    this.changes++;
    if (this.firstDecrease === undefined && (reason === 'rate_limited' || reason === 'busy'))
      this.firstDecrease = message;
    return {
      at,
      concurrency: { from, to },
      ratePerMinute: { from: rateFrom, to: this.rateValue },
      reason,
      message,
    };
  }
}

/** The floor, checked: an integer from 1 to the ceiling. */
function validateMinConcurrency(value: unknown, ceiling: number): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > ceiling)
    throw new InvalidOptionError(
      'adaptive.minConcurrency',
      value,
      `an integer from 1 to the concurrency (${ceiling})`,
    );
  return value;
}
