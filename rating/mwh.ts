/**
 * Exact integer arithmetic on milliwatt-hours (and milliwatts) without paying for bigints in the rating loop.
 *
 * A window's energies are numbers when they are safe integers (below 2^53; a reading would have to exceed
 * 9 TWh to be otherwise) and bigints otherwise. The loops that sum or scale them run on numbers when every
 * energy of the piece is a number, and check the result: for non-negative integers, a sum or product of
 * numbers is exact as long as the exact result is at most Number.MAX_SAFE_INTEGER, and rounding is monotonic,
 * so an exact result above it always shows as a computed result above it. Whenever a result could have
 * been rounded, the loop is run again with bigints, which is the reference arithmetic: the outcome is the
 * same integer either way, only faster in the common case.
 */

/** Integer mWh (or mW) >= 0: a safe-integer number, or a bigint above Number.MAX_SAFE_INTEGER. */
export type Mwh = number | bigint;

/**
 * Test hook: when true, every loop takes the bigint path (the reference), so tests can compare the two
 * paths on the same inputs. Never set outside tests.
 */
export const exactArithmetic = { forceBigInt: false };

/** Whether every energy of the intervals is a number, so the number path may be tried. */
export function allNumbers(intervals: readonly { importMwh: Mwh; exportMwh: Mwh }[]): boolean {
  if (exactArithmetic.forceBigInt) return false;
  for (let i = 0; i < intervals.length; i++) {
    if (typeof intervals[i].importMwh !== 'number' || typeof intervals[i].exportMwh !== 'number') return false;
  }
  return true;
}

/** Whether every computed value is a safe integer, i.e. every number result was exact (see above). */
export function allExact(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!(values[i] <= Number.MAX_SAFE_INTEGER)) return false;
  return true;
}

export function isZeroMwh(value: Mwh): boolean {
  return value === 0 || value === 0n;
}
