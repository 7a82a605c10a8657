/**
 * The local calendar dates a tariff treats as holidays, computed per year from its rules and cached.
 *
 * A rule yields its actual date; an observed-day rule (Saturday -> Friday before or Monday after,
 * Sunday -> Monday after) adds the observed date as well. Observed dates may cross a year end
 * (New Year's Day on a Saturday is observed on Friday 31 December), so each year is computed from the
 * rules of the year before, itself and the year after. An observed date that is already a holiday moves
 * on, in the same direction, to the next weekday that is not.
 */
import { dayNumberOf, isoWeekdayOf } from './local-time.js';
import type { HolidayCalendar as HolidayCalendarDocument, HolidayRule, Observance } from './tariff.schema.js';

const SATURDAY = 6;
const SUNDAY = 7;

interface HolidayInstance {
  actual: number;
  observance: Observance;
}

export class HolidayCalendar {
  private readonly years = new Map<number, Set<number>>();

  constructor(private readonly calendar: HolidayCalendarDocument | undefined) {}

  /** Whether a local day (day number) in `year` is a holiday. */
  isHoliday(dayNumber: number, year: number): boolean {
    return this.datesOf(year).has(dayNumber);
  }

  /** Day numbers of every holiday in a calendar year, actual and observed. */
  datesOf(year: number): ReadonlySet<number> {
    let dates = this.years.get(year);
    if (!dates) {
      dates = this.compute(year);
      this.years.set(year, dates);
    }
    return dates;
  }

  private compute(year: number): Set<number> {
    const rules = this.calendar?.rules ?? [];
    const instances: HolidayInstance[] = [];
    for (const y of [year - 1, year, year + 1]) {
      for (const rule of rules) {
        const actual = actualDate(rule, y);
        const observance = rule.observance ?? this.calendar?.observance ?? {};
        if (actual !== undefined) instances.push({ actual, observance });
      }
    }
    instances.sort((a, b) => a.actual - b.actual);
    const holidays = new Set(instances.map((h) => h.actual));
    for (const instance of instances) {
      const step = observedStep(instance);
      if (step === 0) continue;
      let observed = instance.actual + step;
      const direction = Math.sign(step);
      while (holidays.has(observed) || isoWeekdayOf(observed) >= SATURDAY) observed += direction;
      holidays.add(observed);
    }
    const first = dayNumberOf(year, 1, 1);
    const last = dayNumberOf(year + 1, 1, 1);
    return new Set([...holidays].filter((d) => d >= first && d < last));
  }
}

/** Days from the actual date to the observed one, 0 when the holiday is not moved. */
function observedStep({ actual, observance }: HolidayInstance): number {
  const weekday = isoWeekdayOf(actual);
  if (weekday === SATURDAY && observance.saturday === 'friday_before') return -1;
  if (weekday === SATURDAY && observance.saturday === 'monday_after') return 2;
  if (weekday === SUNDAY && observance.sunday === 'monday_after') return 1;
  return 0;
}

/** Day number of a rule's actual date in `year`, or undefined when the rule has none that year. */
function actualDate(rule: HolidayRule, year: number): number | undefined {
  switch (rule.type) {
    case 'fixed': {
      const dayNumber = dayNumberOf(year, rule.month, rule.day);
      return dayNumber < dayNumberOf(year, rule.month + 1, 1) ? dayNumber : undefined; // Feb 29 outside leap years
    }
    case 'nth_weekday': {
      const first = dayNumberOf(year, rule.month, 1);
      return first + ((rule.weekday - isoWeekdayOf(first) + 7) % 7) + (rule.nth - 1) * 7;
    }
    case 'last_weekday': {
      const last = dayNumberOf(year, rule.month + 1, 1) - 1;
      return last - ((isoWeekdayOf(last) - rule.weekday + 7) % 7);
    }
    case 'date': {
      const [y, m, d] = rule.date.split('-').map(Number);
      return y === year ? dayNumberOf(y, m, d) : undefined;
    }
  }
}
