/**
 * Validation of a meter's cycle at close (VEE "V"): findings become warnings on the bill; they never block
 * it and never change an amount. Pure.
 *
 * - `spike`: an actual interval whose import exceeds SPIKE_FACTOR x the median import of the cycle's
 *   actual intervals with import > 0 (judged only with at least MIN_INTERVALS_FOR_MEDIAN such intervals).
 * - `zero_run`: at least ZERO_RUN_MS of consecutive actual intervals with zero import and zero export (a
 *   stopped meter or a broken register more often than an empty building).
 * - `unestimated_gap`: missing intervals the estimation rules could not fill (no neighbours, no history).
 */
import { mwhToKwhString } from '../../common/reading.js';
import { isoUtc } from '../../common/time.js';
import type { MeterInterval } from '../../rating/index.js';
import { Dec } from '../../rating/money.js';

export const SPIKE_FACTOR = 10;
export const MIN_INTERVALS_FOR_MEDIAN = 24;
export const ZERO_RUN_MS = 24 * 3_600_000;
/** Warnings listed per meter and code; the rest are counted. */
export const MAX_WARNINGS_PER_CODE = 20;

export type WarningCode = 'spike' | 'zero_run' | 'unestimated_gap';

export interface ValidationWarning {
  code: WarningCode;
  /** first affected interval start (UTC) */
  from: string;
  /** end of the last affected interval (UTC) */
  to: string;
  message: string;
}

export interface ValidationResult {
  warnings: ValidationWarning[];
  /** warnings found beyond MAX_WARNINGS_PER_CODE, by code */
  omitted: Partial<Record<WarningCode, number>>;
}

/** `intervals`: the cycle's stored readings (actual and estimated), any order; `unestimated`: starts left missing. */
export function validateCycle(intervals: MeterInterval[], intervalSeconds: number, unestimated: number[]): ValidationResult {
  const len = intervalSeconds * 1000;
  const sorted = isSorted(intervals) ? intervals : [...intervals].sort((a, b) => a.intervalStart - b.intervalStart);
  const found: ValidationWarning[] = [...spikes(sorted, len), ...zeroRuns(sorted, len), ...gapsOf(unestimated, len)];
  const warnings: ValidationWarning[] = [];
  const omitted: Partial<Record<WarningCode, number>> = {};
  const perCode: Partial<Record<WarningCode, number>> = {};
  for (const w of found) {
    const n = (perCode[w.code] = (perCode[w.code] ?? 0) + 1);
    if (n <= MAX_WARNINGS_PER_CODE) warnings.push(w);
    else omitted[w.code] = (omitted[w.code] ?? 0) + 1;
  }
  return { warnings, omitted };
}

function isSorted(intervals: MeterInterval[]): boolean {
  for (let k = 1; k < intervals.length; k++) if (intervals[k].intervalStart < intervals[k - 1].intervalStart) return false;
  return true;
}

function spikes(sorted: MeterInterval[], len: number): ValidationWarning[] {
  const positive = new Float64Array(sorted.length);
  let count = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  for (const r of sorted) {
    const mwh = Number(r.importMwh);
    if (r.quality !== 'actual' || mwh <= 0) continue;
    positive[count++] = mwh;
    if (mwh < min) min = mwh;
    if (mwh > max) max = mwh;
  }
  if (count < MIN_INTERVALS_FOR_MEDIAN) return [];
  // The median is at least the smallest value: no interval can exceed 10 x the median when max <= 10 x min.
  if (max <= SPIKE_FACTOR * min) return [];
  const values = positive.subarray(0, count);
  const mid = count >> 1;
  // Median of integers, kept exact as a doubled value.
  const twiceMedian = count % 2 ? 2 * nthSmallest(values, mid) : nthSmallest(values, mid - 1) + nthSmallest(values, mid);
  const threshold = SPIKE_FACTOR * twiceMedian;
  return sorted
    .filter((r) => r.quality === 'actual' && 2 * Number(r.importMwh) > threshold)
    .map((r) => ({
      code: 'spike' as const,
      from: isoUtc(r.intervalStart),
      to: isoUtc(r.intervalStart + len),
      message: `import ${mwhToKwhString(r.importMwh)} kWh is more than ${SPIKE_FACTOR} x the cycle's median interval import (${halfMwhToKwh(twiceMedian)} kWh)`,
    }));
}

/** The k-th smallest value (0-based), by quickselect; reorders `values`. */
function nthSmallest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i] = values[j];
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k];
  }
  return values[k];
}

function zeroRuns(sorted: MeterInterval[], len: number): ValidationWarning[] {
  const warnings: ValidationWarning[] = [];
  let runStart: number | null = null;
  let runEnd = 0;
  const close = () => {
    if (runStart !== null && runEnd - runStart >= ZERO_RUN_MS) {
      warnings.push({
        code: 'zero_run',
        from: isoUtc(runStart),
        to: isoUtc(runEnd),
        message: `${(runEnd - runStart) / 3_600_000} hours of consecutive actual intervals with zero import and zero export`,
      });
    }
    runStart = null;
  };
  for (const r of sorted) {
    const zero = r.quality === 'actual' && Number(r.importMwh) === 0 && Number(r.exportMwh) === 0;
    if (zero && runStart !== null && r.intervalStart === runEnd) runEnd += len;
    else {
      close();
      if (zero) {
        runStart = r.intervalStart;
        runEnd = r.intervalStart + len;
      }
    }
  }
  close();
  return warnings;
}

function gapsOf(unestimated: number[], len: number): ValidationWarning[] {
  const starts = [...unestimated].sort((a, b) => a - b);
  const warnings: ValidationWarning[] = [];
  for (let i = 0; i < starts.length; ) {
    let j = i;
    while (j + 1 < starts.length && starts[j + 1] === starts[j] + len) j++;
    const count = j - i + 1;
    warnings.push({
      code: 'unestimated_gap',
      from: isoUtc(starts[i]),
      to: isoUtc(starts[j] + len),
      message: `${count} missing interval${count === 1 ? '' : 's'} without neighbours or same-weekday history to estimate from`,
    });
    i = j + 1;
  }
  return warnings;
}

/** Exact kWh of half a number of milliwatt-hours. */
function halfMwhToKwh(twiceMwh: number): string {
  return new Dec(twiceMwh).div(2_000_000).toFixed();
}
