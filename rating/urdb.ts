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
 * - Tier units `kWh`, `kWh daily`, `kWh/kW`, `kWh/kW daily`; per-tier `sell`; coincident demand; the
 *   ratchet (`lookbackpercent`, `lookbackmonths`, `lookbackrange`) -> `billingDemand`; free-text attributes
 *   -> `attributes`; `startdate` -> `effectiveFrom` unless the caller says otherwise; `dgrules` ->
 *   `meteringMode` ("Net Metering" -> `netMetering`, with the request's `netMetering` options; the
 *   request's `netBilling` options for the net billing modes); `annualmincharge` -> `annualMinimumCharge`;
 *   `demandreactivepowercharge` ($/kVAR) -> `demand.reactive`.
 *
 * Refused, each issue naming the field by its path (`rate.energyratestructure[0][1].unit`): every
 * feature the engine does not rate (see urdb-fields.ts), units the readings cannot measure (kVA, hp,
 * kWh/kVA), a tier without any price, a `dgrules` value URDB does not define, metering options that
 * contradict `dgrules`, and unknown fields. Imported with a warning (see rating/README.md): data wrong on
 * its face that can still be rated as stated.
 */
import { DateTime, IANAZone } from 'luxon';
import { isoUtc } from '../common/time.js';
import { Dec } from './money.js';
import type { DemandTier, EnergyPeriod, EnergyTierUnit, FixedCharge, TariffDocument } from './tariff.schema.js';
import { tariffSchema } from './tariff.schema.js';
import { CONVERTED_FIELDS, FIELD_ALIASES, INFORMATIVE_FIELDS, REFUSED_WHEN_SET } from './urdb-fields.js';
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
  /** What tier limits count (CONTRACT section 4); default "window". */
  tierScope?: 'window' | 'period';
  /** The look-back of a ratchet whose `lookbackrange` does not say it (default 11 months, with a warning). */
  billingDemand?: { lookbackHorizonMonths?: number };
  /** The version's effectiveFrom: an instant with offset, or null for none; default: the rate's `startdate`. */
  effectiveFrom?: string | null;
  /** The instant the import happens (epoch ms), to warn about an `enddate` already past; no check without it. */
  asOf?: number;
  /** Net metering options (CONTRACT section 4), for `dgrules` "Net Metering" (or a rate without `dgrules`). */
  netMetering?: TariffDocument['netMetering'];
  /** A net billing credit balance (CONTRACT section 4), for `dgrules` "Net Billing ..." (or none). */
  netBilling?: TariffDocument['netBilling'];
}

/** An imported rate and what looked wrong in it but could be rated as stated. */
export interface UrdbImport {
  tariff: TariffDocument;
  warnings: UrdbIssue[];
}

/** A URDB rate object: field name -> value as the API returns it. */
export type UrdbRate = Record<string, unknown>;

const ENERGY_TIER_FIELDS = new Set(['rate', 'max', 'unit', 'adj', 'sell']);
const DEMAND_TIER_FIELDS = new Set(['rate', 'max', 'adj', 'unit']);
/** URDB `dgrules` values and the metering mode each one means (rating/metering/README.md). */
const DG_RULES: Readonly<Record<string, NonNullable<TariffDocument['meteringMode']>>> = {
  'Net Metering': 'net_metering',
  'Net Billing Instantaneous': 'net_billing_instantaneous',
  'Net Billing Hourly': 'net_billing_hourly',
  'Buy All Sell All': 'buy_all_sell_all',
};
const ENERGY_UNITS = new Set(['kWh', 'kWh daily', 'kWh/kW', 'kWh/kW daily']);
/** Above these (rate + adj), a price is imported with a warning: likely a typo. */
const ENERGY_SANITY_BOUND = new Dec('0.75');
const DEMAND_SANITY_BOUND = new Dec('100');
const NO_LIMIT = new Dec('1e37');
const NO_LIMIT_TEXT = '1e38';
const DEFAULT_LOOKBACK_MONTHS = 11;
const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
const UNKNOWN_FIELD = 'unknown field: not a URDB field this importer knows, refused rather than ignored';

/** Converts a URDB rate; throws UrdbImportError listing every unsupported or malformed field. */
export function urdbToTariff(rate: unknown, options: UrdbImportOptions): TariffDocument {
  return importUrdb(rate, options).tariff;
}

/** Converts a URDB rate and lists what it imported with a warning; throws UrdbImportError as urdbToTariff. */
export function importUrdb(rate: unknown, options: UrdbImportOptions): UrdbImport {
  if (rate === null || typeof rate !== 'object' || Array.isArray(rate))
    throw new UrdbImportError([{ path: 'rate', message: 'must be one URDB rate object' }]);
  const urdb = withAliases(rate as UrdbRate);
  // Coincident demand fields left empty ([]) say nothing.
  for (const field of ['coincidentratestructure', 'coincidentrateschedule', 'coincidentschedule'])
    if (Array.isArray(urdb[field]) && (urdb[field] as unknown[]).length === 0) delete urdb[field];
  const issues: UrdbIssue[] = [...fieldIssues(urdb)];
  const warnings: UrdbIssue[] = [];
  if (!IANAZone.isValidZone(options.timeZone)) issues.push({ path: 'timezone', message: 'must be an IANA time zone' });
  const id = options.id ?? text(urdb.label);
  if (!id) issues.push({ path: 'rate.label', message: 'a URDB label (or an id) is required' });

  const energyWeekday = schedule(urdb, 'energyweekdayschedule', issues);
  const energyWeekend = schedule(urdb, 'energyweekendschedule', issues);
  const demandWeekday = schedule(urdb, 'demandweekdayschedule', issues);
  const demandWeekend = schedule(urdb, 'demandweekendschedule', issues);
  const coincidentField = urdb.coincidentrateschedule !== undefined && urdb.coincidentrateschedule !== null ? 'coincidentrateschedule' : 'coincidentschedule';
  const coincidentSchedule = schedule(urdb, coincidentField, issues);
  const flatMonths = flatDemandMonths(urdb, issues);
  const seasons = seasonsOf([energyWeekday, energyWeekend, demandWeekday, demandWeekend, coincidentSchedule, flatMonths]);
  const energyPeriods = energyPeriodsOf(urdb, issues, warnings);
  const toDemandTiers = (tiers: unknown[], path: string) => demandTiers(tiers, path, issues, warnings);
  const demandPeriods = structure(urdb, 'demandratestructure', issues, toDemandTiers);
  const flatStructures = structure(urdb, 'flatdemandstructure', issues, toDemandTiers);
  const coincidentPeriods = structure(urdb, 'coincidentratestructure', issues, toDemandTiers);
  checkScheduled('energy', energyPeriods, energyWeekday, energyWeekend, issues);
  checkScheduled('demand', demandPeriods, demandWeekday, demandWeekend, issues);
  checkCoincident(coincidentPeriods, coincidentSchedule, coincidentField, issues);
  checkUnits(urdb, issues, warnings);
  const windowMinutes = demandWindow(urdb, issues);
  const fixedCharges = fixedChargesOf(urdb, issues);
  const minimumCharge = minimumChargeOf(urdb, issues);
  const flat = flatStructures ? flatDemandOf(flatStructures, flatMonths, seasons, issues) : [];
  const billingDemand = billingDemandOf(urdb, options, issues, warnings);
  const attributes = attributesOf(urdb, issues);
  const effectiveFrom = effectiveFromOf(urdb, options, issues);
  const origin = originOf(urdb, id, options, issues, warnings);
  const metering = meteringOf(urdb, options, issues, warnings);
  const annualMinimum = optionalDecimal(urdb.annualmincharge, 'rate.annualmincharge', issues);
  const reactive = reactiveChargeOf(urdb, issues, warnings);
  if (issues.length || id === undefined) throw new UrdbImportError(issues);
  if (billingDemand && !flat.length && !energyPeriods?.some((p) => p.tiers.some((t) => t.unit?.startsWith('kWh/kW'))))
    warnings.push({ path: 'rate.lookbackpercent', message: 'the ratchet sets a billing demand that nothing in this rate uses (no flat demand, no kWh/kW tiers)' });

  const demand: NonNullable<TariffDocument['demand']> = {
    ...(windowMinutes ? { windowMinutes } : {}),
    ...(demandPeriods && demandWeekday && demandWeekend
      ? {
          periods: demandPeriods.map((tiers, i) => ({ id: `p${i}`, tiers })),
          schedule: scheduleRules(seasons, demandWeekday, demandWeekend),
        }
      : {}),
    ...(flat.length ? { flat } : {}),
    ...(coincidentPeriods && coincidentSchedule
      ? {
          coincident: {
            periods: coincidentPeriods.map((tiers, i) => ({ id: `p${i}`, tiers })),
            schedule: scheduleRules(seasons, coincidentSchedule, coincidentSchedule),
          },
        }
      : {}),
    ...(reactive ? { reactive } : {}),
  };
  const tariff: TariffDocument = {
    id,
    name: text(urdb.name) ?? id,
    ...(text(urdb.description) ? { description: text(urdb.description) } : {}),
    currency: { code: 'USD', minorUnit: 2 },
    timeZone: options.timeZone,
    ...(effectiveFrom ? { effectiveFrom } : {}),
    seasons: seasons.map(({ season }) => season),
    ...(energyPeriods && energyWeekday && energyWeekend
      ? {
          energy: {
            tierScope: options.tierScope ?? 'window',
            periods: energyPeriods,
            schedule: scheduleRules(seasons, energyWeekday, energyWeekend),
          },
        }
      : {}),
    ...(demand.periods || demand.flat || demand.coincident || demand.reactive ? { demand } : {}),
    ...(fixedCharges.length ? { fixedCharges } : {}),
    ...(minimumCharge ? { minimumCharge } : {}),
    ...(billingDemand ? { billingDemand } : {}),
    ...metering,
    ...(isNonZero(annualMinimum) ? { annualMinimumCharge: { amount: annualMinimum! } } : {}),
    ...(attributes ? { attributes } : {}),
    urdb: origin,
  };
  const parsed = tariffSchema.safeParse(tariff);
  if (!parsed.success)
    throw new UrdbImportError(
      parsed.error.issues.map((issue) => ({ path: `tariff.${issue.path.join('.')}`, message: issue.message })),
    );
  return { tariff, warnings };
}

/** The rate with the newer API's camelCase spellings read as the fields they stand for (when not both given). */
function withAliases(urdb: UrdbRate): UrdbRate {
  const result: UrdbRate = {};
  for (const [field, value] of Object.entries(urdb)) {
    const canonical = FIELD_ALIASES[field];
    if (canonical && !(canonical in urdb)) result[canonical] = value;
    else result[field] = value;
  }
  return result;
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
  if (dgRules !== undefined && dgRules !== null && dgRules !== '' && !(String(dgRules) in DG_RULES))
    issues.push({ path: 'rate.dgrules', message: `"${String(dgRules)}" is not a URDB metering rule (known: ${Object.keys(DG_RULES).join(', ')})` });
  return issues;
}

/**
 * `dgrules` (or `usenetmetering`) and the request's `netMetering` / `netBilling` options -> the document's
 * metering fields. Net metering without options: kWh carried per period, true-up in December at 0 $/kWh
 * (SAM's defaults), said in a warning.
 */
function meteringOf(urdb: UrdbRate, options: UrdbImportOptions, issues: UrdbIssue[], warnings: UrdbIssue[]): Partial<TariffDocument> {
  const dgRules = urdb.dgrules === undefined || urdb.dgrules === null || urdb.dgrules === '' ? undefined : String(urdb.dgrules);
  const usesNetMetering = urdb.usenetmetering === true || urdb.usenetmetering === 'true';
  const mode = dgRules !== undefined ? DG_RULES[dgRules] : usesNetMetering || options.netMetering ? 'net_metering' : undefined;
  if (dgRules !== undefined && !mode) return {};
  if (options.netMetering && mode !== 'net_metering')
    issues.push({ path: 'netMetering', message: `net metering options do not apply to dgrules "${dgRules}"` });
  if (options.netBilling && (mode === 'net_metering' || mode === 'buy_all_sell_all'))
    issues.push({ path: 'netBilling', message: `a net billing credit balance does not apply to ${mode === 'net_metering' ? 'net metering' : 'buy all / sell all'}` });
  if (mode === 'net_metering') {
    if (!options.netMetering)
      warnings.push({
        path: dgRules !== undefined ? 'rate.dgrules' : 'rate.usenetmetering',
        message: 'net metering with the default options: surplus kWh carried per period, true-up in December at 0 $/kWh, no roll-over',
      });
    return { meteringMode: mode, netMetering: options.netMetering ?? {} };
  }
  return {
    ...(mode ? { meteringMode: mode } : {}),
    ...(options.netBilling ? { netBilling: options.netBilling } : {}),
  };
}

/** Coincident demand: a structure with its one schedule (both spellings), all periods present. */
function checkCoincident(periods: unknown[] | undefined, rows: number[][] | undefined, field: string, issues: UrdbIssue[]): void {
  if (periods && !rows) issues.push({ path: 'rate.coincidentratestructure', message: 'needs coincidentrateschedule' });
  if (rows && !periods) issues.push({ path: `rate.${field}`, message: 'schedule without coincidentratestructure' });
  if (!periods || !rows) return;
  rows.forEach((row, m) =>
    row.forEach((p, h) => {
      if (p >= periods.length) issues.push({ path: `rate.${field}[${m}][${h}]`, message: `period ${p} is not in coincidentratestructure` });
    }),
  );
}

/** The ratchet: `lookbackpercent` of the peaks of the flagged `lookbackmonths` within `lookbackrange` months. */
function billingDemandOf(urdb: UrdbRate, options: UrdbImportOptions, issues: UrdbIssue[], warnings: UrdbIssue[]): TariffDocument['billingDemand'] {
  const percent = optionalDecimal(urdb.lookbackpercent, 'rate.lookbackpercent', issues);
  const range = optionalDecimal(urdb.lookbackrange, 'rate.lookbackrange', issues);
  const months = urdb.lookbackmonths;
  let flagged: number[] | undefined;
  if (months !== undefined && months !== null && !(Array.isArray(months) && months.length === 0)) {
    if (!Array.isArray(months) || months.length !== 12 || !months.every((m) => typeof m === 'boolean' || m === 0 || m === 1))
      issues.push({ path: 'rate.lookbackmonths', message: 'must be 12 booleans, one per month' });
    else flagged = months.flatMap((m, i) => (m === true || m === 1 ? [i + 1] : []));
  }
  if (percent === undefined || new Dec(percent).isZero()) {
    if (flagged?.length || (range !== undefined && !new Dec(range).isZero()))
      warnings.push({ path: 'rate.lookbackpercent', message: 'look-back months or range without a percentage: no ratchet' });
    return undefined;
  }
  if (new Dec(percent).gt(1) || new Dec(percent).isNeg()) {
    issues.push({ path: 'rate.lookbackpercent', message: 'must be a fraction between 0 and 1 (0.95 for 95 %)' });
    return undefined;
  }
  let horizon: number;
  if (range !== undefined && !new Dec(range).isZero()) {
    if (!new Dec(range).isInteger() || new Dec(range).lt(1) || new Dec(range).gt(36)) {
      issues.push({ path: 'rate.lookbackrange', message: 'must be a whole number of months, 1 to 36' });
      return undefined;
    }
    horizon = Number(range);
  } else if (options.billingDemand?.lookbackHorizonMonths !== undefined) {
    horizon = options.billingDemand.lookbackHorizonMonths;
  } else {
    horizon = DEFAULT_LOOKBACK_MONTHS;
    warnings.push({
      path: 'rate.lookbackrange',
      message: `the rate does not say how many months the ratchet looks back: ${DEFAULT_LOOKBACK_MONTHS} assumed (billingDemand.lookbackHorizonMonths says otherwise)`,
    });
  }
  return {
    lookbackPercent: percent,
    ...(flagged && flagged.length > 0 && flagged.length < 12 ? { lookbackMonths: flagged } : {}),
    lookbackHorizonMonths: horizon,
  };
}

/** Free-text attribute lists ([{"Fuel adjustment": "0.0123"}]): kept, informative. */
function attributesOf(urdb: UrdbRate, issues: UrdbIssue[]): TariffDocument['attributes'] {
  const result: NonNullable<TariffDocument['attributes']> = {};
  for (const [field, kind] of [['energyattrs', 'energy'], ['demandattrs', 'demand'], ['fixedattrs', 'fixed']] as const) {
    const value = urdb[field];
    if (value === undefined || value === null || value === '') continue;
    if (!Array.isArray(value)) {
      issues.push({ path: `rate.${field}`, message: 'must be a list of {name: value} objects' });
      continue;
    }
    const attributes = value.flatMap((attribute) =>
      attribute !== null && typeof attribute === 'object' && !Array.isArray(attribute)
        ? Object.entries(attribute as Record<string, unknown>).map(([name, v]) => ({ name, value: v === null || v === undefined ? '' : String(v) }))
        : [{ name: String(attribute), value: '' }],
    ).filter((a) => a.name.trim() !== '' || a.value.trim() !== '');
    if (attributes.length) result[kind] = attributes;
  }
  return Object.keys(result).length ? result : undefined;
}

/** URDB's dates: epoch seconds (of the utility's local midnight), or "YYYY-MM-DD hh:mm:ss" local time. */
function urdbInstant(value: unknown, path: string, timeZone: string, issues: UrdbIssue[]): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let millis: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value)) millis = Math.round(value * 1000);
  else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$/.test(value) && IANAZone.isValidZone(timeZone)) {
    const local = DateTime.fromISO(value.replace(' ', 'T'), { zone: timeZone });
    if (local.isValid) millis = local.toMillis();
  }
  if (millis === undefined || !Number.isFinite(millis)) {
    issues.push({ path, message: 'must be epoch seconds or a date "YYYY-MM-DD hh:mm:ss"' });
    return undefined;
  }
  return isoUtc(millis);
}

function effectiveFromOf(urdb: UrdbRate, options: UrdbImportOptions, issues: UrdbIssue[]): string | undefined {
  if (options.effectiveFrom !== undefined) return options.effectiveFrom ?? undefined;
  return urdbInstant(urdb.startdate, 'rate.startdate', options.timeZone, issues);
}

/** Where the rate came from, and its informative fields; warns about an enddate already past. */
function originOf(urdb: UrdbRate, id: string | undefined, options: UrdbImportOptions, issues: UrdbIssue[], warnings: UrdbIssue[]): NonNullable<TariffDocument['urdb']> {
  const startDate = urdbInstant(urdb.startdate, 'rate.startdate', options.timeZone, issues.slice());
  const endDate = urdbInstant(urdb.enddate, 'rate.enddate', options.timeZone, issues);
  if (endDate && options.asOf !== undefined && Date.parse(endDate) < options.asOf)
    warnings.push({ path: 'rate.enddate', message: `the rate ended on ${endDate}: it may have been superseded` });
  const labels = urdb.energytoulabels;
  const supersedes = text(urdb.supersedes) ?? text(urdb.supercedes);
  const comments = ['basicinformationcomments', 'energycomments', 'demandcomments', 'demandComments'].flatMap((f) => (text(urdb[f]) ? [text(urdb[f])!] : []));
  return {
    label: text(urdb.label) ?? id ?? '',
    ...(text(urdb.uri) ? { uri: text(urdb.uri) } : {}),
    ...(text(urdb.utility) ? { utility: text(urdb.utility) } : {}),
    ...(text(urdb.name) ? { name: text(urdb.name) } : {}),
    ...(startDate ? { startDate } : {}),
    ...(endDate ? { endDate } : {}),
    ...(supersedes ? { supersedes } : {}),
    ...(Array.isArray(labels) && labels.every((l) => typeof l === 'string') && labels.length ? { energyTouLabels: labels as string[] } : {}),
    ...(comments.length ? { comments } : {}),
  };
}

function checkUnits(urdb: UrdbRate, issues: UrdbIssue[], warnings: UrdbIssue[]): void {
  const unitOf: [string, string[]][] = [
    ['demandrateunit', ['demandratestructure']],
    ['flatdemandunit', ['flatdemandstructure']],
    ['demandunits', ['demandratestructure', 'flatdemandstructure']],
    ['coincidentrateunit', ['coincidentratestructure']],
  ];
  for (const [field, structures] of unitOf) {
    const unit = urdb[field];
    const used = structures.some((s) => urdb[s] !== undefined && urdb[s] !== null);
    if (!used || unit === undefined || unit === null || unit === 'kW') continue;
    // The generic demandunits contradicted by the own unit of every structure it would apply to, stated as
    // kW: the structure's own unit is the more specific statement (imported with a warning).
    const ownUnitFields = structures.filter((s) => urdb[s] !== undefined && urdb[s] !== null).map((s) => (s === 'demandratestructure' ? 'demandrateunit' : 'flatdemandunit'));
    if (field === 'demandunits' && ownUnitFields.every((f) => urdb[f] === 'kW'))
      warnings.push({
        path: `rate.${field}`,
        message: `unit "${String(unit)}" contradicts the kW of ${ownUnitFields.join(' and ')}: demand is rated in kW, as the structure's own unit says`,
      });
    else
      issues.push({ path: `rate.${field}`, message: `unit "${String(unit)}" is not supported; demand is rated in kW (readings carry real energy only)` });
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

function energyPeriodsOf(urdb: UrdbRate, issues: UrdbIssue[], warnings: UrdbIssue[]): EnergyPeriod[] | undefined {
  return structure(urdb, 'energyratestructure', issues, (tiers, path, index) => {
    const period: EnergyPeriod = { id: `p${index}`, tiers: [] };
    const sells: (string | undefined)[] = [];
    // A last tier that states nothing at all ({"unit": "kWh"}) after a tier without max: dropped.
    const lastTier = tiers[tiers.length - 1] as Record<string, unknown> | null;
    const before = tiers[tiers.length - 2] as Record<string, unknown> | null;
    if (tiers.length > 1 && isEmptyTier(lastTier) && before && typeof before === 'object' && (before.max === undefined || before.max === null)) {
      warnings.push({ path: `${path}[${tiers.length - 1}]`, message: 'an empty last tier (no rate, adj or max) is dropped' });
      tiers = tiers.slice(0, -1);
    }
    // SAM reads a missing max as "no limit" (1e38): so do periods with kWh/kW blocks, where such steps occur.
    const blocks = tiers.some((raw) => raw !== null && typeof raw === 'object' && String((raw as Record<string, unknown>).unit).startsWith('kWh/kW'));
    tiers.forEach((raw, t) => {
      const tierPath = `${path}[${t}]`;
      const tier = tierObject(raw, tierPath, ENERGY_TIER_FIELDS, issues);
      if (!tier) return;
      let unit: EnergyTierUnit | undefined;
      if (tier.unit !== undefined && tier.unit !== null) {
        if (ENERGY_UNITS.has(String(tier.unit))) unit = tier.unit as EnergyTierUnit;
        else
          issues.push({
            path: `${tierPath}.unit`,
            message: `unit "${String(tier.unit)}" is not supported (kWh, kWh daily, kWh/kW, kWh/kW daily; readings carry no kVA)`,
          });
      }
      sells.push(optionalDecimal(tier.sell, `${tierPath}.sell`, issues));
      const noMax = tier.max === undefined || tier.max === null;
      const prices = tierPrices(blocks && noMax && t < tiers.length - 1 ? { ...tier, max: NO_LIMIT_TEXT } : tier, tierPath, t === tiers.length - 1, 'energy', issues, warnings);
      period.tiers.push({ ...(prices.max !== undefined ? { max: prices.max } : {}), ...(unit && unit !== 'kWh' ? { unit } : {}), rate: prices.rate, ...(prices.adj !== undefined ? { adj: prices.adj } : {}) });
    });
    if (sells[0] !== undefined) period.sell = sells[0];
    if (sells.some((sell) => sell !== sells[0]))
      period.tiers.forEach((tier, t) => {
        if (sells[t] !== undefined) tier.sell = sells[t];
      });
    return period;
  });
}

function demandTiers(tiers: unknown[], path: string, issues: UrdbIssue[], warnings: UrdbIssue[]): DemandTier[] {
  return tiers.flatMap((raw, t) => {
    const tierPath = `${path}[${t}]`;
    const tier = tierObject(raw, tierPath, DEMAND_TIER_FIELDS, issues);
    if (!tier) return [];
    if (tier.unit !== undefined && tier.unit !== null && tier.unit !== 'kW')
      issues.push({ path: `${tierPath}.unit`, message: `unit "${String(tier.unit)}" is not supported; demand is rated in kW (readings carry real energy only)` });
    return [tierPrices(tier, tierPath, t === tiers.length - 1, 'demand', issues, warnings)];
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

/**
 * rate and adj (a tier needs at least one of them: a tier without any price is refused, never priced at 0;
 * with adj alone the billed rate is adj, with a warning), and max (required on every tier but the last; on
 * the last one it is dropped with a warning: beyond a period's last limit its last tier applies). Negative
 * prices and prices above the sanity bound are imported as stated, with a warning.
 */
function tierPrices(
  tier: Record<string, unknown>,
  path: string,
  last: boolean,
  kind: 'energy' | 'demand',
  issues: UrdbIssue[],
  warnings: UrdbIssue[],
): { rate: string; adj?: string; max?: string } {
  const statedRate = optionalDecimal(tier.rate, `${path}.rate`, issues);
  const adj = optionalDecimal(tier.adj, `${path}.adj`, issues);
  let max = optionalDecimal(tier.max, `${path}.max`, issues);
  if (tier.rate === undefined || tier.rate === null) {
    if (adj === undefined || new Dec(adj).isZero())
      issues.push({ path: `${path}.rate`, message: 'the tier states no price (no rate, no adj): refused rather than priced at 0' });
    else warnings.push({ path: `${path}.rate`, message: `the tier has no rate: billed at its adj ${adj} alone` });
  }
  const rate = statedRate ?? '0';
  const billed = new Dec(rate).plus(adj ?? 0);
  const unit = kind === 'energy' ? '$/kWh' : '$/kW';
  if (billed.isNeg()) warnings.push({ path: `${path}.rate`, message: `negative price ${billed.toFixed()} ${unit}: billed as a credit, as stated` });
  else if (billed.gt(kind === 'energy' ? ENERGY_SANITY_BOUND : DEMAND_SANITY_BOUND))
    warnings.push({
      path: `${path}.rate`,
      message: `price ${billed.toFixed()} ${unit} is above the sanity bound of ${(kind === 'energy' ? ENERGY_SANITY_BOUND : DEMAND_SANITY_BOUND).toFixed()} ${unit}: check for a typo`,
    });
  if (max !== undefined && new Dec(max).lte(0)) {
    issues.push({ path: `${path}.max`, message: 'must be greater than 0' });
    max = undefined;
  }
  if (last && max !== undefined) {
    if (new Dec(max).lt(NO_LIMIT))
      warnings.push({ path: `${path}.max`, message: `a max on the last tier is dropped: usage above ${max} is billed at this tier` });
    max = undefined;
  }
  if (!last && max === undefined && !issues.some((i) => i.path === `${path}.max`)) issues.push({ path: `${path}.max`, message: 'every tier but the last needs a max' });
  return { ...(max !== undefined ? { max: tierLimitText(max) } : {}), rate, ...(adj !== undefined && adj !== '0' ? { adj } : {}) };
}

function isEmptyTier(tier: Record<string, unknown> | null): boolean {
  if (tier === null || typeof tier !== 'object') return false;
  return ['rate', 'adj', 'max', 'sell'].every((f) => tier[f] === undefined || tier[f] === null);
}

/** A limit with at most 6 decimals (the native document counts whole mWh/mW), rounded half-up. */
function tierLimitText(max: string): string {
  return new Dec(max).toDecimalPlaces(6, Dec.ROUND_HALF_UP).toFixed();
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
/** Below this, a $/kVAR price looks like a $/kvarh one: imported as stated (per kVAR), with a warning. */
const REACTIVE_SMALL_PRICE = new Dec('0.01');

/**
 * `demandreactivepowercharge` ($/kVAR; `demandReactPwrCharge`): the reactive power charge, rate x the
 * window's highest reactive demand (rating/reactive.ts); 0 or absent: none.
 */
function reactiveChargeOf(urdb: UrdbRate, issues: UrdbIssue[], warnings: UrdbIssue[]): { rate: string } | undefined {
  const path = 'rate.demandreactivepowercharge';
  const value = urdb.demandreactivepowercharge === '' ? undefined : urdb.demandreactivepowercharge;
  const rate = optionalDecimal(value, path, issues);
  if (!isNonZero(rate)) return undefined;
  const price = new Dec(rate!);
  if (price.isNeg()) warnings.push({ path, message: `negative price ${rate} $/kVAR: billed as a credit, as stated` });
  else if (price.gt(DEMAND_SANITY_BOUND))
    warnings.push({ path, message: `price ${rate} $/kVAR is above the sanity bound of ${DEMAND_SANITY_BOUND.toFixed()} $/kVAR: check for a typo` });
  else if (price.lt(REACTIVE_SMALL_PRICE))
    warnings.push({ path, message: `price ${rate} $/kVAR is small enough to be a $/kvarh price; billed per kVAR of the window's highest reactive demand, as URDB states the unit` });
  return { rate: rate! };
}

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
