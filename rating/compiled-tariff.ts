/**
 * A tariff document validated once and turned into what the rating loop needs: decimal prices, tier
 * limits in integer milli-units, a classifier. Compiled tariffs are cached per document object, so rating
 * many meters on one stored tariff validates and compiles it once.
 */
import { TouClassifier } from './classify.js';
import { RatingError } from './errors.js';
import { Dec, toMilli } from './money.js';
import type { DayType, DemandTier, EnergyTier, EnergyTierUnit, TariffDocument } from './tariff.schema.js';
import { tariffSchema } from './tariff.schema.js';

/** A tier with its upper limit in milli-units (mWh for energy, mW for demand); null = open-ended. */
export interface CompiledTier {
  limit: bigint | null;
  /** rate + adj, per kWh or per kW */
  rate: Dec;
}

/** An energy tier: its limit as stated (`max`, in `unit`), its price and its export credit. */
export interface CompiledEnergyTier extends CompiledTier {
  /** `max` as a decimal in `unit`, null on the last tier */
  max: Dec | null;
  unit: EnergyTierUnit;
  /** export credit per kWh of this tier: the tier's own `sell`, else the period's; null: none */
  sell: Dec | null;
}

export interface CompiledEnergyPeriod {
  id: string;
  tiers: CompiledEnergyTier[];
  /** the period's sell (tier default) */
  sell: Dec | null;
  /** some tier states its own sell rate: export is credited per tier */
  sellPerTier: boolean;
}

export interface CompiledTariff {
  document: TariffDocument;
  classifier: TouClassifier;
  minorUnit: number;
  energyPeriods: CompiledEnergyPeriod[];
  /** Whose cumulative kWh the tier limits count: the whole window's (default) or each period's. */
  tierScope: 'window' | 'period';
  /** Some energy period has more than one tier (otherwise both scopes give per-period sums). */
  tiered: boolean;
  /** Some energy tier is in kWh/kW (its limit needs the window's billing demand). */
  demandSizedTiers: boolean;
  /** Some energy tier is in daily units. */
  dailyTiers: boolean;
  demandPeriods: { id: string; tiers: CompiledTier[] }[];
  coincidentPeriods: { id: string; tiers: CompiledTier[] }[];
  /** Reactive power charge per kVAR of the window's maximum reactive demand; null: none. */
  reactiveRate: Dec | null;
  /** Demand ratchet, when the tariff has one. */
  billingDemand: { percent: Dec; months: boolean[]; horizonMonths: number } | null;
  /** Free-text attributes, as notes for charges. */
  notes: string[];
  /** Flat demand charges, and for each season index the index of its charge (-1: none). */
  flatDemand: { id: string; tiers: CompiledTier[] }[];
  flatDemandOfSeason: number[];
  demandWindowMinutes: number | null;
  /** Sorted by start. */
  dynamicPrices: { start: number; end: number; price: Dec }[];
  fixedCharges: { name: string; amount: Dec; per: 'day' | 'month' }[];
  minimumCharge: { amount: Dec; per: 'day' | 'month' } | null;
  taxes: { name: string; rate: Dec }[];
}

const compiled = new WeakMap<TariffDocument, CompiledTariff>();

/** Validates (tariffSchema) and compiles a tariff document; throws RatingError 'invalid_tariff'. */
export function compileTariff(document: TariffDocument): CompiledTariff {
  let tariff = compiled.get(document);
  if (tariff) return tariff;
  const parsed = tariffSchema.safeParse(document);
  if (!parsed.success) {
    throw new RatingError(
      'invalid_tariff',
      `tariff ${String((document as { id?: unknown }).id)} is not a valid tariff document`,
      parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
    );
  }
  tariff = {
    document,
    classifier: new TouClassifier(document),
    minorUnit: document.currency.minorUnit,
    energyPeriods: (document.energy?.periods ?? []).map((p) => compileEnergyPeriod(p)),
    tierScope: document.energy?.tierScope ?? 'window',
    tiered: (document.energy?.periods ?? []).some((p) => p.tiers.length > 1),
    demandSizedTiers: (document.energy?.periods ?? []).some((p) => p.tiers.some((t) => t.unit?.startsWith('kWh/kW'))),
    dailyTiers: (document.energy?.periods ?? []).some((p) => p.tiers.some((t) => t.unit?.endsWith('daily'))),
    demandPeriods: (document.demand?.periods ?? []).map((p) => ({ id: p.id, tiers: compileTiers(p.tiers) })),
    coincidentPeriods: (document.demand?.coincident?.periods ?? []).map((p) => ({ id: p.id, tiers: compileTiers(p.tiers) })),
    reactiveRate: document.demand?.reactive ? new Dec(document.demand.reactive.rate) : null,
    billingDemand: document.billingDemand
      ? {
          percent: new Dec(document.billingDemand.lookbackPercent),
          months: Array.from({ length: 13 }, (_, m) => (document.billingDemand!.lookbackMonths ?? [m]).includes(m) && m > 0),
          horizonMonths: document.billingDemand.lookbackHorizonMonths,
        }
      : null,
    notes: notesOf(document),
    flatDemand: (document.demand?.flat ?? []).map((f) => ({ id: f.id, tiers: compileTiers(f.tiers) })),
    flatDemandOfSeason: document.seasons.map((season) =>
      (document.demand?.flat ?? []).findIndex((f) => f.seasons.includes(season.id)),
    ),
    demandWindowMinutes: document.demand?.windowMinutes ?? null,
    dynamicPrices: (document.dynamicPrices ?? [])
      .map((p) => ({ start: Date.parse(p.start), end: Date.parse(p.end), price: new Dec(p.price) }))
      .sort((a, b) => a.start - b.start),
    fixedCharges: (document.fixedCharges ?? []).map((c) => ({ name: c.name, amount: new Dec(c.amount), per: c.per })),
    minimumCharge: document.minimumCharge
      ? { amount: new Dec(document.minimumCharge.amount), per: document.minimumCharge.per }
      : null,
    taxes: (document.taxes ?? []).map((t) => ({ name: t.name, rate: new Dec(t.rate) })),
  };
  compiled.set(document, tariff);
  return tariff;
}

function compileEnergyPeriod(period: NonNullable<TariffDocument['energy']>['periods'][number]): CompiledEnergyPeriod {
  const sell = period.sell === undefined ? null : new Dec(period.sell);
  return {
    id: period.id,
    sell,
    sellPerTier: period.tiers.some((t) => t.sell !== undefined),
    tiers: period.tiers.map((tier: EnergyTier) => {
      const [{ limit, rate }] = compileTiers([tier]);
      return {
        limit, // in kWh; limits in other units are resolved per window (days, billing demand): see energy-tiers.ts
        rate,
        max: tier.max === undefined ? null : new Dec(tier.max),
        unit: tier.unit ?? 'kWh',
        sell: tier.sell !== undefined ? new Dec(tier.sell) : sell,
      };
    }),
  };
}

/** Free-text attributes as "energy: name: value" notes. */
function notesOf(document: TariffDocument): string[] {
  const attributes = document.attributes ?? {};
  return (['energy', 'demand', 'fixed'] as const).flatMap((kind) =>
    (attributes[kind] ?? []).map((a) => `${kind} attribute (informative, not rated): ${a.name}${a.value ? `: ${a.value}` : ''}`),
  );
}

function compileTiers(tiers: (EnergyTier | DemandTier)[]): CompiledTier[] {
  return tiers.map((tier) => ({
    limit: tier.max === undefined ? null : toMilli(new Dec(tier.max)),
    rate: new Dec(tier.rate).plus(tier.adj ?? 0),
  }));
}

/** Time-of-use classification of an instant, for aggregates and SQL cross-checks. */
export interface IntervalClassification {
  /** Season id. */
  season: string;
  /** The actual day type; a holiday without its own schedule is priced with the weekend schedule. */
  dayType: DayType;
  /** Energy period id, or null when the tariff has no energy schedule. */
  period: string | null;
  /** Demand period id, or null when the tariff has no time-of-use demand. */
  demandPeriod: string | null;
}

/**
 * Classifies an interval by the local wall-clock time of its start (`epochMs`, UTC) in the tariff's zone.
 * Throws RatingError 'invalid_tariff' for an invalid document.
 */
export function classifyInterval(document: TariffDocument, epochMs: number): IntervalClassification {
  const tariff = compileTariff(document);
  const instant = tariff.classifier.classify(epochMs);
  return {
    season: document.seasons[instant.season].id,
    dayType: instant.dayType,
    period: tariff.energyPeriods[instant.energyPeriod]?.id ?? null,
    demandPeriod: tariff.demandPeriods[instant.demandPeriod]?.id ?? null,
  };
}
