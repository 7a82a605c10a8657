/**
 * Wall-clock time of a meter, DST-correct, fast enough for millions of intervals.
 *
 * Offsets come from luxon's IANA zone (tzdata of the running Node). They are cached per UTC hour: the
 * offset at both ends of the hour is looked up once, and only an hour that contains a transition is
 * resolved minute by minute. This is exact as long as a zone changes offset at most once per hour, which
 * holds for every zone in tzdata.
 */
import { IANAZone } from 'luxon';

const MS_PER_MINUTE = 60_000;
const MS_PER_HOUR = 3_600_000;
export const MS_PER_DAY = 86_400_000;

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

export class ZoneClock {
  private readonly zone: IANAZone;
  /** UTC hour number -> offset in minutes, or NaN when the hour contains a transition. */
  private readonly hourOffsets = new Map<number, number>();

  constructor(readonly timezone: string) {
    if (!IANAZone.isValidZone(timezone)) throw new RangeError(`unknown IANA time zone "${timezone}"`);
    this.zone = IANAZone.create(timezone);
  }

  /** UTC offset in minutes at `utcMs`. */
  offsetMinutes(utcMs: number): number {
    const hour = Math.floor(utcMs / MS_PER_HOUR);
    let cached = this.hourOffsets.get(hour);
    if (cached === undefined) {
      const atStart = this.zone.offset(hour * MS_PER_HOUR);
      const atEnd = this.zone.offset((hour + 1) * MS_PER_HOUR - 1);
      cached = atStart === atEnd ? atStart : Number.NaN;
      if (this.hourOffsets.size > 200_000) this.hourOffsets.clear(); // bound memory on very long runs
      this.hourOffsets.set(hour, cached);
    }
    if (!Number.isNaN(cached)) return cached;
    return this.zone.offset(Math.floor(utcMs / MS_PER_MINUTE) * MS_PER_MINUTE);
  }

  /** Wall-clock fields of `utcMs`. */
  localTime(utcMs: number): LocalTime {
    const offsetMinutes = this.offsetMinutes(utcMs);
    const localMs = utcMs + offsetMinutes * MS_PER_MINUTE;
    const dayNumber = Math.floor(localMs / MS_PER_DAY);
    const wall = new Date(localMs);
    const year = wall.getUTCFullYear();
    const utcWeekday = wall.getUTCDay(); // 0 = Sunday
    return {
      year,
      month: wall.getUTCMonth() + 1,
      day: wall.getUTCDate(),
      hour: (localMs - dayNumber * MS_PER_DAY) / MS_PER_HOUR,
      weekday: utcWeekday === 0 ? 7 : utcWeekday,
      dayOfYear: dayNumber - Math.floor(Date.UTC(year, 0, 1) / MS_PER_DAY) + 1,
      dayNumber,
      offsetMinutes,
    };
  }

  /**
   * The instant at which local wall-clock time reads `minutes` after midnight of local day `dayNumber`
   * (minutes may exceed 1440 to mean the following day). In a gap (spring forward) the result is shifted
   * forward by the gap; in a fold (fall back) the earlier instant is returned.
   */
  instantAt(dayNumber: number, minutes: number): number {
    const wallMs = dayNumber * MS_PER_DAY + minutes * MS_PER_MINUTE;
    const near = wallMs - this.offsetMinutes(wallMs) * MS_PER_MINUTE;
    const offsetBefore = this.offsetMinutes(near - 3 * MS_PER_HOUR);
    const offsetAfter = this.offsetMinutes(near + 3 * MS_PER_HOUR);
    let earliest = Number.NaN;
    for (const offset of [offsetBefore, offsetAfter]) {
      const candidate = wallMs - offset * MS_PER_MINUTE;
      if (this.offsetMinutes(candidate) === offset && !(candidate >= earliest)) earliest = candidate;
    }
    // No instant shows this wall time (spring-forward gap): read it with the offset before the gap.
    return Number.isNaN(earliest) ? wallMs - offsetBefore * MS_PER_MINUTE : earliest;
  }

  /** The zone's standard (non-DST) offset in minutes: the smaller of its January and July offsets. */
  standardOffsetMinutes(year = 2025): number {
    return Math.min(this.zone.offset(Date.UTC(year, 0, 15)), this.zone.offset(Date.UTC(year, 6, 15)));
  }
}

const clocks = new Map<string, ZoneClock>();

/** The shared clock of a zone (memoized: the offset cache is worth sharing between meters). */
export function zoneClock(timezone: string): ZoneClock {
  let clock = clocks.get(timezone);
  if (!clock) {
    clock = new ZoneClock(timezone);
    clocks.set(timezone, clock);
  }
  return clock;
}
