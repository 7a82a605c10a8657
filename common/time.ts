/**
 * The one clock of the product: instants, calendar fields and the wall clock of an IANA zone.
 *
 * Vocabulary: an *instant* is epoch milliseconds UTC; a *day number* counts calendar days since 1970-01-01
 * (so 1970-01-01 local is day 0 in every zone); *minute of day* is the local wall-clock minute, 0..1439, so
 * the repeated hour of a fall-back day yields the same minutes twice. Every calendar year 0000-9999 is exact
 * (`Date.UTC` alone reads years 0-99 as 1900-1999).
 *
 * Imports only luxon (its IANA zones; the tz database of the running Node).
 */
import { IANAZone } from 'luxon';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** 400 Gregorian years are exactly this many days: shifting a date by 400 years keeps its weekday and leap days. */
const DAYS_PER_400_YEARS = 146_097;

/**
 * Epoch milliseconds of a UTC calendar time (month 1..12), exact for every year, with `Date.UTC`'s
 * overflow rules (month 13 is January of the next year, day 0 the last day of the previous month).
 */
export function utcMillis(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return Date.UTC(year + 400, month - 1, day, hour, minute, second, ms) - DAYS_PER_400_YEARS * DAY_MS;
}

/** ISO 8601 in UTC as the contract writes instants: milliseconds only when they are not zero. */
export function isoUtc(instant: number): string {
  return new Date(instant).toISOString().replace('.000Z', 'Z');
}

/** Calendar date of a day number, proleptic Gregorian. */
export function civilFromDayNumber(dayNumber: number): { year: number; month: number; day: number } {
  const date = new Date(dayNumber * DAY_MS);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** Day number of a calendar date (month 1..12; overflow as in {@link utcMillis}). */
export function dayNumberOf(year: number, month: number, day: number): number {
  return Math.round(utcMillis(year, month, day) / DAY_MS);
}

/** ISO weekday (1 Monday .. 7 Sunday) of a day number; 1970-01-01 was a Thursday. */
export function isoWeekdayOf(dayNumber: number): number {
  return ((((dayNumber + 3) % 7) + 7) % 7) + 1;
}

/** Number of days in a calendar month (1..12). */
export function daysInMonth(year: number, month: number): number {
  return dayNumberOf(year, month + 1, 1) - dayNumberOf(year, month, 1);
}

/** Local calendar date and wall-clock time of an instant. */
export interface LocalTime {
  /** Local calendar days since 1970-01-01. */
  dayNumber: number;
  /** Local wall-clock minute of the day, 0..1439. */
  minuteOfDay: number;
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
  /** ISO weekday: 1 Monday .. 7 Sunday. */
  isoWeekday: number;
}

interface OffsetSegment {
  start: number;
  end: number;
  offsetMs: number;
}

/** Offsets of one UTC year: the offset at its first instant and every change within it. */
interface OffsetYear {
  start: number;
  end: number;
  changes: { at: number; offsetMs: number }[];
  startOffsetMs: number;
}

/**
 * Wall-clock arithmetic for one IANA zone, computed from cached UTC offsets. Asking the platform for a
 * zone's offset costs microseconds per call, too slow for millions of intervals: a clock asks once per day
 * of a UTC year, locates each offset change (DST) to the minute, caches the result per year and answers
 * every later question with integer arithmetic. Assumption: a zone changes its offset at most once within
 * any 24 hours (true of the tz database since offsets were standardised).
 * Obtain with {@link ZoneClock.of}; instances are shared.
 */
export class ZoneClock {
  private static readonly clocks = new Map<string, ZoneClock>();

  static of(timeZone: string): ZoneClock {
    let clock = ZoneClock.clocks.get(timeZone);
    if (!clock) {
      if (!IANAZone.isValidZone(timeZone)) throw new RangeError(`not an IANA time zone: ${timeZone}`);
      clock = new ZoneClock(timeZone, IANAZone.create(timeZone));
      ZoneClock.clocks.set(timeZone, clock);
    }
    return clock;
  }

  private readonly years = new Map<number, OffsetYear>();
  private segment: OffsetSegment = { start: 0, end: 0, offsetMs: 0 };

  private constructor(
    readonly timeZone: string,
    private readonly zone: IANAZone,
  ) {}

  /** UTC offset in milliseconds at an instant (local wall clock = instant + offset). */
  offsetAt(instant: number): number {
    if (instant < this.segment.start || instant >= this.segment.end) this.segment = this.segmentAt(instant);
    return this.segment.offsetMs;
  }

  /** Local wall-clock minutes since 1970-01-01 00:00 local (day number x 1440 + minute of day). */
  localMinutes(instant: number): number {
    return Math.floor((instant + this.offsetAt(instant)) / MINUTE_MS);
  }

  /** Local day number of an instant. */
  localDay(instant: number): number {
    return Math.floor((instant + this.offsetAt(instant)) / DAY_MS);
  }

  localTime(instant: number): LocalTime {
    const wall = instant + this.offsetAt(instant);
    const dayNumber = Math.floor(wall / DAY_MS);
    const { year, month, day } = civilFromDayNumber(dayNumber);
    return {
      dayNumber,
      minuteOfDay: Math.floor((wall - dayNumber * DAY_MS) / MINUTE_MS),
      year,
      month,
      day,
      isoWeekday: isoWeekdayOf(dayNumber),
    };
  }

  /**
   * First instant of a local day: local midnight, or the first existing minute when a DST change skips
   * midnight.
   */
  startOfDay(dayNumber: number): number {
    let low = Math.floor((dayNumber * DAY_MS - 15 * HOUR_MS) / MINUTE_MS);
    let high = Math.ceil((dayNumber * DAY_MS + 15 * HOUR_MS) / MINUTE_MS);
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      if (this.localDay(mid * MINUTE_MS) >= dayNumber) high = mid;
      else low = mid + 1;
    }
    return low * MINUTE_MS;
  }

  /**
   * The instant at which the wall clock reads `minutes` after midnight of local day `dayNumber` (minutes
   * may exceed 1440 to mean a following day). In a gap (spring forward) the wall time is read with the
   * offset before the gap, so the result lies that far after the gap's start; in an overlap (fall back)
   * the earlier instant is returned.
   */
  instantAt(dayNumber: number, minutes: number): number {
    const wall = dayNumber * DAY_MS + minutes * MINUTE_MS;
    const near = wall - this.offsetAt(wall);
    const offsetBefore = this.offsetAt(near - 3 * HOUR_MS);
    const offsetAfter = this.offsetAt(near + 3 * HOUR_MS);
    let earliest = Number.NaN;
    for (const offset of [offsetBefore, offsetAfter]) {
      const candidate = wall - offset;
      if (this.offsetAt(candidate) === offset && !(candidate >= earliest)) earliest = candidate;
    }
    return Number.isNaN(earliest) ? wall - offsetBefore : earliest;
  }

  /**
   * Number of local calendar days whose first instant lies in [from, to). Additive: splitting a span
   * anywhere never changes the total, and a day belongs to the part that holds its midnight.
   */
  daysStartingIn(from: number, to: number): number {
    if (to <= from) return 0;
    const first = this.localDay(from);
    const startsBefore = this.localDay(from - 1) === first;
    return this.localDay(to - 1) - first + 1 - (startsBefore ? 1 : 0);
  }

  private segmentAt(instant: number): OffsetSegment {
    const offsets = this.offsetYear(civilFromDayNumber(Math.floor(instant / DAY_MS)).year);
    let start = offsets.start;
    let offsetMs = offsets.startOffsetMs;
    let end = offsets.end;
    for (const change of offsets.changes) {
      if (change.at <= instant) {
        start = change.at;
        offsetMs = change.offsetMs;
      } else {
        end = change.at;
        break;
      }
    }
    return { start, end, offsetMs };
  }

  private offsetYear(year: number): OffsetYear {
    let offsets = this.years.get(year);
    if (offsets) return offsets;
    const start = utcMillis(year, 1, 1);
    const end = utcMillis(year + 1, 1, 1);
    const startOffsetMs = this.platformOffset(start);
    const changes: OffsetYear['changes'] = [];
    let previous = startOffsetMs;
    for (let previousAt = start; previousAt < end; ) {
      const at = Math.min(previousAt + DAY_MS, end);
      const offsetMs = this.platformOffset(at);
      if (offsetMs !== previous) {
        const changeAt = this.findChange(previousAt, at, offsetMs);
        if (changeAt < end) changes.push({ at: changeAt, offsetMs });
        previous = offsetMs;
      }
      previousAt = at;
    }
    offsets = { start, end, changes, startOffsetMs };
    this.years.set(year, offsets);
    return offsets;
  }

  /** First minute in (low, high] at which the offset is `offsetMs`, assuming one change in between. */
  private findChange(low: number, high: number, offsetMs: number): number {
    let lowMinute = Math.floor(low / MINUTE_MS);
    let highMinute = Math.ceil(high / MINUTE_MS);
    while (highMinute - lowMinute > 1) {
      const mid = Math.floor((lowMinute + highMinute) / 2);
      if (this.platformOffset(mid * MINUTE_MS) === offsetMs) highMinute = mid;
      else lowMinute = mid;
    }
    return highMinute * MINUTE_MS;
  }

  private platformOffset(instant: number): number {
    return this.zone.offset(instant) * MINUTE_MS;
  }
}
