/**
 * Time-of-use classification: season, day type and period of an instant, by the local wall-clock time in
 * the tariff's zone.
 *
 * Each schedule compiles to one 1440-entry table (local minute of day -> period) per season and day type,
 * and the season and day type are computed once per local day, so classifying an interval is an offset
 * lookup, two divisions and an array read. On a fall-back day the repeated hour has the same local minutes
 * twice and so the same periods; on a spring-forward day the missing hour never occurs.
 */
import { HolidayCalendar } from './holidays.js';
import { civilFromDayNumber, isoWeekdayOf, ZoneClock } from './local-time.js';
import { seasonMonths } from './tariff.consistency.js';
import type { DayType, ScheduleRule, TariffDocument } from './tariff.schema.js';

const MINUTES_PER_DAY = 1440;
const DAY_TYPES: readonly DayType[] = ['weekday', 'weekend', 'holiday'];
const DEFAULT_WEEKEND = [6, 7];

/** Index-based classification of an instant, as the rating loop uses it. */
export interface InstantClass {
  /** Index into `tariff.seasons`. */
  season: number;
  dayType: DayType;
  /** Index into `tariff.energy.periods`, or -1 when the tariff has no energy schedule. */
  energyPeriod: number;
  /** Index into `tariff.demand.periods`, or -1 when the tariff has no demand schedule. */
  demandPeriod: number;
  /** Index into `tariff.demand.coincident.periods`, or -1 when the tariff has no coincident demand. */
  coincidentPeriod: number;
}

/** [season][day type] -> period index for each local minute of the day. */
type ScheduleTables = Uint16Array[][];

interface LocalDayClass {
  season: number;
  dayType: DayType;
  energy: Uint16Array | undefined;
  demand: Uint16Array | undefined;
  coincident: Uint16Array | undefined;
}

/** Classifies instants for one tariff document. Stateful only through its per-day cache. */
export class TouClassifier {
  readonly clock: ZoneClock;
  private readonly seasonOfMonth: number[] = [];
  private readonly weekend: boolean[] = [];
  private readonly holidays: HolidayCalendar;
  private readonly energyTables: ScheduleTables | undefined;
  private readonly demandTables: ScheduleTables | undefined;
  private readonly coincidentTables: ScheduleTables | undefined;
  private cachedDayNumber = Number.NaN;
  private cachedDay: LocalDayClass | undefined;

  constructor(tariff: TariffDocument) {
    this.clock = ZoneClock.of(tariff.timeZone);
    tariff.seasons.forEach((season, index) => {
      for (const month of seasonMonths(season)) this.seasonOfMonth[month] = index;
    });
    for (const weekday of tariff.weekendDays ?? DEFAULT_WEEKEND) this.weekend[weekday] = true;
    this.holidays = new HolidayCalendar(tariff.holidays);
    const seasonIds = tariff.seasons.map((s) => s.id);
    if (tariff.energy)
      this.energyTables = compileSchedule(tariff.energy.schedule, seasonIds, tariff.energy.periods.map((p) => p.id));
    if (tariff.demand?.periods && tariff.demand.schedule)
      this.demandTables = compileSchedule(tariff.demand.schedule, seasonIds, tariff.demand.periods.map((p) => p.id));
    const coincident = tariff.demand?.coincident;
    if (coincident) this.coincidentTables = compileSchedule(coincident.schedule, seasonIds, coincident.periods.map((p) => p.id));
  }

  /** Classification of an instant (epoch ms) by its local wall-clock time. */
  classify(instant: number): InstantClass {
    const localMinutes = this.clock.localMinutes(instant);
    const dayNumber = Math.floor(localMinutes / MINUTES_PER_DAY);
    const minute = localMinutes - dayNumber * MINUTES_PER_DAY;
    const day = this.localDay(dayNumber);
    return {
      season: day.season,
      dayType: day.dayType,
      energyPeriod: day.energy ? day.energy[minute] : -1,
      demandPeriod: day.demand ? day.demand[minute] : -1,
      coincidentPeriod: day.coincident ? day.coincident[minute] : -1,
    };
  }

  private localDay(dayNumber: number): LocalDayClass {
    if (dayNumber !== this.cachedDayNumber || !this.cachedDay) {
      const { year, month } = civilFromDayNumber(dayNumber);
      const season = this.seasonOfMonth[month];
      const dayType: DayType = this.holidays.isHoliday(dayNumber, year)
        ? 'holiday'
        : this.weekend[isoWeekdayOf(dayNumber)]
          ? 'weekend'
          : 'weekday';
      const typeIndex = DAY_TYPES.indexOf(dayType);
      this.cachedDay = {
        season,
        dayType,
        energy: this.energyTables?.[season][typeIndex],
        demand: this.demandTables?.[season][typeIndex],
        coincident: this.coincidentTables?.[season][typeIndex],
      };
      this.cachedDayNumber = dayNumber;
    }
    return this.cachedDay;
  }
}

/**
 * Compiles schedule rules into per-minute tables. The schema guarantees every (season, weekday) and
 * (season, weekend) is covered; (season, holiday) without a rule shares the weekend table.
 */
function compileSchedule(rules: ScheduleRule[], seasonIds: string[], periodIds: string[]): ScheduleTables {
  const tables: ScheduleTables = seasonIds.map(() => []);
  for (const rule of rules) {
    const table = new Uint16Array(MINUTES_PER_DAY);
    rule.periods.forEach((start, i) => {
      const next = rule.periods[i + 1];
      table.fill(periodIds.indexOf(start.period), minuteOf(start.from), next ? minuteOf(next.from) : MINUTES_PER_DAY);
    });
    for (const season of rule.seasons) {
      for (const dayType of rule.dayTypes) tables[seasonIds.indexOf(season)][DAY_TYPES.indexOf(dayType)] = table;
    }
  }
  for (const bySeason of tables) bySeason[2] ??= bySeason[1];
  return tables;
}

function minuteOf(localTime: string): number {
  return Number(localTime.slice(0, 2)) * 60 + Number(localTime.slice(3, 5));
}
