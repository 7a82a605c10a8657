import { describe, expect, it } from 'vitest';
import { HolidayCalendar } from './holidays.js';
import { civilFromDayNumber } from './local-time.js';
import type { HolidayCalendar as HolidayCalendarDocument } from './tariff.schema.js';

function isoDates(calendar: HolidayCalendar, year: number): string[] {
  return [...calendar.datesOf(year)]
    .sort((a, b) => a - b)
    .map((d) => {
      const { year: y, month, day } = civilFromDayNumber(d);
      return `${y}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
    });
}

const US_FEDERAL: HolidayCalendarDocument = {
  observance: { saturday: 'friday_before', sunday: 'monday_after' },
  rules: [
    { type: 'fixed', name: "New Year's Day", month: 1, day: 1 },
    { type: 'nth_weekday', name: 'Martin Luther King Jr. Day', month: 1, weekday: 1, nth: 3 },
    { type: 'nth_weekday', name: "Washington's Birthday", month: 2, weekday: 1, nth: 3 },
    { type: 'last_weekday', name: 'Memorial Day', month: 5, weekday: 1 },
    { type: 'fixed', name: 'Juneteenth', month: 6, day: 19 },
    { type: 'fixed', name: 'Independence Day', month: 7, day: 4 },
    { type: 'nth_weekday', name: 'Labor Day', month: 9, weekday: 1, nth: 1 },
    { type: 'nth_weekday', name: 'Columbus Day', month: 10, weekday: 1, nth: 2 },
    { type: 'fixed', name: 'Veterans Day', month: 11, day: 11 },
    { type: 'nth_weekday', name: 'Thanksgiving Day', month: 11, weekday: 4, nth: 4 },
    { type: 'fixed', name: 'Christmas Day', month: 12, day: 25 },
  ],
};

describe('HolidayCalendar', () => {
  it('computes the US federal holidays of 2026, Independence Day (a Saturday) observed on Friday July 3', () => {
    // The OPM 2026 list, plus the actual dates that fall on a weekend.
    expect(isoDates(new HolidayCalendar(US_FEDERAL), 2026)).toEqual([
      '2026-01-01', '2026-01-19', '2026-02-16', '2026-05-25', '2026-06-19', '2026-07-03', '2026-07-04',
      '2026-09-07', '2026-10-12', '2026-11-11', '2026-11-26', '2026-12-25',
    ]);
  });

  it('observes a Sunday holiday on Monday: Independence Day 2021 on July 5', () => {
    const dates = isoDates(new HolidayCalendar(US_FEDERAL), 2021);
    expect(dates).toContain('2021-07-04');
    expect(dates).toContain('2021-07-05');
    expect(dates).toContain('2021-12-24'); // Christmas 2021 is a Saturday
  });

  it("moves New Year's Day 2022 (a Saturday) to Friday December 31 of the year before", () => {
    const calendar = new HolidayCalendar(US_FEDERAL);
    expect(isoDates(calendar, 2021)).toContain('2021-12-31');
    expect(isoDates(calendar, 2022)).toContain('2022-01-01');
    expect(isoDates(calendar, 2022)).not.toContain('2021-12-31');
  });

  it('applies a per-holiday observance over the calendar default (PG&E: no Saturday move)', () => {
    const calendar = new HolidayCalendar({
      observance: { saturday: 'friday_before', sunday: 'monday_after' },
      rules: [{ type: 'fixed', name: 'Independence Day', month: 7, day: 4, observance: { saturday: 'none', sunday: 'monday_after' } }],
    });
    expect(isoDates(calendar, 2026)).toEqual(['2026-07-04']);
    expect(isoDates(calendar, 2027)).toEqual(['2027-07-04', '2027-07-05']);
  });

  it('gives UK substitute days: Christmas on Saturday -> Monday 27, Boxing Day on Sunday -> Tuesday 28', () => {
    const calendar = new HolidayCalendar({
      observance: { saturday: 'monday_after', sunday: 'monday_after' },
      rules: [
        { type: 'fixed', name: 'Christmas Day', month: 12, day: 25 },
        { type: 'fixed', name: 'Boxing Day', month: 12, day: 26 },
        { type: 'date', name: 'Good Friday', date: '2021-04-02' },
      ],
    });
    expect(isoDates(calendar, 2021)).toEqual(['2021-04-02', '2021-12-25', '2021-12-26', '2021-12-27', '2021-12-28']);
  });

  it('has February 29 only in leap years and one-off dates only in their year', () => {
    const calendar = new HolidayCalendar({
      rules: [
        { type: 'fixed', name: 'Leap day', month: 2, day: 29 },
        { type: 'date', name: 'Coronation', date: '2023-05-08' },
      ],
    });
    expect(isoDates(calendar, 2028)).toEqual(['2028-02-29']);
    expect(isoDates(calendar, 2027)).toEqual([]);
    expect(isoDates(calendar, 2023)).toEqual(['2023-05-08']);
  });

  it('finds the fourth Thursday of November and the last Monday of May across years', () => {
    const calendar = new HolidayCalendar({
      rules: [
        { type: 'nth_weekday', name: 'Thanksgiving Day', month: 11, weekday: 4, nth: 4 },
        { type: 'last_weekday', name: 'Memorial Day', month: 5, weekday: 1 },
      ],
    });
    expect(isoDates(calendar, 2024)).toEqual(['2024-05-27', '2024-11-28']);
    expect(isoDates(calendar, 2025)).toEqual(['2025-05-26', '2025-11-27']);
    expect(isoDates(calendar, 2027)).toEqual(['2027-05-31', '2027-11-25']);
  });
});
