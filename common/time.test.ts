/**
 * The one clock, against luxon's own zone arithmetic as the oracle: every 15 minutes around DST gaps and
 * overlaps in zones with whole-hour, half-hour and 45-minute offsets, northern and southern hemispheres, a
 * zone whose change skips midnight, zones with several changes a year; and calendar years 0000-0099 (which
 * `Date.UTC` alone maps to 1900-1999) and 9999.
 */
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { civilFromDayNumber, DAY_MS, dayNumberOf, daysInMonth, HOUR_MS, isoUtc, isoWeekdayOf, MINUTE_MS, utcMillis, ZoneClock } from './time.js';

const Q = 15 * MINUTE_MS;

/** What luxon says of an instant in a zone, in the clock's terms. */
function luxonLocal(instant: number, zone: string) {
  const t = DateTime.fromMillis(instant, { zone });
  const dayNumber = dayNumberOf(t.year, t.month, t.day);
  return { dayNumber, minuteOfDay: t.hour * 60 + t.minute, year: t.year, month: t.month, day: t.day, isoWeekday: t.weekday };
}

/** Compares the clock with luxon every 15 minutes over [from, to). */
function expectAgreement(zone: string, from: number, to: number) {
  const clock = ZoneClock.of(zone);
  for (let t = from; t < to; t += Q) {
    expect(clock.localTime(t), `${zone} at ${isoUtc(t)}`).toEqual(luxonLocal(t, zone));
    expect(clock.offsetAt(t), `${zone} offset at ${isoUtc(t)}`).toBe(DateTime.fromMillis(t, { zone }).offset * MINUTE_MS);
  }
}

describe('utcMillis', () => {
  it('is Date.UTC for years 100 and later', () => {
    expect(utcMillis(2024, 2, 29, 13, 45, 30, 250)).toBe(Date.UTC(2024, 1, 29, 13, 45, 30, 250));
    expect(utcMillis(100, 1, 1)).toBe(Date.UTC(100, 0, 1));
    expect(utcMillis(9999, 12, 31, 23, 59, 59, 999)).toBe(253_402_300_799_999);
  });

  it('takes years 0000-0099 as given, every day of them', () => {
    expect(utcMillis(0, 1, 1)).toBe(-62_167_219_200_000);
    expect(isoUtc(utcMillis(0, 1, 1))).toBe('0000-01-01T00:00:00Z');
    expect(isoUtc(utcMillis(99, 12, 31, 23, 59, 59, 999))).toBe('0099-12-31T23:59:59.999Z');
    // consecutive days from 0000-01-01 to 0100-01-01, through every leap day (year 0 is one, as is 4, 8 ...)
    let expected = utcMillis(0, 1, 1);
    for (let year = 0; year < 100; year++) {
      for (let month = 1; month <= 12; month++) {
        for (let day = 1; day <= daysInMonth(year, month); day++) {
          expect(utcMillis(year, month, day)).toBe(expected);
          expected += DAY_MS;
        }
      }
    }
    expect(expected).toBe(Date.UTC(100, 0, 1));
  });

  it('overflows months and days as Date.UTC does, across the year 99/100 boundary too', () => {
    expect(utcMillis(99, 13, 1)).toBe(Date.UTC(100, 0, 1));
    expect(utcMillis(50, 3, 0)).toBe(utcMillis(50, 2, 28));
    expect(utcMillis(48, 3, 0)).toBe(utcMillis(48, 2, 29));
    expect(utcMillis(2023, 13, 1)).toBe(Date.UTC(2024, 0, 1));
  });

  it('agrees with the ISO text of the instant for any calendar time 0000-9999', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (date) => {
        const f = { y: date.getUTCFullYear(), mo: date.getUTCMonth() + 1, d: date.getUTCDate(), h: date.getUTCHours(), mi: date.getUTCMinutes(), s: date.getUTCSeconds(), ms: date.getUTCMilliseconds() };
        expect(utcMillis(f.y, f.mo, f.d, f.h, f.mi, f.s, f.ms)).toBe(date.getTime());
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isoUtc', () => {
  it('writes whole seconds without milliseconds and keeps milliseconds that are there', () => {
    expect(isoUtc(Date.UTC(2026, 2, 29, 1, 0, 0))).toBe('2026-03-29T01:00:00Z');
    expect(isoUtc(Date.UTC(2026, 2, 29, 1, 0, 0, 5))).toBe('2026-03-29T01:00:00.005Z');
    expect(isoUtc(utcMillis(9999, 12, 31, 23, 45))).toBe('9999-12-31T23:45:00Z');
    expect(isoUtc(utcMillis(1, 1, 1))).toBe('0001-01-01T00:00:00Z');
  });
});

describe('calendar days', () => {
  it('day numbers and dates convert both ways, years 0000-0099 and 9999 included', () => {
    for (const [y, m, d] of [[0, 1, 1], [0, 2, 29], [4, 2, 29], [99, 12, 31], [100, 3, 1], [1970, 1, 1], [2024, 2, 29], [9999, 12, 31]]) {
      const n = dayNumberOf(y, m, d);
      expect(civilFromDayNumber(n)).toEqual({ year: y, month: m, day: d });
    }
    expect(dayNumberOf(1970, 1, 1)).toBe(0);
    expect(dayNumberOf(0, 1, 1)).toBe(-719_528);
  });

  it('weekdays: proleptic Gregorian, from year 1 to 9999', () => {
    expect(isoWeekdayOf(dayNumberOf(1970, 1, 1))).toBe(4);
    expect(isoWeekdayOf(dayNumberOf(2000, 1, 1))).toBe(6);
    expect(isoWeekdayOf(dayNumberOf(1, 1, 1))).toBe(1);
    expect(isoWeekdayOf(dayNumberOf(0, 12, 31))).toBe(7);
    expect(isoWeekdayOf(dayNumberOf(9999, 12, 31))).toBe(5);
  });

  it('month lengths with Gregorian leap years', () => {
    expect([0, 4, 100, 400, 1900, 2000, 2023, 2024, 9996, 9999].map((y) => daysInMonth(y, 2))).toEqual([29, 29, 28, 29, 28, 29, 28, 29, 29, 28]);
    expect(daysInMonth(99, 12)).toBe(31);
    expect(daysInMonth(2024, 4)).toBe(30);
  });
});

describe('ZoneClock against luxon around DST changes', () => {
  // [zone, a UTC instant near a change]: gaps (spring forward) and overlaps (fall back)
  const changes: [string, string][] = [
    ['Europe/London', '2024-03-31T01:00:00Z'],
    ['Europe/London', '2024-10-27T01:00:00Z'],
    ['America/New_York', '2024-03-10T07:00:00Z'],
    ['America/New_York', '2024-11-03T06:00:00Z'],
    ['Australia/Sydney', '2024-04-06T16:00:00Z'],
    ['Australia/Sydney', '2024-10-05T16:00:00Z'],
    // 30-minute DST
    ['Australia/Lord_Howe', '2024-04-06T15:00:00Z'],
    ['Australia/Lord_Howe', '2024-10-05T15:30:00Z'],
    // +12:45 / +13:45
    ['Pacific/Chatham', '2024-04-06T14:00:00Z'],
    ['Pacific/Chatham', '2024-09-28T14:00:00Z'],
    // the change at local midnight: the day starts at 01:00
    ['America/Santiago', '2024-09-08T04:00:00Z'],
    ['America/Santiago', '2024-04-07T03:00:00Z'],
    // Ramadan: several changes within one year
    ['Africa/Casablanca', '2024-03-10T02:00:00Z'],
    ['Africa/Casablanca', '2024-04-14T02:00:00Z'],
    // no DST, a half-hour offset
    ['Asia/Kolkata', '2024-03-31T01:00:00Z'],
  ];

  it.each(changes)('%s around %s: every local field and offset, every 15 minutes for two days', (zone, near) => {
    const t = Date.parse(near);
    expectAgreement(zone, t - DAY_MS, t + DAY_MS);
  });

  it('agrees with luxon at random instants of 1900-2100 in many zones', () => {
    const zones = ['Europe/London', 'Europe/Berlin', 'America/New_York', 'America/Los_Angeles', 'America/Sao_Paulo', 'Australia/Adelaide', 'Asia/Tehran', 'Pacific/Apia', 'Africa/Cairo', 'UTC'];
    fc.assert(
      fc.property(fc.constantFrom(...zones), fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2100, 0, 1) }), (zone, instant) => {
        const t = Math.floor(instant / MINUTE_MS) * MINUTE_MS;
        expect(ZoneClock.of(zone).localTime(t)).toEqual(luxonLocal(t, zone));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with luxon in years 0000-0099 and 9999 (local mean time then, projected DST rules now)', () => {
    expectAgreement('Europe/London', utcMillis(0, 1, 1), utcMillis(0, 1, 3));
    expectAgreement('America/New_York', utcMillis(50, 6, 30), utcMillis(50, 7, 2));
    expectAgreement('Asia/Kolkata', utcMillis(99, 12, 31), utcMillis(100, 1, 2));
    expectAgreement('Europe/London', Date.UTC(9999, 2, 30), Date.UTC(9999, 3, 1));
    expectAgreement('America/New_York', Date.UTC(9999, 10, 6), Date.UTC(9999, 10, 8));
    expect(ZoneClock.of('Europe/Paris').localTime(utcMillis(9999, 12, 31, 22, 59))).toMatchObject({ year: 9999, month: 12, day: 31, minuteOfDay: 23 * 60 + 59 });
    expect(ZoneClock.of('UTC').localTime(utcMillis(0, 2, 29, 12))).toMatchObject({ year: 0, month: 2, day: 29, minuteOfDay: 720 });
  });
});

describe('ZoneClock days', () => {
  it('a spring-forward day has 23 hours, a fall-back day 25, and their minutes of day repeat in the overlap', () => {
    const london = ZoneClock.of('Europe/London');
    const spring = dayNumberOf(2024, 3, 31);
    const autumn = dayNumberOf(2024, 10, 27);
    expect(london.startOfDay(spring + 1) - london.startOfDay(spring)).toBe(23 * HOUR_MS);
    expect(london.startOfDay(autumn + 1) - london.startOfDay(autumn)).toBe(25 * HOUR_MS);
    // 00:30Z and 01:30Z are both 01:30 local on the fall-back day
    expect(london.localTime(Date.parse('2024-10-27T00:30:00Z')).minuteOfDay).toBe(90);
    expect(london.localTime(Date.parse('2024-10-27T01:30:00Z')).minuteOfDay).toBe(90);
  });

  it('a day whose midnight does not exist starts at its first existing minute', () => {
    const santiago = ZoneClock.of('America/Santiago');
    const day = dayNumberOf(2024, 9, 8);
    expect(isoUtc(santiago.startOfDay(day))).toBe('2024-09-08T04:00:00Z');
    expect(santiago.localTime(santiago.startOfDay(day))).toMatchObject({ day: 8, minuteOfDay: 60 });
    expect(santiago.startOfDay(day)).toBe(DateTime.fromObject({ year: 2024, month: 9, day: 8 }, { zone: 'America/Santiago' }).toMillis());
  });

  it('startOfDay is the first minute of the local day in years 0050 and 9999', () => {
    // (in year 50 New York keeps local mean time, -4:56:02: its midnight falls within a minute, not on one)
    const ny = ZoneClock.of('America/New_York');
    for (const [y, m, d] of [[50, 3, 1], [9999, 7, 4]]) {
      const start = ny.startOfDay(dayNumberOf(y, m, d));
      expect(ny.localTime(start)).toMatchObject({ year: y, month: m, day: d, minuteOfDay: 0 });
      expect(ny.localTime(start - MINUTE_MS).day).not.toBe(d);
    }
  });

  it('instantAt: a wall time in a gap is read with the offset before it; in an overlap, the earlier instant', () => {
    const london = ZoneClock.of('Europe/London');
    expect(isoUtc(london.instantAt(dayNumberOf(2024, 3, 31), 90))).toBe('2024-03-31T01:30:00Z');
    expect(isoUtc(london.instantAt(dayNumberOf(2024, 10, 27), 90))).toBe('2024-10-27T00:30:00Z');
    expect(isoUtc(london.instantAt(dayNumberOf(2024, 7, 1), 12 * 60))).toBe('2024-07-01T11:00:00Z');
    const sydney = ZoneClock.of('Australia/Sydney');
    expect(isoUtc(sydney.instantAt(dayNumberOf(2024, 10, 6), 150))).toBe('2024-10-05T16:30:00Z');
    expect(isoUtc(sydney.instantAt(dayNumberOf(2024, 4, 7), 150))).toBe('2024-04-06T15:30:00Z');
    // minutes beyond a day mean the next
    expect(london.instantAt(dayNumberOf(2024, 7, 1), 1440 + 60)).toBe(london.instantAt(dayNumberOf(2024, 7, 2), 60));
  });

  it('daysStartingIn counts local midnights, additively, across DST changes', () => {
    const clock = ZoneClock.of('America/New_York');
    const from = Date.parse('2024-03-01T12:00:00Z');
    const to = Date.parse('2024-11-30T12:00:00Z');
    const total = clock.daysStartingIn(from, to);
    expect(total).toBe(dayNumberOf(2024, 11, 30) - dayNumberOf(2024, 3, 1));
    fc.assert(
      fc.property(fc.integer({ min: from, max: to }), (split) => {
        expect(clock.daysStartingIn(from, split) + clock.daysStartingIn(split, to)).toBe(total);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a name that is not an IANA zone, and shares one clock per zone', () => {
    expect(() => ZoneClock.of('Mars/Olympus')).toThrow(RangeError);
    expect(ZoneClock.of('Europe/Paris')).toBe(ZoneClock.of('Europe/Paris'));
  });
});
