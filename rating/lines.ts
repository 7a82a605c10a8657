/**
 * Charge lines in the format of CONTRACT.md section 3, and the rule every priced line follows:
 * amount = quantity x rate, rounded half-up to the currency's minor unit. Quantities and rates are exact
 * decimal strings; amounts have exactly the minor unit's decimals.
 *
 * Fields beyond the contract's (allowed: the contract may be added to): `tariffId` on every charge line,
 * `flatDemandPeriod` on flat demand lines, `measuredKw` and `prorationFactor` on prorated demand lines,
 * `minimum` on the minimum line, `base` on tax lines.
 */
import type { CompiledTariff } from './compiled-tariff.js';
import type { WindowInterval } from './intervals.js';
import { type Dec, formatMoney, roundMoney } from './money.js';

export interface EnergyLine {
  type: 'energy';
  /** Energy period id, or "dynamic" for dynamic prices. */
  period: string;
  /** 1-based tier */
  tier: number;
  /** kWh */
  quantity: string;
  unit: 'kWh';
  /** per kWh: rate + adj */
  rate: string;
  amount: string;
  tariffId: string;
}

export interface DemandLine {
  type: 'demand';
  /** Demand period id, "flat" for a flat demand charge, "coincident" for a coincident one. */
  period: string;
  /** The flat demand charge's id (flat demand lines only). */
  flatDemandPeriod?: string;
  /** The coincident demand period's id (coincident demand lines, period "coincident", only). */
  coincidentPeriod?: string;
  tier: number;
  /** kW billed in this tier: the measured kW, times prorationFactor when the tariff applies to part of the cycle. */
  quantity: string;
  unit: 'kW';
  /** per kW: rate + adj */
  rate: string;
  amount: string;
  tariffId: string;
  /** kW measured in this tier, on prorated or ratcheted lines only. */
  measuredKw?: string;
  prorationFactor?: string;
  /** On a flat demand line whose billing demand a preceding cycle's peak set (ratchet): that cycle. */
  billingDemandSetBy?: { from: string; to: string; peakKw: string; lookbackPercent: string };
}

/**
 * The reactive power charge (a demand line, marked by period "reactive" and unit "kVAR"): the window's
 * highest reactive demand in kVAR x the price per kVAR (see reactive.ts).
 */
export interface ReactiveDemandLine {
  type: 'demand';
  period: 'reactive';
  tier: 1;
  /** kVAR billed: the measured maximum reactive demand, times prorationFactor when the tariff applies to part of the cycle. */
  quantity: string;
  unit: 'kVAR';
  /** per kVAR */
  rate: string;
  amount: string;
  tariffId: string;
  /** kVAR measured, on prorated lines only. */
  measuredKvar?: string;
  prorationFactor?: string;
  flatDemandPeriod?: never;
  coincidentPeriod?: never;
  measuredKw?: never;
  billingDemandSetBy?: never;
}

export interface FixedLine {
  type: 'fixed';
  name: string;
  /** Local calendar days, or months (prorated by days, 6 decimals). */
  quantity: string;
  unit: 'day' | 'month';
  rate: string;
  amount: string;
  tariffId: string;
}

export interface ExportCreditLine {
  type: 'export_credit';
  period: string;
  /** 1-based tier, when the period credits per tier (tiers with their own sell rates) */
  tier?: number;
  /** kWh exported in the period */
  quantity: string;
  unit: 'kWh';
  /** the period's sell rate */
  rate: string;
  /** negative: -(quantity x rate rounded) */
  amount: string;
  tariffId: string;
}

export interface MinimumLine {
  type: 'minimum';
  /** The minimum charge for the part of the window rated with this tariff (prorated, rounded). */
  minimum: string;
  /** minimum - subtotal of that part */
  amount: string;
  tariffId: string;
  /** `annual`: the annual minimum (settled in December, see metering/README.md); absent: the window's minimum. */
  scope?: 'annual';
  /** Annual minimum only: the calendar year's bills it was compared with (each floored at 0, before minimums and settlement). */
  billed?: string;
}

/**
 * Settlement of carried quantities (metering/README.md): `trueup` the true-up payment, `carryover` a credit
 * applied from a carried money balance. Quantity in kWh with the true-up rate (a kWh bank's true-up), or
 * a money amount with `unit` the currency code and `rate` "1".
 */
export interface SettlementLine {
  type: 'export_credit';
  period: 'trueup' | 'carryover';
  /** never tiered */
  tier?: never;
  quantity: string;
  unit: string;
  rate: string;
  /** negative */
  amount: string;
  tariffId: string;
}

export interface TaxLine {
  type: 'tax';
  name: string;
  rate: string;
  /** The subtotal the tax applies to. */
  base: string;
  amount: string;
}

export type ChargeLine = EnergyLine | DemandLine | ReactiveDemandLine | FixedLine | ExportCreditLine | SettlementLine | MinimumLine | TaxLine;

/** A line with its amount kept as a decimal for summing. */
export interface PricedLine {
  line: ChargeLine;
  amount: Dec;
}

/** What a line builder knows about the part of the window rated with one tariff document. */
export interface PieceContext {
  tariff: CompiledTariff;
  tariffId: string;
  /** The piece's intervals, sorted by start. */
  intervals: WindowInterval[];
  /** Every energy of `intervals` is a number (see mwh.ts): sums may be tried with numbers. */
  numeric: boolean;
  /**
   * Share of the billing cycle (or, without one, of the window) during which this tariff document is in
   * effect, by local days, 6 decimals; 1 when it is in effect throughout. Prorates tier limits and demand.
   */
  share: Dec;
  /** Local calendar days of the piece (days whose midnight it holds). */
  days: number;
  /** Months of the piece for monthly charges: days / days of the billing cycle (or calendar month). */
  months: Dec;
  /** The window's billing demand in kW (sizes kWh/kW tiers): its peak demand, or the ratchet; 0 without demand. */
  billingDemandKw: Dec;
}

/** quantity x rate rounded half-up; `credit` negates the rounded amount. */
export function price(quantity: Dec, rate: Dec, minorUnit: number, credit = false): { amount: Dec; text: string } {
  const rounded = roundMoney(quantity.mul(rate), minorUnit);
  const amount = credit ? rounded.neg() : rounded;
  return { amount, text: formatMoney(amount, minorUnit) };
}

/** Splits a total in milli-units across tiers with cumulative limits; one entry per tier, 0n above the total. */
export function splitTiers(total: bigint, limits: (bigint | null)[]): bigint[] {
  let lower = 0n;
  return limits.map((limit) => {
    const upper = limit === null || limit > total ? total : limit;
    const inTier = upper > lower ? upper - lower : 0n;
    if (upper > lower) lower = upper;
    return inTier;
  });
}
