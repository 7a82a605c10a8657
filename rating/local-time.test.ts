import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { DAY_MS, ZoneClock } from './local-time.js';
import { at, local } from './test-support.js';

const ZONES = ['America/Los_Angeles', 'Europe/London', 'Australia/Sydney', 'Asia/Kolkata', 'Asia/Kathmandu', 'UTC'];

describe('ZoneClock', () => {
  it('agrees with luxon on the local date, weekday and minute of every hour of 2026 in six zones', () => {
    for (const zone of ZONES) {
      const clock = ZoneClock.of(zone);
      for (let instant = at('2026-01-01T00:00:00Z'); instant < at('2027-01-01T00:00:00Z'); instant += 3_600_000) {
        const expected = DateTime.fromMillis(instant, { zone });
        const actual = clock.localTime(instant);
        if (
          actual.year !== expected.year ||
          actual.month !== expected.month ||
          actual.day !== expected.day ||
          actual.isoWeekday !== expected.weekday ||
          actual.minuteOfDay !== expected.hour * 60 + expected.minute
        )
          expect.fail(`${zone} ${new Date(instant).toISOString()}: ${JSON.stringify(actual)} vs ${expected.toISO()}`);
      }
    }
  });

  it('locates the DST changes of 2026 to the minute', () => {
    const la = ZoneClock.of('America/Los_Angeles');
    expect(la.offsetAt(at('2026-03-08T09:59:59.999Z'))).toBe(-8 * 3_600_000);
    expect(la.offsetAt(at('2026-03-08T10:00:00Z'))).toBe(-7 * 3_600_000);
    expect(la.offsetAt(at('2026-11-01T08:59:00Z'))).toBe(-7 * 3_600_000);
    expect(la.offsetAt(at('2026-11-01T09:00:00Z'))).toBe(-8 * 3_600_000);
    const sydney = ZoneClock.of('Australia/Sydney');
    expect(sydney.offsetAt(at('2026-04-04T15:59:00Z'))).toBe(11 * 3_600_000);
    expect(sydney.offsetAt(at('2026-04-04T16:00:00Z'))).toBe(10 * 3_600_000);
    expect(ZoneClock.of('Asia/Kolkata').offsetAt(at('2026-07-01T00:00:00Z'))).toBe(5.5 * 3_600_000);
  });

  it('counts a 23-hour and a 25-hour local day as one day each', () => {
    const la = ZoneClock.of('America/Los_Angeles');
    const zone = 'America/Los_Angeles';
    expect(la.daysStartingIn(local(zone, '2026-03-08T00:00'), local(zone, '2026-03-09T00:00'))).toBe(1);
    expect(local(zone, '2026-03-09T00:00') - local(zone, '2026-03-08T00:00')).toBe(23 * 3_600_000);
    expect(la.daysStartingIn(local(zone, '2026-11-01T00:00'), local(zone, '2026-11-02T00:00'))).toBe(1);
    expect(la.daysStartingIn(local(zone, '2026-03-01T00:00'), local(zone, '2026-04-01T00:00'))).toBe(31);
    expect(la.daysStartingIn(local(zone, '2026-11-01T00:00'), local(zone, '2026-12-01T00:00'))).toBe(30);
  });

  it('gives each day to the part of a split span that holds its midnight', () => {
    const zone = 'Australia/Sydney';
    const sydney = ZoneClock.of(zone);
    const from = local(zone, '2026-04-01T00:00');
    const to = local(zone, '2026-05-01T00:00');
    for (const cut of [local(zone, '2026-04-05T02:30'), local(zone, '2026-04-10T00:00'), local(zone, '2026-04-10T00:01')]) {
      expect(sydney.daysStartingIn(from, cut) + sydney.daysStartingIn(cut, to)).toBe(30);
    }
    expect(sydney.daysStartingIn(local(zone, '2026-04-10T00:01'), local(zone, '2026-04-11T00:00'))).toBe(0);
    expect(sydney.daysStartingIn(local(zone, '2026-04-10T00:00'), local(zone, '2026-04-10T00:01'))).toBe(1);
  });

  it('finds the first instant of a local day', () => {
    const la = ZoneClock.of('America/Los_Angeles');
    const march8 = Math.round(Date.UTC(2026, 2, 8) / DAY_MS);
    expect(la.startOfDay(march8)).toBe(at('2026-03-08T08:00:00Z'));
    expect(la.startOfDay(march8 + 1)).toBe(at('2026-03-09T07:00:00Z'));
    expect(ZoneClock.of('Asia/Kolkata').startOfDay(march8)).toBe(at('2026-03-07T18:30:00Z'));
  });
});
