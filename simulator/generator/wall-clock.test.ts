import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { MS_PER_DAY, WallClock } from './wall-clock.js';

const newYork = new WallClock('America/New_York');

describe('WallClock', () => {
  it('agrees with luxon on every 5 minutes around both DST transitions', () => {
    for (const day of ['2025-03-09', '2025-11-02']) {
      const start = Date.parse(`${day}T00:00:00Z`);
      for (let t = start; t < start + 2 * MS_PER_DAY; t += 300_000) {
        const expected = DateTime.fromMillis(t, { zone: 'America/New_York' });
        const local = newYork.localTime(t);
        expect([local.year, local.month, local.day, local.weekday, local.dayOfYear, local.offsetMinutes]).toEqual([
          expected.year,
          expected.month,
          expected.day,
          expected.weekday,
          expected.ordinal,
          expected.offset,
        ]);
        expect(local.hour).toBeCloseTo(expected.hour + expected.minute / 60, 9);
      }
    }
  });

  it('finds the instant of a local wall-clock time, shifting a spring-forward gap and taking the first of a fold', () => {
    const day = (iso: string) => Math.floor(Date.parse(`${iso}T00:00:00Z`) / MS_PER_DAY);
    expect(new Date(newYork.instantAt(day('2025-07-01'), 22 * 60)).toISOString()).toBe('2025-07-02T02:00:00.000Z');
    expect(new Date(newYork.instantAt(day('2025-01-01'), 22 * 60)).toISOString()).toBe('2025-01-02T03:00:00.000Z');
    // 02:30 does not exist on 2025-03-09: read with EST, it is 03:30 EDT.
    expect(new Date(newYork.instantAt(day('2025-03-09'), 150)).toISOString()).toBe('2025-03-09T07:30:00.000Z');
    // 01:30 happens twice on 2025-11-02: the EDT one comes first.
    expect(new Date(newYork.instantAt(day('2025-11-02'), 90)).toISOString()).toBe('2025-11-02T05:30:00.000Z');
    // Minutes past 24:00 mean the next day.
    expect(new Date(newYork.instantAt(day('2025-07-01'), 24 * 60 + 15)).toISOString()).toBe('2025-07-02T04:15:00.000Z');
  });

  it('knows the standard offset of northern and southern zones', () => {
    expect(newYork.standardOffsetMinutes()).toBe(-300);
    expect(new WallClock('Australia/Sydney').standardOffsetMinutes()).toBe(600);
    expect(new WallClock('Asia/Kolkata').standardOffsetMinutes()).toBe(330);
  });

  it('refuses an unknown zone', () => {
    expect(() => new WallClock('Mars/Olympus_Mons')).toThrow(/unknown IANA time zone/);
  });
});
