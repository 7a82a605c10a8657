import { describe, expect, it } from 'vitest';
import { readingSchema, toReading, toWireReading } from '../../common/reading.js';
import { createFleet } from './fleet.js';
import { POWER_FACTOR_MAX, POWER_FACTOR_MIN, intervalPowerFactor, reactiveImportMvarh } from './reactive.js';
import { fleetReadings, powerFactorAt, readingAt, readingsFor } from './readings.js';
import { readingJson } from './wire.js';

const DAY = 86_400_000;
const from = Date.parse('2025-07-14T00:00:00Z'); // a Monday: business hours and a quiet night
const to = from + 2 * DAY;

describe('reactive energy', () => {
  it('is on by default for a commercial fleet only, and for any profile when asked', () => {
    expect(createFleet({ meters: 5, seed: 'r', profile: 'commercial' }).meters.every((m) => m.powerFactor !== null)).toBe(true);
    expect(createFleet({ meters: 5, seed: 'r', profile: 'mixed' }).meters.every((m) => m.powerFactor === null)).toBe(true);
    expect(createFleet({ meters: 5, seed: 'r', profile: 'commercial', reactive: false }).meters.every((m) => m.powerFactor === null)).toBe(true);
    const households = createFleet({ meters: 5, seed: 'r', profile: 'residential', reactive: true });
    expect(households.meters.every((m) => m.powerFactor !== null)).toBe(true);
    for (const reading of fleetReadings(households.meters, from, from + DAY)) {
      expect(Number.isInteger(reading.reactiveImportMvarh! / 1000)).toBe(true);
    }
    const without = readingAt(createFleet({ meters: 1, seed: 'r', profile: 'mixed' }).meters[0], from);
    expect('reactiveImportMvarh' in without || 'reactiveExportMvarh' in without).toBe(false);
  });

  it('leaves the active energy and the other parameters of a meter as they are without it', () => {
    const plain = createFleet({ meters: 6, seed: 'same', profile: 'commercial', reactive: false });
    const reactive = createFleet({ meters: 6, seed: 'same', profile: 'commercial' });
    for (let i = 0; i < plain.meters.length; i++) {
      expect({ ...reactive.meters[i], powerFactor: null }).toEqual(plain.meters[i]);
      for (const r of readingsFor(reactive.meters[i], from, from + DAY)) {
        const { reactiveImportMvarh: _i, reactiveExportMvarh: _e, ...active } = r;
        expect(active).toEqual(readingAt(plain.meters[i], r.intervalStart));
      }
    }
  });

  it('is deterministic with a seed, the same in any fleet size, and differs between seeds', () => {
    const a = [...fleetReadings(createFleet({ meters: 4, seed: 'pf', profile: 'commercial' }).meters, from, to)];
    const b = [...fleetReadings(createFleet({ meters: 4, seed: 'pf', profile: 'commercial' }).meters, from, to)];
    expect(a).toEqual(b);
    const large = createFleet({ meters: 40, seed: 'pf', profile: 'commercial', concentrators: 3 });
    expect(readingAt(large.meters[3], a[7 * 4 + 3].intervalStart)).toEqual(a[7 * 4 + 3]);
    const other = [...fleetReadings(createFleet({ meters: 4, seed: 'other', profile: 'commercial' }).meters, from, to)];
    expect(other.map((r) => r.reactiveImportMvarh)).not.toEqual(a.map((r) => r.reactiveImportMvarh));
  });

  it('keeps every meter and interval power factor within 0.85-0.98, lower at light load', () => {
    const fleet = createFleet({ meters: 50, seed: 'bounds', profile: 'commercial' });
    let lightSum = 0;
    let light = 0;
    let heavySum = 0;
    let heavy = 0;
    for (const meter of fleet.meters) {
      expect(meter.powerFactor!).toBeGreaterThanOrEqual(POWER_FACTOR_MIN);
      expect(meter.powerFactor!).toBeLessThanOrEqual(POWER_FACTOR_MAX);
      const maxMwh = meter.maxPowerKw * meter.intervalSeconds * (1_000 / 3.6);
      for (const r of readingsFor(meter, from, to)) {
        const pf = powerFactorAt(meter, r.intervalStart, r.importMwh);
        expect(pf).toBeGreaterThanOrEqual(POWER_FACTOR_MIN);
        expect(pf).toBeLessThanOrEqual(POWER_FACTOR_MAX);
        if (r.importMwh < 0.15 * maxMwh) { lightSum += pf; light++; }
        if (r.importMwh > 0.4 * maxMwh) { heavySum += pf; heavy++; }
        // The power factor the whole varh imply stays within the bounds up to the rounding of half a varh.
        const varh = r.reactiveImportMvarh! / 1000;
        const wh = r.importMwh / 1000;
        const low = wh / Math.hypot(wh, varh + 0.5);
        const high = wh / Math.hypot(wh, Math.max(0, varh - 0.5));
        expect(high).toBeGreaterThanOrEqual(POWER_FACTOR_MIN);
        expect(low).toBeLessThanOrEqual(POWER_FACTOR_MAX);
      }
    }
    expect(light).toBeGreaterThan(0);
    expect(heavy).toBeGreaterThan(0);
    expect(heavySum / heavy).toBeGreaterThan(lightSum / light);
    expect(intervalPowerFactor(0.85, 1, from, 0)).toBe(POWER_FACTOR_MIN);
    expect(intervalPowerFactor(0.98, 1, from, 1.5)).toBeLessThanOrEqual(POWER_FACTOR_MAX);
  });

  it('is active import x tan(acos(pf)) in whole varh, with a measured reactive export of 0', () => {
    expect(reactiveImportMvarh(1_000_000, 0.8)).toBe(750_000); // 1 kWh at pf 0.8: 750 varh
    expect(reactiveImportMvarh(0, 0.9)).toBe(0);
    const fleet = createFleet({ meters: 10, seed: 'exact', profile: 'commercial' });
    for (const meter of fleet.meters) {
      for (const r of readingsFor(meter, from, to)) {
        const pf = powerFactorAt(meter, r.intervalStart, r.importMwh);
        const expected = Math.round((r.importMwh / 1000) * Math.tan(Math.acos(pf)));
        expect(Math.abs(r.reactiveImportMvarh! / 1000 - expected)).toBeLessThanOrEqual(1); // tan(acos) and sqrt agree to ulps
        expect(r.reactiveImportMvarh! % 1000).toBe(0);
        expect(r.reactiveExportMvarh).toBe(0);
      }
    }
  });

  it('goes on the wire as whole varh that the contract schema accepts and reads back exactly', () => {
    const fleet = createFleet({ meters: 5, seed: 'wire', profile: 'commercial' });
    for (const reading of fleetReadings(fleet.meters, from, from + DAY)) {
      const text = readingJson(reading);
      expect(text).toBe(JSON.stringify(toWireReading(reading)));
      const wire = JSON.parse(text) as Record<string, unknown>;
      expect(Number.isInteger(wire.reactiveImportVarh)).toBe(true);
      expect(wire.reactiveExportVarh).toBe(0);
      const parsed = readingSchema.parse(wire);
      expect(toReading(parsed, reading.meterId)).toEqual(reading);
    }
  });
});
