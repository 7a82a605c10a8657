/**
 * Meter intervals as the rating core takes them, their validation, and the window's coverage.
 *
 * Energy is integer milliwatt-hours (mWh) as stored (a reading's Wh has at most 3 decimals), accepted as a
 * number, bigint or decimal string of an integer. Inside the window it is carried exactly: as a number when
 * it is a safe integer (below 2^53, every realistic reading), as a bigint otherwise; sums are formed with
 * numbers only while they provably stay exact and with bigints otherwise (see `mwh.ts`), so none ever drifts.
 */
import { RatingError } from './errors.js';
import type { Mwh } from './mwh.js';

export type Quality = 'actual' | 'estimated';

/** One stored interval reading of a meter. */
export interface MeterInterval {
  /** Start of the interval, epoch milliseconds UTC. */
  intervalStart: number;
  /** Length of the interval in seconds (300, 600, 900, 1800 or 3600). */
  intervalSeconds: number;
  /** Energy imported from the grid in the interval, integer milliwatt-hours. */
  importMwh: number | bigint | string;
  /** Energy exported to the grid in the interval, integer milliwatt-hours. */
  exportMwh: number | bigint | string;
  /**
   * Reactive energy imported (lagging, OBIS 3.8.0, Q+) in the interval, integer milli-var-hours; absent or
   * null: not measured (distinct from 0).
   */
  reactiveImportMvarh?: number | bigint | string | null;
  /** Reactive energy exported (OBIS 4.8.0), integer milli-var-hours; absent or null: not measured. */
  reactiveExportMvarh?: number | bigint | string | null;
  quality: Quality;
}

/** A validated interval inside the billing window. */
export interface WindowInterval {
  start: number;
  /** start + intervalSeconds, epoch ms */
  end: number;
  seconds: number;
  /** integer mWh >= 0: a number when a safe integer, else a bigint (see {@link Mwh}) */
  importMwh: Mwh;
  exportMwh: Mwh;
  /** integer mvarh >= 0 as {@link Mwh}, or null when the meter did not measure it */
  reactiveImportMvarh: Mwh | null;
  reactiveExportMvarh: Mwh | null;
  quality: Quality;
}

/** Half-open span of instants [from, to), epoch milliseconds UTC. */
export interface TimeSpan {
  from: number;
  to: number;
}

export interface Coverage {
  /** Meter intervals whose start lies in the window: starts aligned to the interval length from the epoch. */
  expectedIntervals: number;
  actualIntervals: number;
  estimatedIntervals: number;
  /** expected - actual - estimated, never negative */
  missingIntervals: number;
}

export const METER_INTERVAL_SECONDS = [300, 600, 900, 1800, 3600] as const;

/**
 * The intervals whose start lies in `window`, validated and sorted by start. Throws RatingError for a
 * malformed interval, an interval length other than the meter's, or overlapping intervals (duplicates
 * included): rating never guesses which of two readings counts.
 */
export function intervalsInWindow(
  intervals: MeterInterval[],
  window: TimeSpan,
  meterIntervalSeconds: number,
): WindowInterval[] {
  const problems: string[] = [];
  const inWindow: WindowInterval[] = [];
  for (const interval of intervals) {
    const { intervalStart: start, intervalSeconds: seconds, quality } = interval;
    if (!Number.isSafeInteger(start)) {
      problems.push(`intervalStart ${String(start)} is not an epoch millisecond integer`);
      continue;
    }
    if (start < window.from || start >= window.to) continue;
    const importMwh = toMwh(interval.importMwh);
    const exportMwh = toMwh(interval.exportMwh);
    const reactiveImportMvarh = interval.reactiveImportMvarh == null ? null : toMwh(interval.reactiveImportMvarh);
    const reactiveExportMvarh = interval.reactiveExportMvarh == null ? null : toMwh(interval.reactiveExportMvarh);
    let problem: string;
    if (seconds !== meterIntervalSeconds)
      problem = `intervalSeconds ${seconds}, meter interval ${meterIntervalSeconds}`;
    else if (importMwh === null || exportMwh === null) problem = 'importMwh and exportMwh must be integers >= 0';
    else if ((reactiveImportMvarh === null && interval.reactiveImportMvarh != null) || (reactiveExportMvarh === null && interval.reactiveExportMvarh != null))
      problem = 'reactiveImportMvarh and reactiveExportMvarh must be integers >= 0 when present';
    else if (quality !== 'actual' && quality !== 'estimated') problem = 'quality must be actual or estimated';
    else {
      inWindow.push({ start, end: start + seconds * 1000, seconds, importMwh, exportMwh, reactiveImportMvarh, reactiveExportMvarh, quality });
      continue;
    }
    problems.push(`${iso(start)}: ${problem}`);
  }
  if (problems.length) throw new RatingError('invalid_interval', 'invalid meter intervals', problems);
  inWindow.sort((a, b) => a.start - b.start);
  const overlaps: string[] = [];
  for (let i = 1; i < inWindow.length; i++) {
    const [previous, interval] = [inWindow[i - 1], inWindow[i]];
    if (interval.start < previous.end)
      overlaps.push(`${iso(interval.start)} overlaps the interval starting ${iso(previous.start)}`);
  }
  if (overlaps.length) throw new RatingError('overlapping_intervals', 'meter intervals overlap', overlaps);
  return inWindow;
}

/** Expected, actual, estimated and missing interval counts of a window. */
export function coverageOf(intervals: WindowInterval[], window: TimeSpan, meterIntervalSeconds: number): Coverage {
  const length = meterIntervalSeconds * 1000;
  const expectedIntervals = Math.ceil(window.to / length) - Math.ceil(window.from / length);
  let actualIntervals = 0;
  for (const interval of intervals) if (interval.quality === 'actual') actualIntervals++;
  const estimatedIntervals = intervals.length - actualIntervals;
  return {
    expectedIntervals,
    actualIntervals,
    estimatedIntervals,
    missingIntervals: Math.max(0, expectedIntervals - actualIntervals - estimatedIntervals),
  };
}

function iso(instant: number): string {
  return new Date(instant).toISOString();
}

const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);
/** Digit strings this long are below 10^15 < 2^53: Number() reads them exactly. */
const SAFE_DIGITS = 15;

/** An integer >= 0 as a number when it is a safe integer, else as a bigint; null when not an integer >= 0. */
function toMwh(value: number | bigint | string): Mwh | null {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) return null;
    return value + 0; // never -0
  }
  if (typeof value === 'bigint') {
    if (value < 0n) return null;
    return value <= MAX_SAFE_BIGINT ? Number(value) : value;
  }
  if (!/^\d+$/.test(value)) return null;
  if (value.length <= SAFE_DIGITS) return Number(value);
  const mwh = BigInt(value);
  return mwh <= MAX_SAFE_BIGINT ? Number(mwh) : mwh;
}
