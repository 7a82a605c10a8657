/**
 * Converts one URDB rate object (OpenEI utility_rates API versions 3 to 8, `detail=full`) and an IANA
 * time zone into a native tariff document (CONTRACT.md section 4).
 *
 * Mapping:
 * - `energyratestructure[i]` -> energy period `p{i}` (URDB's zero-based index); tiers keep `max`, `rate`,
 *   `adj`; tier 1's `sell` is the period's export rate.
 * - The 12 x 24 schedules -> seasons of consecutive months whose weekday, weekend and flat demand rows are
 *   identical (named by their months: "jun-sep", "oct-may"), each with weekday and weekend period starts
 *   on the hour. URDB has no holidays, so none are defined.
 * - `demandratestructure` + demand schedules -> demand periods `p{i}`; `flatdemandstructure[i]` -> flat
 *   demand charge `p{i}` for the seasons whose months `flatdemandmonths` maps to i; `demandwindow` (15, 30
 *   or 60) -> windowMinutes.
 * - `fixedchargefirstmeter` ($/day, $/month; `fixedmonthlycharge` in API v3) -> a fixed charge;
 *   `mincharge` ($/day, $/month; `minmonthlycharge` in v3) -> the minimum charge. Currency USD.
 *
 * Refused, each issue naming the field by its path (`rate.energyratestructure[0][1].unit`): every
 * feature the engine does not rate (see urdb-fields.ts), units other than kWh and kW, net metering rules
 * (`dgrules` "Net Metering" / "Net Billing Hourly", `usenetmetering`) since imports are billed gross,
 * per-tier sell rates that differ from tier 1's, a `max` on a last tier, and unknown fields.
 */
import { IANAZone } from 'luxon';
import { Dec } from './money.js';
import type { DemandTier, EnergyPeriod, FixedCharge, TariffDocument } from './tariff.schema.js';
import { tariffSchema } from './tariff.schema.js';
import { CONVERTED_FIELDS, INFORMATIVE_FIELDS, REFUSED_WHEN_SET } from './urdb-fields.js';
import { checkScheduled, flatDemandMonths, flatDemandOf, schedule, scheduleRules, seasonsOf } from './urdb-schedules.js';

export interface UrdbIssue {
  /** Path of the field in the request, e.g. "rate.energyratestructure[0][1].unit". */
  path: string;
  message: string;
}

/** The URDB rate cannot be imported; `issues` lists every problem, not just the first. */
export class UrdbImportError extends Error {
  constructor(readonly issues: UrdbIssue[]) {
    super(`URDB rate refused: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'UrdbImportError';
  }
}

export interface UrdbImportOptions {
  /** IANA zone of the utility's clock, in which the schedules are read. */
  timeZone: string;
  /** Tariff id; default: the URDB label. */
  id?: string;
}

/** A URDB rate object: field name -> value as the API returns it. */
export type UrdbRate = Record<string, unknown>;

const ENERGY_TIER_FIELDS = new Set(['rate', 'max', 'unit', 'adj', 'sell']);
const DEMAND_TIER_FIELDS = new Set(['rate', 'max', 'adj']);
const GROSS_DG_RULES = new Set(['Net Billing Instantaneous', 'Buy All Sell All']);
const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
const UNKNOWN_FIELD = 'unknown field: not a URDB field this importer knows, refused rather than ignored';

/** Converts a URDB rate; throws UrdbImportError listing every unsupported or malformed field. */
export function urdbToTariff(rate: unknown, options: UrdbImportOptions): TariffDocument {
  if (rate === null || typeof rate !== 'object' || Array.isArray(rate))
    throw new UrdbImportError([{ path: 'rate', message: 'must be one URDB rate object' }]);
  const urdb = rate as UrdbRate;
  const issues: UrdbIssue[] = [...fieldIssues(urdb)];
  if (!IANAZone.isValidZone(options.timeZone)) issues.push({ path: 'timezone', message: 'must be an IANA time zone' });
  const id = options.id ?? text(urdb.label);
  if (!id) issues.push({ path: 'rate.label', message: 'a URDB label (or an id) is required' });

  const energyWeekday = schedule(urdb, 'energyweekdayschedule', issues);
  const energyWeekend = schedule(urdb, 'energyweekendschedule', issues);
  const demandWeekday = schedule(urdb, 'demandweekdayschedule', issues);
  const demandWeekend = schedule(urdb, 'demandweekendschedule', issues);
  const flatMonths = flatDemandMonths(urdb, issues);
  const seasons = seasonsOf([energyWeekday, energyWeekend, demandWeekday, demandWeekend, flatMonths]);
  const energyPeriods = energyPeriodsOf(urdb, issues);
  const toDemandTiers = (tiers: unknown[], path: string) => demandTiers(tiers, path, issues);
  const demandPeriods = structure(urdb, 'demandratestructure', issues, toDemandTiers);
  const flatStructures = structure(urdb, 'flatdemandstructure', issues, toDemandTiers);
  checkScheduled('energy', energyPeriods, energyWeekday, energyWeekend, issues);
  checkScheduled('demand', demandPeriods, demandWeekday, demandWeekend, issues);
  checkUnits(urdb, issues);
  const windowMinutes = demandWindow(urdb, issues);
  const fixedCharges = fixedChargesOf(urdb, issues);
  const minimumCharge = minimumChargeOf(urdb, issues);
  const flat = flatStructures ? flatDemandOf(flatStructures, flatMonths, seasons, issues) : [];
  if (issues.length || id === undefined) throw new UrdbImportError(issues);

  const demand: NonNullable<TariffDocument['demand']> = {
    ...(windowMinutes ? { windowMinutes } : {}),
    ...(demandPeriods && demandWeekday && demandWeekend
      ? {
          periods: demandPeriods.map((tiers, i) => ({ id: `p${i}`, tiers })),
          schedule: scheduleRules(seasons, demandWeekday, demandWeekend),
        }
      : {}),
    ...(flat.length ? { flat } : {}),
  };
  const tariff: TariffDocument = {
    id,
    name: text(urdb.name) ?? id,
    ...(text(urdb.description) ? { description: text(urdb.description) } : {}),
    currency: { code: 'USD', minorUnit: 2 },
    timeZone: options.timeZone,
    seasons: seasons.map(({ season }) => season),
    ...(energyPeriods && energyWeekday && energyWeekend
      ? { energy: { periods: energyPeriods, schedule: scheduleRules(seasons, energyWeekday, energyWeekend) } }
      : {}),
    ...(demand.periods || demand.flat ? { demand } : {}),
    ...(fixedCharges.length ? { fixedCharges } : {}),
    ...(minimumCharge ? { minimumCharge } : {}),
    urdb: {
      label: text(urdb.label) ?? id,
      ...(text(urdb.uri) ? { uri: text(urdb.uri) } : {}),
      ...(text(urdb.utility) ? { utility: text(urdb.utility) } : {}),
      ...(text(urdb.name) ? { name: text(urdb.name) } : {}),
    },
  };
  const parsed = tariffSchema.safeParse(tariff);
  if (!parsed.success)
    throw new UrdbImportError(
      parsed.error.issues.map((issue) => ({ path: `tariff.${issue.path.join('.')}`, message: issue.message })),
    );
  return tariff;
}

/** Unknown fields, refused features, and net metering rules the engine does not apply. */
function fieldIssues(urdb: UrdbRate): UrdbIssue[] {
  const issues: UrdbIssue[] = [];
  for (const [field, value] of Object.entries(urdb)) {
    const path = `rate.${field}`;
    const refuse = REFUSED_WHEN_SET[field];
    if (refuse) issues.push(...refuse(value, path));
    else if (!INFORMATIVE_FIELDS.has(field) && !CONVERTED_FIELDS.has(field))
      issues.push({ path, message: UNKNOWN_FIELD });
  }
  const dgRules = urdb.dgrules;
  if (dgRules !== undefined && dgRules !== null && dgRules !== '' && !GROSS_DG_RULES.has(String(dgRules))) {
    const message =
      `"${String(dgRules)}" nets import against export; the engine bills import gross and credits export ` +
      `at the sell rate (accepted: ${[...GROSS_DG_RULES].join(', ')})`;
    issues.push({ path: 'rate.dgrules', message });
  }
  if (urdb.usenetmetering === true || urdb.usenetmetering === 'true') {
    const message = 'net metering (buy = sell netting) is not supported; imports are billed gross';
    issues.push({ path: 'rate.usenetmetering', message });
  }
  return issues;
}

function checkUnits(urdb: UrdbRate, issues: UrdbIssue[]): void {
  const unitOf: [string, string[]][] = [
    ['demandrateunit', ['demandratestructure']],
    ['flatdemandunit', ['flatdemandstructure']],
    ['demandunits', ['demandratestructure', 'flatdemandstructure']],
  ];
  for (const [field, structures] of unitOf) {
    const unit = urdb[field];
    const used = structures.some((s) => urdb[s] !== undefined && urdb[s] !== null);
    if (used && unit !== undefined && unit !== null && unit !== 'kW')
      issues.push({ path: `rate.${field}`, message: `unit "${String(unit)}" is not supported; demand is rated in kW` });
  }
}

/** A rate structure (periods x tiers), each period converted by `convert`; undefined when absent. */
function structure<T>(
  urdb: UrdbRate,
  field: string,
  issues: UrdbIssue[],
  convert: (tiers: unknown[], path: string, index: number) => T,
): T[] | undefined {
  const value = urdb[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length === 0 || !value.every((p) => Array.isArray(p) && p.length > 0)) {
    issues.push({ path: `rate.${field}`, message: 'must be a non-empty array of periods, each a non-empty array of tiers' });
    return undefined;
  }
  return value.map((tiers, i) => convert(tiers as unknown[], `rate.${field}[${i}]`, i));
}

function energyPeriodsOf(urdb: UrdbRate, issues: UrdbIssue[]): EnergyPeriod[] | undefined {
  return structure(urdb, 'energyratestructure', issues, (tiers, path, index) => {
    const period: EnergyPeriod = { id: `p${index}`, tiers: [] };
    let tierOneSell: string | undefined;
    tiers.forEach((raw, t) => {
      const tierPath = `${path}[${t}]`;
      const tier = tierObject(raw, tierPath, ENERGY_TIER_FIELDS, issues);
      if (!tier) return;
      if (tier.unit !== undefined && tier.unit !== null && tier.unit !== 'kWh')
        issues.push({ path: `${tierPath}.unit`, message: `unit "${String(tier.unit)}" is not supported; tiers are in kWh` });
      const sell = optionalDecimal(tier.sell, `${tierPath}.sell`, issues);
      if (t === 0) tierOneSell = sell;
      else if (sell !== undefined && sell !== tierOneSell)
        issues.push({ path: `${tierPath}.sell`, message: 'export is credited at the tier 1 sell rate; per-tier sell rates differ' });
      period.tiers.push(tierPrices(tier, tierPath, t === tiers.length - 1, issues));
    });
    if (tierOneSell !== undefined) period.sell = tierOneSell;
    return period;
  });
}

function demandTiers(tiers: unknown[], path: string, issues: UrdbIssue[]): DemandTier[] {
  return tiers.flatMap((raw, t) => {
    const tierPath = `${path}[${t}]`;
    const tier = tierObject(raw, tierPath, DEMAND_TIER_FIELDS, issues);
    return tier ? [tierPrices(tier, tierPath, t === tiers.length - 1, issues)] : [];
  });
}

function tierObject(
  raw: unknown,
  path: string,
  fields: Set<string>,
  issues: UrdbIssue[],
): Record<string, unknown> | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    issues.push({ path, message: 'must be a tier object' });
    return undefined;
  }
  const tier = raw as Record<string, unknown>;
  for (const [field, value] of Object.entries(tier)) {
    if (!fields.has(field) && value !== null)
      issues.push({ path: `${path}.${field}`, message: 'unknown tier field, refused rather than ignored' });
  }
  return tier;
}

/** rate (default 0), adj, and max (required on every tier but the last, refused on the last). */
function tierPrices(
  tier: Record<string, unknown>,
  path: string,
  last: boolean,
  issues: UrdbIssue[],
): { rate: string; adj?: string; max?: string } {
  const rate = optionalDecimal(tier.rate, `${path}.rate`, issues) ?? '0';
  const adj = optionalDecimal(tier.adj, `${path}.adj`, issues);
  const max = optionalDecimal(tier.max, `${path}.max`, issues);
  if (last && max !== undefined)
    issues.push({
      path: `${path}.max`,
      message: 'a max on the last tier leaves usage above it without a price; remove it to make the tier open-ended',
    });
  if (!last && max === undefined) issues.push({ path: `${path}.max`, message: 'every tier but the last needs a max' });
  return { ...(max !== undefined && !last ? { max } : {}), rate, ...(adj !== undefined && adj !== '0' ? { adj } : {}) };
}

function demandWindow(urdb: UrdbRate, issues: UrdbIssue[]): 15 | 30 | 60 | undefined {
  const value = urdb.demandwindow;
  if (value === undefined || value === null || value === 0) return undefined;
  if (value === 15 || value === 30 || value === 60) return value;
  issues.push({ path: 'rate.demandwindow', message: `demand window ${String(value)} minutes is not supported (15, 30 or 60)` });
  return undefined;
}

function fixedChargesOf(urdb: UrdbRate, issues: UrdbIssue[]): FixedCharge[] {
  const firstMeter = optionalDecimal(urdb.fixedchargefirstmeter, 'rate.fixedchargefirstmeter', issues);
  const monthly = optionalDecimal(urdb.fixedmonthlycharge, 'rate.fixedmonthlycharge', issues);
  if (isNonZero(firstMeter) && isNonZero(monthly))
    issues.push({ path: 'rate.fixedmonthlycharge', message: 'fixedmonthlycharge (API v3) and fixedchargefirstmeter both given' });
  const charges: FixedCharge[] = [];
  if (firstMeter !== undefined && isNonZero(firstMeter)) {
    const per = perUnit(urdb.fixedchargeunits, 'rate.fixedchargeunits', issues);
    if (per) charges.push({ name: 'Fixed charge', amount: firstMeter, per });
  }
  if (monthly !== undefined && isNonZero(monthly)) charges.push({ name: 'Fixed monthly charge', amount: monthly, per: 'month' });
  return charges;
}

function minimumChargeOf(urdb: UrdbRate, issues: UrdbIssue[]): TariffDocument['minimumCharge'] {
  const minimum = optionalDecimal(urdb.mincharge, 'rate.mincharge', issues);
  const monthly = optionalDecimal(urdb.minmonthlycharge, 'rate.minmonthlycharge', issues);
  if (isNonZero(minimum) && isNonZero(monthly))
    issues.push({ path: 'rate.minmonthlycharge', message: 'minmonthlycharge (API v3) and mincharge both given' });
  if (minimum !== undefined && isNonZero(minimum)) {
    const per = perUnit(urdb.minchargeunits, 'rate.minchargeunits', issues);
    return per ? { amount: minimum, per } : undefined;
  }
  return monthly !== undefined && isNonZero(monthly) ? { amount: monthly, per: 'month' } : undefined;
}

/** `$/day` or `$/month`; absent means `$/month`, URDB's default. */
function perUnit(value: unknown, path: string, issues: UrdbIssue[]): 'day' | 'month' | undefined {
  if (value === undefined || value === null || value === '' || value === '$/month') return 'month';
  if (value === '$/day') return 'day';
  issues.push({ path, message: `unit "${String(value)}" is not supported ($/day, $/month)` });
  return undefined;
}

/** A URDB number (JSON number or numeric string) as an exact decimal string; undefined when absent. */
function optionalDecimal(value: unknown, path: string, issues: UrdbIssue[]): string | undefined {
  if (value === undefined || value === null) return undefined;
  const numeric = typeof value === 'number' ? Number.isFinite(value) : typeof value === 'string' && NUMBER.test(value);
  if (numeric) return new Dec(value as number | string).toFixed();
  issues.push({ path, message: 'must be a number' });
  return undefined;
}

function isNonZero(decimal: string | undefined): boolean {
  return decimal !== undefined && !new Dec(decimal).isZero();
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}
