/**
 * URDB schedules -> native seasons and schedule rules.
 *
 * URDB describes time of use as 12 x 24 tables (month x hour -> zero-based period index) for weekdays and
 * weekends, separately for energy and demand, plus `flatdemandmonths` (month -> flat demand period). The
 * native document has seasons (month ranges) with per-day-type period starts; the conversion groups
 * consecutive months whose rows agree in every table into one season.
 */
import type { DemandTier, FlatDemand, ScheduleRule, Season } from './tariff.schema.js';
import type { UrdbIssue, UrdbRate } from './urdb.js';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** A 12 x 24 schedule of zero-based period indexes, or undefined when absent. */
export function schedule(urdb: UrdbRate, field: string, issues: UrdbIssue[]): number[][] | undefined {
  const value = urdb[field];
  if (value === undefined || value === null) return undefined;
  const valid =
    Array.isArray(value) &&
    value.length === 12 &&
    value.every((row) => Array.isArray(row) && row.length === 24 && row.every((p) => Number.isInteger(p) && p >= 0));
  if (!valid) {
    issues.push({ path: `rate.${field}`, message: 'must be 12 months x 24 hours of zero-based period indexes' });
    return undefined;
  }
  return value as number[][];
}

export function flatDemandMonths(urdb: UrdbRate, issues: UrdbIssue[]): number[] | undefined {
  const value = urdb.flatdemandmonths;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length !== 12 || !value.every((p) => Number.isInteger(p) && p >= 0)) {
    issues.push({ path: 'rate.flatdemandmonths', message: 'must be 12 zero-based flat demand period indexes' });
    return undefined;
  }
  return value as number[];
}

export interface UrdbSeason {
  season: Season;
  /** Zero-based month indexes. */
  months: number[];
}

/**
 * Seasons: runs of consecutive months whose rows are identical in every given schedule, the December run
 * joined to the January run when they agree. Non-adjacent months with identical rows stay separate seasons.
 */
export function seasonsOf(rowsByMonth: (unknown[] | undefined)[]): UrdbSeason[] {
  const signature = (m: number) => JSON.stringify(rowsByMonth.map((rows) => rows?.[m]));
  const runs: number[][] = [];
  for (let m = 0; m < 12; m++) {
    const run = runs[runs.length - 1];
    if (run && signature(run[run.length - 1]) === signature(m)) run.push(m);
    else runs.push([m]);
  }
  if (runs.length > 1 && signature(0) === signature(11)) runs[0] = [...runs.pop()!, ...runs[0]];
  return runs.map((months) => {
    const [first, last] = [months[0], months[months.length - 1]];
    const id = runs.length === 1 ? 'all_year' : first === last ? MONTHS[first] : `${MONTHS[first]}-${MONTHS[last]}`;
    return { season: { id, fromMonth: first + 1, toMonth: last + 1 }, months };
  });
}

/** Weekday and weekend rules of every season, period starts on the hour. */
export function scheduleRules(seasons: UrdbSeason[], weekday: number[][], weekend: number[][]): ScheduleRule[] {
  return seasons.flatMap(({ season, months }) => [
    { seasons: [season.id], dayTypes: ['weekday' as const], periods: periodStarts(weekday[months[0]]) },
    { seasons: [season.id], dayTypes: ['weekend' as const], periods: periodStarts(weekend[months[0]]) },
  ]);
}

function periodStarts(hours: number[]): ScheduleRule['periods'] {
  return hours.flatMap((period, hour) =>
    hour > 0 && hours[hour - 1] === period
      ? []
      : [{ from: `${String(hour).padStart(2, '0')}:00`, period: `p${period}` }],
  );
}

/** Every index used by a schedule has a period in the structure. */
export function checkScheduled(
  kind: 'energy' | 'demand',
  periods: unknown[] | undefined,
  weekday: number[][] | undefined,
  weekend: number[][] | undefined,
  issues: UrdbIssue[],
): void {
  const count = periods?.length ?? 0;
  const schedules: [string, number[][] | undefined][] = [
    [`${kind}weekdayschedule`, weekday],
    [`${kind}weekendschedule`, weekend],
  ];
  if (periods && schedules.some(([, rows]) => !rows)) {
    const message = `needs both ${kind}weekdayschedule and ${kind}weekendschedule`;
    issues.push({ path: `rate.${kind}ratestructure`, message });
  }
  for (const [field, rows] of schedules) {
    if (!rows) continue;
    if (!periods) {
      issues.push({ path: `rate.${field}`, message: `schedule without ${kind}ratestructure` });
      continue;
    }
    rows.forEach((row, m) =>
      row.forEach((p, h) => {
        if (p >= count)
          issues.push({ path: `rate.${field}[${m}][${h}]`, message: `period ${p} is not in ${kind}ratestructure` });
      }),
    );
  }
}

/** Flat demand charges `p{i}`, each for the seasons whose months `flatdemandmonths` maps to i. */
export function flatDemandOf(
  structures: DemandTier[][],
  months: number[] | undefined,
  seasons: UrdbSeason[],
  issues: UrdbIssue[],
): FlatDemand[] {
  if (!months) {
    if (structures.length === 1) return [{ id: 'p0', seasons: seasons.map((s) => s.season.id), tiers: structures[0] }];
    issues.push({ path: 'rate.flatdemandmonths', message: 'required when flatdemandstructure has more than one period' });
    return [];
  }
  months.forEach((p, m) => {
    if (p >= structures.length)
      issues.push({ path: `rate.flatdemandmonths[${m}]`, message: `period ${p} is not in flatdemandstructure` });
  });
  return structures.flatMap((tiers, p) => {
    const seasonIds = seasons.filter((s) => months[s.months[0]] === p).map((s) => s.season.id);
    return seasonIds.length ? [{ id: `p${p}`, seasons: seasonIds, tiers }] : [];
  });
}
