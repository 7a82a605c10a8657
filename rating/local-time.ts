/**
 * Local wall-clock time in an IANA zone, computed arithmetically from cached UTC offsets.
 *
 * Asking the platform for a zone's offset costs microseconds per call, too slow for thousands of intervals.
 * A {@link ZoneClock} asks once per day of a UTC year, locates each offset change (DST) to the minute,
 * caches the result per zone and year, and answers every later question with integer arithmetic.
 * Assumption: a zone changes its offset at most once within any 24 hours (true of the tz database since
 * the offsets were standardised).
 *
 * Vocabulary: an *instant* is epoch milliseconds UTC; a *local day number* counts local calendar days
 * since 1970-01-01 (so 1970-01-01 local is day 0 in every zone); *minute of day* is the local wall-clock
 * minute, 0..1439, so the repeated hour of a fall-back day yields the same minutes twice.
 */
import { IANAZone } from 'luxon';

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** Local calendar date and wall-clock minute of an instant. */
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

/** Local calendar arithmetic for one IANA zone. Obtain with {@link ZoneClock.of}; instances are shared. */
export class ZoneClock {
  private static readonly clocks = new Map<string, ZoneClock>();

  static of(timeZone: string): ZoneClock {
    let clock = ZoneClock.clocks.get(timeZone);
    if (!clock) {
      if (!IANAZone.isValidZone(timeZone)) throw new RangeError(`not an IANA time zone: ${timeZone}`);
      clock = new ZoneClock(IANAZone.create(timeZone));
      ZoneClock.clocks.set(timeZone, clock);
    }
    return clock;
  }

  private readonly years = new Map<number, OffsetYear>();
  private segment: OffsetSegment = { start: 0, end: 0, offsetMs: 0 };

  private constructor(private readonly zone: IANAZone) {}

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
   * First instant of a local day: local midnight, or the first existing minute when a DST change
   * skips midnight.
   */
  startOfDay(dayNumber: number): number {
    let low = Math.floor((dayNumber * DAY_MS - 15 * 3_600_000) / MINUTE_MS);
    let high = Math.ceil((dayNumber * DAY_MS + 15 * 3_600_000) / MINUTE_MS);
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      if (this.localDay(mid * MINUTE_MS) >= dayNumber) high = mid;
      else low = mid + 1;
    }
    return low * MINUTE_MS;
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
    const start = Date.UTC(year, 0, 1);
    const end = Date.UTC(year + 1, 0, 1);
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

/** Calendar date of a day number (days since 1970-01-01), proleptic Gregorian. */
export function civilFromDayNumber(dayNumber: number): { year: number; month: number; day: number } {
  const date = new Date(dayNumber * DAY_MS);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** Day number of a calendar date. */
export function dayNumberOf(year: number, month: number, day: number): number {
  return Math.round(Date.UTC(year, month - 1, day) / DAY_MS);
}

/** ISO weekday (1 Monday .. 7 Sunday) of a day number; 1970-01-01 was a Thursday. */
export function isoWeekdayOf(dayNumber: number): number {
  return ((((dayNumber + 3) % 7) + 7) % 7) + 1;
}

/** Number of days in a calendar month. */
export function daysInMonth(year: number, month: number): number {
  return dayNumberOf(year, month + 1, 1) - dayNumberOf(year, month, 1);
}
