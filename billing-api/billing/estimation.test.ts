/**
 * Estimation and validation rules, on hand-made series. Expected values are worked out in the comments.
 */
import { describe, expect, it } from 'vitest';
import type { MeterInterval } from '../../rating/index.js';
import { estimateGaps, findGaps, interpolate, sameWallTimeWeeksBefore } from './estimation.js';
import { validateCycle } from './validation.js';

const Q = 900_000; // 15 minutes
const DAY = 96;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

/** 15-minute readings from `start`, one per value; null leaves the slot missing. */
function series(start: string, values: (number | null)[], quality: 'actual' | 'estimated' = 'actual'): MeterInterval[] {
  const t0 = at(start);
  return values.flatMap((v, k) => (v === null ? [] : [{ intervalStart: t0 + k * Q, intervalSeconds: 900, importMwh: v, exportMwh: 0, quality }]));
}

const cycle = { from: at('2026-03-10T00:00:00Z'), to: at('2026-03-11T00:00:00Z') };
/** the cycle's day plus three hours either side, every slot present with `value`, then `missing` removed */
function dayWithHoles(missing: number[], value = (k: number) => 1000 * (k + 1)): MeterInterval[] {
  // slot index 0 = 2026-03-09T21:00Z (12 slots before the cycle), cycle slots are 12 .. 107
  const values = Array.from({ length: DAY + 24 }, (_, k) => (missing.includes(k - 12) ? null : value(k - 12)));
  return series('2026-03-09T21:00:00Z', values);
}

describe('linear interpolation across short gaps', () => {
  it('fills four missing quarter hours evenly between their neighbours', () => {
    // slots 40..43 missing; slot 39 = 40 000 mWh, slot 44 = 45 000 mWh (value(k) = 1000 (k + 1)).
    const result = estimateGaps({ cycle, intervalSeconds: 900, zone: 'UTC', readings: dayWithHoles([40, 41, 42, 43]) });
    expect(result.gaps).toEqual([{ from: cycle.from + 40 * Q, to: cycle.from + 44 * Q, intervals: 4, method: 'linear' }]);
    // 40000 + 5000 x i/5 = 41000, 42000, 43000, 44000
    expect(result.estimates.map((e) => [iso(e.intervalStart), e.importMwh, e.method])).toEqual([
      ['2026-03-10T10:00:00.000Z', 41000, 'linear'],
      ['2026-03-10T10:15:00.000Z', 42000, 'linear'],
      ['2026-03-10T10:30:00.000Z', 43000, 'linear'],
      ['2026-03-10T10:45:00.000Z', 44000, 'linear'],
    ]);
    expect(result.unestimated).toEqual([]);
  });

  it('rounds half-up to the milliwatt-hour', () => {
    expect(interpolate(0, 1, 1, 1)).toBe(1); // 0.5 -> 1
    expect(interpolate(1, 2, 1, 2)).toBe(1); // 4/3
    expect(interpolate(1, 2, 2, 2)).toBe(2); // 5/3
    expect(interpolate(3, 0, 1, 1)).toBe(2); // 1.5 -> 2
    expect(interpolate(1_000_000_000_000, 0, 1, 1)).toBe(500_000_000_000);
  });

  it('2 hours of missing time is short, 2 hours 15 minutes is long', () => {
    const eight = findGaps({ cycle, intervalSeconds: 900, zone: 'UTC', readings: dayWithHoles([20, 21, 22, 23, 24, 25, 26, 27]) });
    expect(eight.map((g) => [g.intervals, g.method])).toEqual([[8, 'linear']]);
    const nine = findGaps({ cycle, intervalSeconds: 900, zone: 'UTC', readings: dayWithHoles([20, 21, 22, 23, 24, 25, 26, 27, 28]) });
    expect(nine.map((g) => [g.intervals, g.method])).toEqual([[9, 'profile']]);
  });

  it('uses a neighbour outside the cycle and estimates only the intervals inside it', () => {
    // missing: 23:30, 23:45 (before the cycle), 00:00, 00:15; neighbours 23:15 (slot -3: 10000 x... value(-3) = -2000?)
    const values = (k: number) => 10_000 + k * 100; // slot -3 (23:15) = 9700; slot 2 (00:30) = 10200
    const result = estimateGaps({ cycle, intervalSeconds: 900, zone: 'UTC', readings: dayWithHoles([-2, -1, 0, 1], values) });
    expect(result.gaps).toEqual([{ from: cycle.from, to: cycle.from + 2 * Q, intervals: 2, method: 'linear' }]);
    // k = 4 between 9700 and 10200: i = 3 -> 9700 + 500 x 3/5 = 10000; i = 4 -> 10100
    expect(result.estimates.map((e) => [iso(e.intervalStart), e.importMwh])).toEqual([
      ['2026-03-10T00:00:00.000Z', 10000],
      ['2026-03-10T00:15:00.000Z', 10100],
    ]);
  });

  it('interpolates export too', () => {
    const readings = dayWithHoles([50]).map((r) => ({ ...r, exportMwh: r.intervalStart === cycle.from + 49 * Q ? 100 : r.intervalStart === cycle.from + 51 * Q ? 301 : 0 }));
    const [estimate] = estimateGaps({ cycle, intervalSeconds: 900, zone: 'UTC', readings }).estimates;
    expect(estimate).toMatchObject({ intervalStart: cycle.from + 50 * Q, importMwh: 51000, exportMwh: 201 }); // (100 + 301) / 2 = 200.5 -> 201
  });
});

describe('same-weekday profile across long gaps', () => {
  it('averages the actual readings at the same wall time 1 to 4 weeks earlier, rounding half-up', () => {
    // The meter stops at 12:00 on 10 March; history: 3 and 17 February... only weeks 1 and 3 have data at 18:00.
    const readings = dayWithHoles(Array.from({ length: 60 }, (_, k) => 48 + k));
    const history = new Map<number, { importMwh: number; exportMwh: number }>();
    const slot = at('2026-03-10T18:00:00Z');
    history.set(slot - 7 * 86_400_000, { importMwh: 700, exportMwh: 0 });
    history.set(slot - 21 * 86_400_000, { importMwh: 1001, exportMwh: 3 });
    history.set(slot - 14 * 86_400_000 + Q, { importMwh: 9999, exportMwh: 0 }); // another time of day: not used for 18:00
    const result = estimateGaps({ cycle, intervalSeconds: 900, zone: 'UTC', readings, history });
    expect(result.gaps).toEqual([{ from: cycle.from + 48 * Q, to: cycle.to, intervals: 48, method: 'profile' }]);
    const estimate = result.estimates.find((e) => e.intervalStart === slot);
    expect(estimate).toEqual({ intervalStart: slot, importMwh: 851, exportMwh: 2, method: 'profile' }); // (700 + 1001) / 2 = 850.5; (0 + 3) / 2 = 1.5
    // 18:15 has only the 2-weeks-earlier reading.
    expect(result.estimates.find((e) => e.intervalStart === slot + Q)).toMatchObject({ importMwh: 9999 });
    // Everything else has no history: missing.
    expect(result.estimates).toHaveLength(2);
    expect(result.unestimated).toHaveLength(46);
  });

  it('keeps the local wall time across a DST change (London, one week before 1 April 09:00 BST is 25 March 09:00 GMT)', () => {
    expect(iso(sameWallTimeWeeksBefore(at('2026-04-01T08:00:00Z'), 1, 'Europe/London'))).toBe('2026-03-25T09:00:00.000Z');
    expect(iso(sameWallTimeWeeksBefore(at('2026-11-04T17:00:00Z'), 1, 'America/Los_Angeles'))).toBe('2026-10-28T16:00:00.000Z');
  });

  it('a meter with no reading at all in reach leaves the whole cycle missing', () => {
    const result = estimateGaps({ cycle, intervalSeconds: 900, zone: 'Europe/London', readings: [], history: new Map() });
    expect(result.gaps).toEqual([{ from: cycle.from, to: cycle.to, intervals: 96, method: 'profile' }]);
    expect(result.estimates).toEqual([]);
    expect(result.unestimated).toHaveLength(96);
  });

  it('aligns hourly meters to local hours in +05:30 (grid at :30 UTC)', () => {
    const c = { from: at('2026-03-09T18:30:00Z'), to: at('2026-03-10T18:30:00Z') }; // a local day in Kolkata
    const readings = Array.from({ length: 24 }, (_, k) => k)
      .filter((k) => k !== 10)
      .map((k) => ({ intervalStart: c.from + k * 3_600_000, intervalSeconds: 3600, importMwh: 1000 * k, exportMwh: 0, quality: 'actual' as const }));
    const result = estimateGaps({ cycle: c, intervalSeconds: 3600, zone: 'Asia/Kolkata', readings });
    // 10 is missing between 9000 and 11000: 10000 at 04:30Z
    expect(result.estimates).toEqual([{ intervalStart: c.from + 10 * 3_600_000, importMwh: 10000, exportMwh: 0, method: 'linear' }]);
    // the first hour has no neighbour before it in reach, the last none after: not gaps (they are present)
    expect(result.gaps).toHaveLength(1);
  });

  it('never estimates an interval that is already stored, estimated or actual', () => {
    const readings = [...dayWithHoles([30, 31]), ...series(iso(cycle.from + 30 * Q), [5], 'estimated')];
    const result = estimateGaps({ cycle, intervalSeconds: 900, zone: 'UTC', readings });
    expect(result.estimates.map((e) => e.intervalStart)).toEqual([cycle.from + 31 * Q]);
    // between the estimate at 30 (5) and slot 32 (33000): (5 + 33000) / 2 = 16502.5 -> 16503
    expect(result.estimates[0].importMwh).toBe(16503);
  });
});

describe('validation warnings', () => {
  const day = (values: number[]) => series('2026-03-10T00:00:00Z', values);

  it('flags an import above 10 x the median of the cycle, not one below', () => {
    const values = Array.from({ length: 96 }, () => 100);
    values[10] = 1001; // > 10 x 100
    values[20] = 1000; // = 10 x 100: not a spike
    const { warnings } = validateCycle(day(values), 900, []);
    expect(warnings).toEqual([
      { code: 'spike', from: '2026-03-10T02:30:00Z', to: '2026-03-10T02:45:00Z', message: expect.stringMatching(/0\.001001 kWh .* median interval import \(0\.0001 kWh\)/) },
    ]);
  });

  it('needs 24 intervals with import before judging spikes', () => {
    const values = Array.from({ length: 23 }, () => 100);
    values[5] = 100_000;
    expect(validateCycle(day(values), 900, []).warnings).toEqual([]);
  });

  it('flags 24 hours of consecutive zero intervals, not 23 h 45 min', () => {
    const long = [...Array.from({ length: 96 }, () => 0), 5];
    expect(validateCycle(day(long), 900, []).warnings).toEqual([
      { code: 'zero_run', from: '2026-03-10T00:00:00Z', to: '2026-03-11T00:00:00Z', message: '24 hours of consecutive actual intervals with zero import and zero export' },
    ]);
    const short = [5, ...Array.from({ length: 95 }, () => 0), 5];
    expect(validateCycle(day(short), 900, []).warnings).toEqual([]);
    // a missing interval breaks the run
    const broken = series('2026-03-10T00:00:00Z', [...Array.from({ length: 50 }, () => 0), null, ...Array.from({ length: 50 }, () => 0)]);
    expect(validateCycle(broken as MeterInterval[], 900, []).warnings).toEqual([]);
  });

  it('reports the intervals left missing as gaps', () => {
    const t = at('2026-03-10T00:00:00Z');
    const { warnings } = validateCycle([], 900, [t + 3 * Q, t, t + Q, t + 10 * Q]);
    expect(warnings.map((w) => [w.code, w.from, w.to])).toEqual([
      ['unestimated_gap', '2026-03-10T00:00:00Z', '2026-03-10T00:30:00Z'],
      ['unestimated_gap', '2026-03-10T00:45:00Z', '2026-03-10T01:00:00Z'],
      ['unestimated_gap', '2026-03-10T02:30:00Z', '2026-03-10T02:45:00Z'],
    ]);
  });

  it('lists at most 20 warnings per code and counts the rest', () => {
    const values = Array.from({ length: 96 }, (_, k) => (k % 3 === 0 ? 100_000 : 100));
    const { warnings, omitted } = validateCycle(day(values), 900, []);
    expect(warnings).toHaveLength(20);
    expect(omitted).toEqual({ spike: 12 });
  });
});
