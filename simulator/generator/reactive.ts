/**
 * Reactive energy of an inductive load (motors, compressors, fluorescent ballasts): each meter has a power
 * factor of its own, lower at light load, and registers reactive import (lagging, OBIS 3.8.0) of
 * active import x tan(acos(pf)), in whole varh. An inductive site registers no leading reactive energy, so
 * its reactive export (OBIS 4.8.0) is measured and 0.
 */
import { drawGaussian, drawUnit } from './prng.js';

/** Lowest and highest power factor of any interval. */
export const POWER_FACTOR_MIN = 0.85;
export const POWER_FACTOR_MAX = 0.98;
/** A meter's full-load power factor is drawn in [0.88, 0.98): light load lowers it by up to `LIGHT_LOAD_DROP`. */
const FULL_LOAD_MIN = 0.88;
const LIGHT_LOAD_DROP = 0.04;
/** Spread of the interval-to-interval variation of the power factor. */
const POWER_FACTOR_SIGMA = 0.005;
const POWER_FACTOR_TAG = 31;
const POWER_FACTOR_NOISE_TAG = 32;

/** The meter's power factor at full load, a keyed draw on its key alone. */
export function drawFullLoadPowerFactor(key: number): number {
  return FULL_LOAD_MIN + (POWER_FACTOR_MAX - FULL_LOAD_MIN) * drawUnit(key, POWER_FACTOR_TAG);
}

/**
 * The power factor of one interval: the meter's full-load factor, lowered as the load falls below its
 * maximum (`loadShare` 0 to 1), with a small keyed variation, kept within [POWER_FACTOR_MIN, POWER_FACTOR_MAX].
 */
export function intervalPowerFactor(fullLoadPowerFactor: number, key: number, intervalStart: number, loadShare: number): number {
  const share = Math.min(1, Math.max(0, loadShare));
  const noise = POWER_FACTOR_SIGMA * drawGaussian(key, POWER_FACTOR_NOISE_TAG, Math.floor(intervalStart / 60_000));
  const pf = fullLoadPowerFactor - LIGHT_LOAD_DROP * (1 - Math.sqrt(share)) + noise;
  return Math.min(POWER_FACTOR_MAX, Math.max(POWER_FACTOR_MIN, pf));
}

/** Reactive import of an interval, whole varh in milli-var-hours: active import x tan(acos(pf)), rounded to the varh. */
export function reactiveImportMvarh(importMwh: number, powerFactor: number): number {
  const tangent = Math.sqrt(1 - powerFactor * powerFactor) / powerFactor;
  return Math.round((importMwh / 1000) * tangent) * 1000;
}
