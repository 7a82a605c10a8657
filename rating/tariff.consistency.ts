/**
 * The rules of a tariff document that span fields: seasons cover each month once, schedules cover each
 * season and day type, ids resolve, tiers increase, price slots do not overlap, tax names are unique.
 * Every violation is reported with its path, so one response lists all of them.
 */
import type { DemandPeriod, DynamicPrice, FlatDemand, ScheduleRule, Season, TariffDocument } from './tariff.schema.js';

type Path = (string | number)[];
/** Receives each violation. */
export type Report = (path: Path, message: string) => void;

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Months of a season, in calendar order of its range (wrapping ranges start at fromMonth). */
export function seasonMonths(season: Pick<Season, 'fromMonth' | 'toMonth'>): number[] {
  const months: number[] = [];
  for (let m = season.fromMonth; ; m = (m % 12) + 1) {
    months.push(m);
    if (m === season.toMonth) return months;
  }
}

export function checkTariffConsistency(tariff: TariffDocument, report: Report): void {
  const seasonIds = checkSeasons(tariff.seasons, report);
  checkUnique(tariff.weekendDays ?? [], ['weekendDays'], report);
  tariff.holidays?.rules.forEach((rule, i) => {
    if (rule.type === 'fixed' && rule.day > DAYS_IN_MONTH[rule.month - 1])
      report(['holidays', 'rules', i, 'day'], `month ${rule.month} has no day ${rule.day}`);
  });
  if (tariff.energy) {
    const periodIds = tariff.energy.periods.map((p) => p.id);
    checkUnique(periodIds, ['energy', 'periods'], report);
    tariff.energy.periods.forEach((p, i) => checkTiers(p.tiers, ['energy', 'periods', i, 'tiers'], report));
    checkSchedule(tariff.energy.schedule, seasonIds, new Set(periodIds), ['energy', 'schedule'], report);
  }
  if (tariff.demand) checkDemand(tariff.demand, seasonIds, report);
  if (tariff.dynamicPrices) checkDynamicPrices(tariff.dynamicPrices, report);
  checkUnique((tariff.taxes ?? []).map((t) => t.name), ['taxes'], report);
  if (tariff.billingDemand) checkUnique(tariff.billingDemand.lookbackMonths ?? [], ['billingDemand', 'lookbackMonths'], report);
  checkMetering(tariff, report);
}

/** netMetering means the net_metering mode; a net billing balance needs a net billing mode. */
function checkMetering(tariff: TariffDocument, report: Report): void {
  const mode = tariff.meteringMode;
  if (tariff.netMetering && mode !== undefined && mode !== 'net_metering')
    report(['meteringMode'], `netMetering is stated: the mode is net_metering, not ${mode}`);
  if (tariff.netBilling && (tariff.netMetering || mode === 'net_metering' || mode === 'buy_all_sell_all'))
    report(['netBilling'], 'a net billing credit balance needs meteringMode net_billing_instantaneous or net_billing_hourly, and no netMetering');
}

function checkSeasons(seasons: Season[], report: Report): Set<string> {
  const ids = seasons.map((s) => s.id);
  checkUnique(ids, ['seasons'], report);
  const owner = new Map<number, string>();
  for (const season of seasons) {
    for (const m of seasonMonths(season)) {
      const other = owner.get(m);
      if (other !== undefined) report(['seasons'], `month ${m} is in seasons ${other} and ${season.id}`);
      owner.set(m, season.id);
    }
  }
  for (let m = 1; m <= 12; m++) {
    if (!owner.has(m)) report(['seasons'], `month ${m} is in no season`);
  }
  return new Set(ids);
}

interface Demand {
  periods?: DemandPeriod[];
  schedule?: ScheduleRule[];
  flat?: FlatDemand[];
  coincident?: { periods: DemandPeriod[]; schedule: ScheduleRule[] };
  reactive?: { rate: string };
}

function checkDemand(demand: Demand, seasonIds: Set<string>, report: Report): void {
  if (!demand.periods && !demand.flat && !demand.coincident && !demand.reactive)
    report(['demand'], 'needs periods (with schedule), flat, coincident or reactive');
  if (demand.coincident) {
    const { periods, schedule } = demand.coincident;
    const periodIds = periods.map((p) => p.id);
    checkUnique(periodIds, ['demand', 'coincident', 'periods'], report);
    periods.forEach((p, i) => checkTiers(p.tiers, ['demand', 'coincident', 'periods', i, 'tiers'], report));
    checkSchedule(schedule, seasonIds, new Set(periodIds), ['demand', 'coincident', 'schedule'], report);
  }
  if (Boolean(demand.periods) !== Boolean(demand.schedule)) report(['demand'], 'periods and schedule go together');
  if (demand.periods) {
    const periodIds = demand.periods.map((p) => p.id);
    checkUnique(periodIds, ['demand', 'periods'], report);
    demand.periods.forEach((p, i) => checkTiers(p.tiers, ['demand', 'periods', i, 'tiers'], report));
    if (demand.schedule) checkSchedule(demand.schedule, seasonIds, new Set(periodIds), ['demand', 'schedule'], report);
  }
  if (demand.flat) {
    checkUnique(demand.flat.map((f) => f.id), ['demand', 'flat'], report);
    const chargedBy = new Map<string, string>();
    demand.flat.forEach((flat, i) => {
      checkTiers(flat.tiers, ['demand', 'flat', i, 'tiers'], report);
      flat.seasons.forEach((season, j) => {
        const path = ['demand', 'flat', i, 'seasons', j];
        if (!seasonIds.has(season)) report(path, `unknown season ${season}`);
        else if (chargedBy.has(season)) report(path, `season ${season} already has flat demand charge ${chargedBy.get(season)}`);
        chargedBy.set(season, flat.id);
      });
    });
  }
}

/**
 * Tier limits of one unit strictly increase; every tier but the last has one; the last has none. In a
 * period with kWh/kW tiers the kWh limits are steps inside kWh/kW blocks, read by SAM's block conversion
 * (rating/energy-tiers.ts), which gives every order a meaning: no order is required there. A limit of 1e37
 * or more means "no limit" (SAM's and URDB's convention) and is not compared.
 */
function checkTiers(tiers: { max?: string; unit?: string }[], path: Path, report: Report): void {
  const previous = new Map<string, number>();
  const blocks = tiers.some((t) => t.unit === 'kWh/kW' || t.unit === 'kWh/kW daily');
  tiers.forEach((tier, i) => {
    const last = i === tiers.length - 1;
    if (last && tier.max !== undefined) report([...path, i, 'max'], 'the last tier is open-ended and has no max');
    if (!last && tier.max === undefined) report([...path, i, 'max'], 'every tier but the last needs max');
    if (tier.max !== undefined && !blocks && Number(tier.max) < 1e37) {
      const unit = tier.unit ?? 'kWh';
      if (Number(tier.max) <= (previous.get(unit) ?? 0)) report([...path, i, 'max'], `tier limits in ${unit} must strictly increase`);
      previous.set(unit, Number(tier.max));
    }
  });
}

function checkSchedule(rules: ScheduleRule[], seasonIds: Set<string>, periodIds: Set<string>, path: Path, report: Report): void {
  const coveredBy = new Map<string, number>();
  rules.forEach((rule, i) => {
    rule.seasons.forEach((season, j) => {
      if (!seasonIds.has(season)) report([...path, i, 'seasons', j], `unknown season ${season}`);
      for (const dayType of rule.dayTypes) {
        const key = `${season}/${dayType}`;
        if (coveredBy.has(key)) report([...path, i], `${dayType} of season ${season} is already covered by rule ${coveredBy.get(key)}`);
        coveredBy.set(key, i);
      }
    });
    let previousMinute = -1;
    rule.periods.forEach((start, j) => {
      const minute = Number(start.from.slice(0, 2)) * 60 + Number(start.from.slice(3, 5));
      if (j === 0 && minute !== 0) report([...path, i, 'periods', 0, 'from'], 'the first period starts at 00:00');
      if (minute <= previousMinute) report([...path, i, 'periods', j, 'from'], 'period starts must increase');
      previousMinute = minute;
      if (!periodIds.has(start.period)) report([...path, i, 'periods', j, 'period'], `unknown period ${start.period}`);
    });
  });
  for (const season of seasonIds) {
    for (const dayType of ['weekday', 'weekend']) {
      if (!coveredBy.has(`${season}/${dayType}`)) report(path, `no rule covers ${dayType} of season ${season}`);
    }
  }
}

function checkDynamicPrices(prices: DynamicPrice[], report: Report): void {
  const slots = prices.map((p, i) => ({ i, start: Date.parse(p.start), end: Date.parse(p.end) }));
  for (const slot of slots) {
    if (!(slot.end > slot.start)) report(['dynamicPrices', slot.i, 'end'], 'end must be after start');
  }
  slots.sort((a, b) => a.start - b.start);
  for (let k = 1; k < slots.length; k++) {
    if (slots[k].start < slots[k - 1].end) report(['dynamicPrices', slots[k].i], `overlaps dynamicPrices[${slots[k - 1].i}]`);
  }
}

function checkUnique<T>(values: T[], path: Path, report: Report): void {
  const seen = new Set<T>();
  for (const value of values) {
    if (seen.has(value)) report(path, `duplicate ${String(value)}`);
    seen.add(value);
  }
}
