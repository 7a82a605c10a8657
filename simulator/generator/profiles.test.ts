import { describe, expect, it } from 'vitest';
import { createFleet, MIXED_PROFILE_WEIGHTS, PROFILES, type MeterSpec, type Profile } from './fleet.js';
import { wallClock } from './wall-clock.js';
import { chargingSession } from './profiles/ev.js';
import { readingsFor } from './readings.js';
import { sunWindow } from './sun.js';

const DAY = 86_400_000;
/** A mid-month weekday and Sunday in each season, as local midnights in New York. */
const SAMPLE_DAYS = ['2025-01-15', '2025-01-19', '2025-04-16', '2025-04-20', '2025-07-16', '2025-07-20', '2025-10-15', '2025-10-19'];
const clock = wallClock('America/New_York');
const localMidnight = (iso: string) => clock.instantAt(Math.floor(Date.parse(`${iso}T00:00:00Z`) / DAY), 0);

function dailyKwh(meter: MeterSpec, isoDay: string): { importKwh: number; exportKwh: number } {
  const start = localMidnight(isoDay);
  let importMwh = 0;
  let exportMwh = 0;
  for (const r of readingsFor(meter, start, start + DAY)) {
    importMwh += r.importMwh;
    exportMwh += r.exportMwh;
  }
  return { importKwh: importMwh / 1e6, exportKwh: exportMwh / 1e6 };
}

function fleetOf(profile: Profile, seed = 'plausible') {
  return createFleet({ meters: 40, seed, profile }).meters;
}

describe('determinism', () => {
  const window = [Date.parse('2025-06-01T00:00:00Z'), Date.parse('2025-06-03T00:00:00Z')] as const;
  it.each([...PROFILES, 'mixed' as const])('%s: the same seed gives identical readings, another seed different ones', (profile) => {
    const a = createFleet({ meters: 5, seed: 'alpha', profile }).meters;
    const b = createFleet({ meters: 5, seed: 'alpha', profile }).meters;
    const c = createFleet({ meters: 5, seed: 'beta', profile }).meters;
    const series = (meters: MeterSpec[]) => meters.flatMap((m) => [...readingsFor(m, ...window)]);
    expect(series(a)).toEqual(series(b));
    expect(series(a)).not.toEqual(series(c));
  });

  it('a meter is the same in a fleet of 10 and of 1000', () => {
    const ten = createFleet({ meters: 10, seed: 7, profile: 'mixed' });
    const thousand = createFleet({ meters: 1000, seed: 7, profile: 'mixed', concentrators: 13 });
    expect({ ...thousand.meters[9], concentratorId: null }).toEqual(ten.meters[9]);
  });

  it('mixed assigns every profile, roughly by its weight', () => {
    const meters = createFleet({ meters: 2000, seed: 'mix', profile: 'mixed' }).meters;
    for (const [profile, weight] of MIXED_PROFILE_WEIGHTS) {
      const share = meters.filter((m) => m.profile === profile).length / meters.length;
      expect(Math.abs(share - weight)).toBeLessThan(0.04);
    }
  });
});

describe('plausibility', () => {
  it('residential: 5-30 kWh a day, with a morning and a larger evening peak', () => {
    const meters = fleetOf('residential');
    for (const meter of meters) {
      for (const day of SAMPLE_DAYS) {
        const { importKwh, exportKwh } = dailyKwh(meter, day);
        expect(importKwh).toBeGreaterThan(5);
        expect(importKwh).toBeLessThan(30);
        expect(exportKwh).toBe(0);
      }
    }
    // Fleet-average weekday shape in April: 07-08 above 03-04, 18-21 above 07-08.
    const byHour = new Array(24).fill(0);
    const start = localMidnight('2025-04-16');
    for (const meter of meters) {
      for (const r of readingsFor(meter, start, start + DAY)) byHour[Math.floor(clock.localTime(r.intervalStart).hour)] += r.importMwh;
    }
    expect(byHour[7]).toBeGreaterThan(1.5 * byHour[3]);
    expect(byHour[19]).toBeGreaterThan(byHour[7]);
  });

  it('commercial: 30-1000 kWh on weekdays, a business-hours plateau, much less on Sundays', () => {
    for (const meter of fleetOf('commercial')) {
      const weekday = dailyKwh(meter, '2025-04-16').importKwh;
      const sunday = dailyKwh(meter, '2025-04-20').importKwh;
      expect(weekday).toBeGreaterThan(30);
      expect(weekday).toBeLessThan(1000);
      expect(sunday).toBeLessThan(0.6 * weekday);
      const start = localMidnight('2025-04-16');
      const noon = readingsFor(meter, start + 12 * 3_600_000, start + 12.25 * 3_600_000).next().value!;
      const night = readingsFor(meter, start + 3 * 3_600_000, start + 3.25 * 3_600_000).next().value!;
      expect(noon.importMwh).toBeGreaterThan(2 * night.importMwh);
    }
  });

  it('season: heating and cooling raise residential use in January and July above April', () => {
    const meters = fleetOf('residential');
    const total = (day: string) => meters.reduce((sum, m) => sum + dailyKwh(m, day).importKwh, 0);
    expect(total('2025-01-15')).toBeGreaterThan(1.1 * total('2025-04-16'));
    expect(total('2025-07-16')).toBeGreaterThan(1.1 * total('2025-04-16'));
  });

  it('solar: exports only between local sunrise and sunset, more in summer than in winter', () => {
    const meters = fleetOf('solar');
    let summer = 0;
    let winter = 0;
    for (const meter of meters) {
      for (const day of SAMPLE_DAYS) {
        const start = localMidnight(day);
        for (const r of readingsFor(meter, start, start + DAY)) {
          if (r.exportMwh === 0) continue;
          const local = clock.localTime(r.intervalStart);
          const sun = sunWindow(meter.site, local.year, local.month, local.day, local.dayOfYear);
          expect(r.intervalStart + r.intervalSeconds * 1000).toBeGreaterThan(sun.sunriseMs);
          expect(r.intervalStart).toBeLessThan(sun.sunsetMs);
        }
        const { importKwh, exportKwh } = dailyKwh(meter, day);
        expect(importKwh).toBeLessThan(30);
        if (day.startsWith('2025-07')) summer += exportKwh;
        if (day.startsWith('2025-01')) winter += exportKwh;
      }
    }
    expect(summer).toBeGreaterThan(2 * winter);
    expect(winter).toBeGreaterThan(0);
  });

  it('residential-solar: an array sized to the home, exporting more than it imports in summer and less in winter', () => {
    const meters = createFleet({ meters: 12, seed: 'net-metering', profile: 'residential-solar', intervalSeconds: 3600 }).meters;
    const monthKwh = (meter: MeterSpec, month: number) => {
      const from = localMidnight(`2025-${String(month).padStart(2, '0')}-01`);
      const to = month === 12 ? localMidnight('2026-01-01') : localMidnight(`2025-${String(month + 1).padStart(2, '0')}-01`);
      let importMwh = 0;
      let exportMwh = 0;
      let peakMwh = 0;
      for (const r of readingsFor(meter, from, to)) {
        importMwh += r.importMwh;
        exportMwh += r.exportMwh;
        peakMwh = Math.max(peakMwh, r.importMwh, r.exportMwh);
      }
      return { importKwh: importMwh / 1e6, exportKwh: exportMwh / 1e6, peakKw: peakMwh / 1e6 };
    };
    for (const meter of meters) {
      expect(meter.pv!.peakW).toBeGreaterThanOrEqual(2_500);
      expect(meter.pv!.peakW).toBeLessThanOrEqual(10_000);
      const year = [...Array(12).keys()].map((m) => monthKwh(meter, m + 1));
      for (const summer of [year[5]!, year[6]!]) expect(summer.exportKwh).toBeGreaterThan(summer.importKwh);
      for (const winter of [year[0]!, year[11]!]) expect(winter.importKwh).toBeGreaterThan(1.5 * winter.exportKwh);
      // sized to the home's annual use: the year's export is within a third of its import
      const imported = year.reduce((sum, m) => sum + m.importKwh, 0);
      const exported = year.reduce((sum, m) => sum + m.exportKwh, 0);
      expect(exported / imported).toBeGreaterThan(0.75);
      expect(exported / imported).toBeLessThan(1.33);
      expect(imported / 365).toBeGreaterThan(4);
      // an hour's import or export never exceeds what the gateway is told the meter can do
      for (const m of year) expect(m.peakKw).toBeLessThanOrEqual(meter.maxPowerKw);
    }
  });

  it('ev: charges on most nights, sessions start in the late evening or just after midnight', () => {
    const meters = fleetOf('ev');
    let nights = 0;
    let sessions = 0;
    const firstDay = Math.floor(Date.parse('2025-05-01T00:00:00Z') / DAY);
    for (const meter of meters) {
      for (let day = firstDay; day < firstDay + 28; day++) {
        nights++;
        const session = chargingSession(meter.ev!, meter.key, clock, day);
        if (!session) continue;
        sessions++;
        const startHour = clock.localTime(session.startMs).hour;
        expect(startHour >= 21.5 || startHour < 0.5).toBe(true);
        expect(session.endMs - session.startMs).toBeLessThan(10 * 3_600_000);
      }
    }
    expect(sessions / nights).toBeGreaterThan(0.55);
    expect(sessions / nights).toBeLessThan(0.85);

    // Seen in the readings: intervals drawing more than 3 kW are mostly at night (21:00-07:00 local).
    let night = 0;
    let heavy = 0;
    for (const meter of meters) {
      const start = localMidnight('2025-05-05');
      for (const r of readingsFor(meter, start, start + 7 * DAY)) {
        if (r.importMwh / 1000 / (r.intervalSeconds / 3600) < 3_000) continue;
        heavy++;
        const hour = clock.localTime(r.intervalStart).hour;
        if (hour >= 21 || hour < 7) night++;
      }
    }
    expect(heavy).toBeGreaterThan(100);
    expect(night / heavy).toBeGreaterThan(0.8);
    for (const meter of meters) {
      const { importKwh } = dailyKwh(meter, '2025-04-16');
      expect(importKwh).toBeGreaterThan(5);
      expect(importKwh).toBeLessThan(70);
    }
  });
});
