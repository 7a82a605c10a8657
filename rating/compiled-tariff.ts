/**
 * A tariff document validated once and turned into what the rating loop needs: decimal prices, tier
 * limits in integer milli-units, a classifier. Compiled tariffs are cached per document object, so rating
 * many meters on one stored tariff validates and compiles it once.
 */
import { TouClassifier } from './classify.js';
import { RatingError } from './errors.js';
import { Dec, toMilli } from './money.js';
import type { DayType, DemandTier, EnergyTier, TariffDocument } from './tariff.schema.js';
import { tariffSchema } from './tariff.schema.js';

/** A tier with its upper limit in milli-units (mWh for energy, mW for demand); null = open-ended. */
export interface CompiledTier {
  limit: bigint | null;
  /** rate + adj, per kWh or per kW */
  rate: Dec;
}

export interface CompiledTariff {
  document: TariffDocument;
  classifier: TouClassifier;
  minorUnit: number;
  energyPeriods: { id: string; tiers: CompiledTier[]; sell: Dec | null }[];
  demandPeriods: { id: string; tiers: CompiledTier[] }[];
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
    energyPeriods: (document.energy?.periods ?? []).map((p) => ({
      id: p.id,
      tiers: compileTiers(p.tiers),
      sell: p.sell === undefined ? null : new Dec(p.sell),
    })),
    demandPeriods: (document.demand?.periods ?? []).map((p) => ({ id: p.id, tiers: compileTiers(p.tiers) })),
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
