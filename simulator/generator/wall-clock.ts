/**
 * The generator's reading of a meter's wall clock: the fractional hour, day of year and weekday a load
 * profile follows, DST-correct. Offsets and wall-clock arithmetic are the product's one clock
 * (common/time.ts); this adds only what profiles need on top.
 */
import { DAY_MS, HOUR_MS, MINUTE_MS, ZoneClock, civilFromDayNumber, dayNumberOf, isoWeekdayOf, utcMillis } from '../../common/time.js';

export const MS_PER_DAY = DAY_MS;

/** The wall-clock reading of one instant in one zone. */
export interface LocalTime {
  year: number;
  /** 1-12 */
  month: number;
  /** 1-31 */
  day: number;
  /** Hours since local midnight, fractional (14.25 = 14:15). */
  hour: number;
  /** ISO weekday, 1 = Monday ... 7 = Sunday */
  weekday: number;
  /** 1-366 */
  dayOfYear: number;
  /** Days since 1970-01-01 of the local calendar date (a key for "this local day"). */
  dayNumber: number;
  /** UTC offset in minutes at that instant (+60 for CET, -240 for EDT). */
  offsetMinutes: number;
}

/** A meter site's wall clock. Obtain with {@link wallClock}; instances are shared per zone. */
export class WallClock {
  private readonly clock: ZoneClock;

  constructor(readonly timezone: string) {
    try {
      this.clock = ZoneClock.of(timezone);
    } catch {
      throw new RangeError(`unknown IANA time zone "${timezone}"`);
    }
  }

  /** UTC offset in minutes at `utcMs`. */
  offsetMinutes(utcMs: number): number {
    return this.clock.offsetAt(utcMs) / MINUTE_MS;
  }

  /** Wall-clock fields of `utcMs`. */
  localTime(utcMs: number): LocalTime {
    const offsetMs = this.clock.offsetAt(utcMs);
    const localMs = utcMs + offsetMs;
    const dayNumber = Math.floor(localMs / DAY_MS);
    const { year, month, day } = civilFromDayNumber(dayNumber);
    return {
      year,
      month,
      day,
      hour: (localMs - dayNumber * DAY_MS) / HOUR_MS,
      weekday: isoWeekdayOf(dayNumber),
      dayOfYear: dayNumber - dayNumberOf(year, 1, 1) + 1,
      dayNumber,
      offsetMinutes: offsetMs / MINUTE_MS,
    };
  }

  /**
   * The instant at which local wall-clock time reads `minutes` after midnight of local day `dayNumber`
   * (minutes may exceed 1440 to mean the following day). In a gap (spring forward) the result is shifted
   * forward by the gap; in a fold (fall back) the earlier instant is returned.
   */
  instantAt(dayNumber: number, minutes: number): number {
    return this.clock.instantAt(dayNumber, minutes);
  }

  /** The zone's standard (non-DST) offset in minutes: the smaller of its January and July offsets. */
  standardOffsetMinutes(year = 2025): number {
    return Math.min(this.offsetMinutes(utcMillis(year, 1, 15)), this.offsetMinutes(utcMillis(year, 7, 15)));
  }
}

const clocks = new Map<string, WallClock>();

/** The shared wall clock of a zone. */
export function wallClock(timezone: string): WallClock {
  let clock = clocks.get(timezone);
  if (!clock) {
    clock = new WallClock(timezone);
    clocks.set(timezone, clock);
  }
  return clock;
}
