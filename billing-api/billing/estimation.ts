/**
 * Estimation of the intervals a meter did not report in a billing cycle (VEE "E"), done once, at close.
 * Pure: the caller loads the readings and stores the estimates.
 *
 * - A gap is a maximal run of missing intervals on the meter's interval grid (aligned in the meter's local
 *   time, as ingestion requires).
 * - Short gap (at most SHORT_GAP_MS of missing time, with a stored reading right before and right after it,
 *   even outside the cycle): linear interpolation between those two readings, import and export each,
 *   rounded half-up to the milliwatt-hour (Green Button quality 9).
 * - Long gap (or a short one without both neighbours): same-weekday profile — the mean of the ACTUAL
 *   readings at the same local wall-clock time 1, 2, 3 and 4 weeks earlier (7 local days, so DST weeks
 *   keep the wall time), rounded half-up (quality 8, reference day). An interval with none of those stays
 *   missing and is reported as an unestimated gap.
 * Estimates never overlap a stored reading, and only intervals inside the cycle are estimated.
 */
import { IANAZone } from 'luxon';
import type { MeterInterval } from '../../rating/index.js';
import type { BillingCycle } from './cycles.js';

export const SHORT_GAP_MS = 2 * 3_600_000;
export const PROFILE_WEEKS = 4;
const WEEK_MS = 7 * 86_400_000;

export type EstimationMethod = 'linear' | 'profile';

export interface Estimate {
  intervalStart: number;
  importMwh: number;
  exportMwh: number;
  method: EstimationMethod;
}

export interface Gap {
  /** first missing interval start inside the cycle */
  from: number;
  /** end of the last missing interval inside the cycle */
  to: number;
  intervals: number;
  method: EstimationMethod;
}

export interface EstimationInput {
  cycle: BillingCycle;
  intervalSeconds: number;
  /** the meter's IANA zone: grid alignment and the profile's wall-clock time */
  zone: string;
  /**
   * Every stored reading of the meter from `cycle.from - neighbourMarginMs(intervalSeconds)` to
   * `cycle.to + neighbourMarginMs(intervalSeconds)`, any order.
   */
  readings: MeterInterval[];
  /**
   * Actual readings of [cycle.from - PROFILE_WEEKS weeks - 1 day, cycle.to), by intervalStart; needed only
   * when `gaps()` reports a profile gap. Actual readings inside the cycle are taken from `readings` too.
   */
  history?: Map<number, { importMwh: number; exportMwh: number }>;
}

export interface EstimationResult {
  gaps: Gap[];
  estimates: Estimate[];
  /** starts of the intervals of the cycle that remain missing */
  unestimated: number[];
}

/** How far outside the cycle the caller must load readings so that boundary gaps are judged correctly. */
export function neighbourMarginMs(intervalSeconds: number): number {
  return SHORT_GAP_MS + intervalSeconds * 1000;
}

/** The history window a profile estimate may read: [from, to). */
export function profileHistoryWindow(cycle: BillingCycle): BillingCycle {
  return { from: cycle.from - PROFILE_WEEKS * WEEK_MS - 86_400_000, to: cycle.to };
}

interface Run {
  /** first and last missing slot (grid instants) */
  first: number;
  last: number;
  before: MeterInterval | undefined;
  after: MeterInterval | undefined;
}

/** The gaps of the cycle and how each will be estimated (cheap: no history needed). */
export function findGaps(input: Omit<EstimationInput, 'history'>): Gap[] {
  return runsOf(input).map((run) => gapOf(run, input));
}

/** Estimates every missing interval of the cycle that the rules allow. */
export function estimateGaps(input: EstimationInput): EstimationResult {
  const len = input.intervalSeconds * 1000;
  const gaps: Gap[] = [];
  const estimates: Estimate[] = [];
  const unestimated: number[] = [];
  let profile: ProfileSource | null = null;
  for (const run of runsOf(input)) {
    const gap = gapOf(run, input);
    gaps.push(gap);
    if (gap.method === 'linear') {
      const k = (run.last - run.first) / len + 1;
      for (let i = 1; i <= k; i++) {
        const start = run.first + (i - 1) * len;
        if (start < input.cycle.from || start >= input.cycle.to) continue;
        estimates.push({
          intervalStart: start,
          importMwh: interpolate(Number(run.before!.importMwh), Number(run.after!.importMwh), i, k),
          exportMwh: interpolate(Number(run.before!.exportMwh), Number(run.after!.exportMwh), i, k),
          method: 'linear',
        });
      }
      continue;
    }
    profile ??= new ProfileSource(input);
    for (let start = gap.from; start < gap.to; start += len) {
      const value = profile.estimate(start);
      if (value) estimates.push({ intervalStart: start, ...value, method: 'profile' });
      else unestimated.push(start);
    }
  }
  return { gaps, estimates, unestimated };
}

/** Value i of k evenly spaced between a (before) and b (after): (a(k+1-i) + b i) / (k+1), half-up. */
export function interpolate(a: number, b: number, i: number, k: number): number {
  return roundHalfUpDiv(a * (k + 1 - i) + b * i, k + 1);
}

/** Non-negative integer division rounded half-up. */
function roundHalfUpDiv(numerator: number, denominator: number): number {
  return Math.floor((2 * numerator + denominator) / (2 * denominator));
}

function gapOf(run: Run, input: Omit<EstimationInput, 'history'>): Gap {
  const len = input.intervalSeconds * 1000;
  const from = Math.max(run.first, firstSlotAtOrAfter(input.cycle.from, run.first, len));
  const to = Math.min(run.last + len, input.cycle.to);
  const short = run.last + len - run.first <= SHORT_GAP_MS && run.before !== undefined && run.after !== undefined;
  return { from, to, intervals: Math.round((to - from) / len), method: short ? 'linear' : 'profile' };
}

function firstSlotAtOrAfter(instant: number, gridInstant: number, len: number): number {
  return instant + ((((gridInstant - instant) % len) + len) % len);
}

/** Maximal runs of missing grid slots that touch the cycle, with their neighbouring readings. */
function runsOf(input: Omit<EstimationInput, 'history'>): Run[] {
  const { cycle } = input;
  const len = input.intervalSeconds * 1000;
  const margin = neighbourMarginMs(input.intervalSeconds);
  const phase = gridPhase(input, len);
  const lo = firstSlotAtOrAfter(cycle.from - margin, phase, len);
  const hi = cycle.to + margin;
  const rs = isSorted(input.readings) ? input.readings : [...input.readings].sort((a, b) => a.intervalStart - b.intervalStart);
  if (cycleComplete(rs, firstSlotAtOrAfter(cycle.from, phase, len), cycle.to, len)) return [];

  const runs: Run[] = [];
  let open: { first: number; before: MeterInterval | undefined } | null = null;
  let previous: MeterInterval | undefined;
  let lastSlot = lo;
  let j = 0;
  for (let t = lo; t < hi; t += len) {
    lastSlot = t;
    while (j < rs.length && rs[j].intervalStart < t) j++;
    const present = j < rs.length && rs[j].intervalStart === t ? rs[j] : undefined;
    // A reading off the grid (a zone whose offset changed by less than the interval) overlaps the slots
    // around it: never estimate those.
    const blocked =
      !present && ((j > 0 && rs[j - 1].intervalStart > t - len) || (j < rs.length && rs[j].intervalStart < t + len));
    if (!present && !blocked) {
      open ??= { first: t, before: previous };
    } else if (open) {
      runs.push({ first: open.first, last: t - len, before: open.before, after: present });
      open = null;
    }
    previous = present;
  }
  if (open) runs.push({ first: open.first, last: lastSlot, before: open.before, after: undefined });
  // Only runs with at least one slot inside the cycle matter; a run reaching the edge of the loaded range
  // has no neighbour there, so it is judged long (it is longer than SHORT_GAP_MS by construction).
  return runs.filter((run) => run.last >= cycle.from && run.first < cycle.to);
}

function isSorted(readings: MeterInterval[]): boolean {
  for (let k = 1; k < readings.length; k++) if (readings[k].intervalStart <= readings[k - 1].intervalStart) return false;
  return true;
}

/** Whether the sorted readings hold every grid slot first, first + len, ... before `end` (the common case). */
function cycleComplete(rs: MeterInterval[], first: number, end: number, len: number): boolean {
  let j = 0;
  while (j < rs.length && rs[j].intervalStart < first) j++;
  for (let t = first; t < end; t += len, j++) if (j >= rs.length || rs[j].intervalStart !== t) return false;
  return true;
}

/** The remainder of interval starts modulo the interval length: from a stored reading, else the zone. */
function gridPhase(input: Omit<EstimationInput, 'history'>, len: number): number {
  const inCycle = input.readings.find((r) => r.intervalStart >= input.cycle.from && r.intervalStart < input.cycle.to);
  const reference = inCycle ?? input.readings[0];
  if (reference) return ((reference.intervalStart % len) + len) % len;
  // Aligned in local time: start + offset is a multiple of the interval length.
  const offsetMs = IANAZone.create(input.zone).offset(input.cycle.from) * 60_000;
  return (((-offsetMs % len) + len) % len);
}

class ProfileSource {
  private readonly zone: IANAZone;
  private readonly actual = new Map<number, { importMwh: number; exportMwh: number }>();

  constructor(input: EstimationInput) {
    this.zone = IANAZone.create(input.zone);
    for (const [start, value] of input.history ?? []) this.actual.set(start, value);
    for (const r of input.readings) {
      if (r.quality === 'actual') this.actual.set(r.intervalStart, { importMwh: Number(r.importMwh), exportMwh: Number(r.exportMwh) });
    }
  }

  private readonly offsets = new Map<number, number>();

  /** sameWallTimeWeeksBefore with the zone's offsets memoized per quarter hour (every zone changes on one). */
  private weeksBefore(instant: number, weeks: number): number {
    const candidate = instant - weeks * WEEK_MS;
    return candidate + (this.offsetAt(instant) - this.offsetAt(candidate)) * 60_000;
  }

  private offsetAt(instant: number): number {
    const quarter = Math.floor(instant / 900_000);
    let offset = this.offsets.get(quarter);
    if (offset === undefined) this.offsets.set(quarter, (offset = this.zone.offset(instant)));
    return offset;
  }

  estimate(start: number): { importMwh: number; exportMwh: number } | null {
    let count = 0;
    let importSum = 0;
    let exportSum = 0;
    for (let week = 1; week <= PROFILE_WEEKS; week++) {
      const reference = this.actual.get(this.weeksBefore(start, week));
      if (!reference) continue;
      count++;
      importSum += reference.importMwh;
      exportSum += reference.exportMwh;
    }
    if (count === 0) return null;
    return { importMwh: roundHalfUpDiv(importSum, count), exportMwh: roundHalfUpDiv(exportSum, count) };
  }
}

/** The instant with the same local wall-clock time `weeks` x 7 local days earlier. */
export function sameWallTimeWeeksBefore(instant: number, weeks: number, zone: IANAZone | string): number {
  const z = typeof zone === 'string' ? IANAZone.create(zone) : zone;
  const candidate = instant - weeks * WEEK_MS;
  return candidate + (z.offset(instant) - z.offset(candidate)) * 60_000;
}
