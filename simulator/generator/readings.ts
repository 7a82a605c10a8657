/**
 * Readings of the public contract, generated: aligned intervals, integer mWh, quality `actual`.
 * Interval starts are aligned to the interval length on the UTC epoch, as the contract requires.
 */
import type { Reading } from '../../common/reading.js';
import type { MeterSpec } from './fleet.js';
import { intervalEnergy } from './meter-model.js';
import { intervalPowerFactor, reactiveImportMvarh } from './reactive.js';

/** The first interval start >= `fromMs` aligned to `intervalSeconds`. */
export function alignUp(fromMs: number, intervalSeconds: number): number {
  const intervalMs = intervalSeconds * 1000;
  return Math.ceil(fromMs / intervalMs) * intervalMs;
}

/** The last interval start <= `atMs` aligned to `intervalSeconds`. */
export function alignDown(atMs: number, intervalSeconds: number): number {
  const intervalMs = intervalSeconds * 1000;
  return Math.floor(atMs / intervalMs) * intervalMs;
}

/** Aligned interval starts in the half-open window [fromMs, toMs), epoch ms. */
export function* intervalStarts(fromMs: number, toMs: number, intervalSeconds: number): Generator<number> {
  const intervalMs = intervalSeconds * 1000;
  for (let start = alignUp(fromMs, intervalSeconds); start < toMs; start += intervalMs) yield start;
}

/** Number of aligned interval starts in [fromMs, toMs). */
export function countIntervals(fromMs: number, toMs: number, intervalSeconds: number): number {
  const first = alignUp(fromMs, intervalSeconds);
  return first >= toMs ? 0 : Math.ceil((toMs - first) / (intervalSeconds * 1000));
}

/**
 * The reading of `meter` for the interval starting at `intervalStart` (random access, no state). A meter
 * with a power factor also carries reactive import (whole varh) and a reactive export of 0.
 */
export function readingAt(meter: MeterSpec, intervalStart: number): Reading {
  const { importMwh, exportMwh } = intervalEnergy(meter, intervalStart);
  const reading: Reading = {
    meterId: meter.id,
    intervalStart,
    intervalSeconds: meter.intervalSeconds,
    importMwh,
    exportMwh,
    quality: 'actual',
  };
  if (meter.powerFactor !== null) {
    const pf = powerFactorAt(meter, intervalStart, importMwh);
    reading.reactiveImportMvarh = reactiveImportMvarh(importMwh, pf);
    reading.reactiveExportMvarh = 0;
  }
  return reading;
}

/** The power factor of `meter` (one with `powerFactor`) in an interval with `importMwh` of active import. */
export function powerFactorAt(meter: MeterSpec, intervalStart: number, importMwh: number): number {
  const maxMwh = meter.maxPowerKw * meter.intervalSeconds * (1_000 / 3.6);
  return intervalPowerFactor(meter.powerFactor!, meter.key, intervalStart, importMwh / maxMwh);
}

/** The readings of one meter for every interval starting in [fromMs, toMs), in time order. */
export function* readingsFor(meter: MeterSpec, fromMs: number, toMs: number): Generator<Reading> {
  for (const start of intervalStarts(fromMs, toMs, meter.intervalSeconds)) yield readingAt(meter, start);
}

/**
 * The readings of several meters (sharing one interval length) for [fromMs, toMs), interval by interval:
 * every meter's reading of one interval before any of the next, the order a concentrator collects them.
 */
export function* fleetReadings(meters: readonly MeterSpec[], fromMs: number, toMs: number): Generator<Reading> {
  if (meters.length === 0) return;
  for (const start of intervalStarts(fromMs, toMs, meters[0].intervalSeconds)) {
    for (const meter of meters) yield readingAt(meter, start);
  }
}
