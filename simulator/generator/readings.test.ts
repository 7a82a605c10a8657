import { describe, expect, it } from 'vitest';
import { readingSchema, toWireReading, type Reading } from '../../common/reading.js';
import { createFleet, FLEET_PROFILES } from './fleet.js';
import { countIntervals, fleetReadings, intervalStarts, readingAt, readingsFor } from './readings.js';

const DAY = 86_400_000;
const from = Date.parse('2025-03-08T00:00:00Z'); // spans the US spring-forward night
const to = from + 3 * DAY;

describe('readings', () => {
  it.each(FLEET_PROFILES)('%s readings pass the shared reading schema and carry integer mWh', (profile) => {
    const fleet = createFleet({ meters: 8, seed: 'schema', profile });
    for (const reading of fleetReadings(fleet.meters, from, to)) {
      expect(Number.isInteger(reading.importMwh) && reading.importMwh >= 0).toBe(true);
      expect(Number.isInteger(reading.exportMwh) && reading.exportMwh >= 0).toBe(true);
      const parsed = readingSchema.safeParse(JSON.parse(JSON.stringify(toWireReading(reading))));
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    }
  });

  it('never exceeds the meter maximum power given to provisioning', () => {
    const fleet = createFleet({ meters: 100, seed: 'max', profile: 'mixed' });
    for (const meter of fleet.meters) {
      for (const r of readingsFor(meter, Date.parse('2025-07-14T00:00:00Z'), Date.parse('2025-07-16T00:00:00Z'))) {
        expect(r.importMwh / 1_000_000 / (r.intervalSeconds / 3600)).toBeLessThanOrEqual(meter.maxPowerKw);
      }
    }
  });

  it('yields every aligned interval of a half-open window, for every contract interval length', () => {
    for (const seconds of [300, 600, 900, 1800, 3600] as const) {
      const starts = [...intervalStarts(from + 1, to, seconds)];
      expect(starts.length).toBe(countIntervals(from + 1, to, seconds));
      expect(starts[0]).toBe(from + seconds * 1000);
      expect(starts.every((s) => s % (seconds * 1000) === 0 && s < to)).toBe(true);
    }
    expect(countIntervals(from, from, 900)).toBe(0);
  });

  it('is random access: one interval reads the same alone, in a range or in another fleet size', () => {
    const small = createFleet({ meters: 3, seed: 's', profile: 'mixed' });
    const large = createFleet({ meters: 300, seed: 's', profile: 'mixed', concentrators: 7 });
    const inRange: Reading[] = [...readingsFor(small.meters[2], from, to)];
    const target = inRange[150];
    expect(readingAt(small.meters[2], target.intervalStart)).toEqual(target);
    expect(readingAt(large.meters[2], target.intervalStart)).toEqual(target);
    expect([...readingsFor(large.meters[2], from, to)]).toEqual(inRange);
  });

  it('orders fleet readings interval by interval', () => {
    const fleet = createFleet({ meters: 3, seed: 'o' });
    const readings = [...fleetReadings(fleet.meters, from, from + 3_600_000)];
    expect(readings.map((r) => r.meterId).slice(0, 6)).toEqual([
      'MTR-000001', 'MTR-000002', 'MTR-000003', 'MTR-000001', 'MTR-000002', 'MTR-000003',
    ]);
    expect(readings.length).toBe(12);
  });
});
