/**
 * Energy charges on gross import (time-of-use periods with tiers, and dynamic prices) and export credits.
 *
 * Tiers (see energy-tiers.ts): a tier `max` counts the cumulative import of the whole window across all
 * periods (tier scope "window", the default) or of its own period ("period"), filled in time order, in the
 * tier's unit. When a tariff document applies to part of the billing cycle only, its kWh limits are
 * multiplied by its share of the cycle (`PieceContext.share`) and rounded half-up to the mWh.
 */
import type { InstantClass } from './classify.js';
import { RatingError } from './errors.js';
import type { EnergyLine, ExportCreditLine, PieceContext, PricedLine } from './lines.js';
import { price } from './lines.js';
import { type Dec, formatDecimal, fromMilli } from './money.js';
import { fillTiers, resolveTiers } from './energy-tiers.js';
import { allExact, isZeroMwh } from './mwh.js';

/** One energy line per (period, tier) with import, periods in tariff order, tiers in order. */
export function energyLines(piece: PieceContext, classes: InstantClass[]): PricedLine[] {
  const { tariff } = piece;
  if (tariff.energyPeriods.length === 0) return [];
  const quantities = tierQuantities(piece, classes, 'importMwh');
  return tariff.energyPeriods.flatMap((period, p) =>
    quantities[p].flatMap(({ index, mwh }) => {
      if (mwh === 0n) return [];
      const quantity = fromMilli(mwh);
      const rate = period.tiers[index].rate;
      const { amount, text } = price(quantity, rate, tariff.minorUnit);
      const line: EnergyLine = {
        type: 'energy',
        period: period.id,
        tier: index + 1,
        quantity: formatDecimal(quantity),
        unit: 'kWh',
        rate: formatDecimal(rate),
        amount: text,
        tariffId: piece.tariffId,
      };
      return [{ line, amount }];
    }),
  );
}

/**
 * mWh of `field` per period and tier (tier = index into the period's tiers). Untiered tariffs (one tier
 * per period, kWh) need only the sum per period, whatever the scope.
 */
function tierQuantities(piece: PieceContext, classes: InstantClass[], field: 'importMwh' | 'exportMwh'): { index: number; mwh: bigint }[][] {
  const { tariff } = piece;
  if (!tariff.tiered && !tariff.demandSizedTiers && !tariff.dailyTiers) {
    return sumByPeriod(piece, classes, field).map((mwh) => [{ index: 0, mwh }]);
  }
  const context = { share: piece.share, days: piece.days, billingDemandKw: piece.billingDemandKw };
  const tiers = tariff.energyPeriods.map((period) => resolveTiers(period, context));
  const sums = fillTiers(piece.intervals, classes, tiers, tariff.tierScope, field, piece.numeric);
  return tiers.map((periodTiers, p) => periodTiers.map((tier, t) => ({ index: tier.index, mwh: sums[p][t] })));
}

/**
 * Energy at dynamic prices: one line per distinct price (in order of first use), quantity = the kWh
 * imported in intervals at that price. Every interval with import must lie within one price slot;
 * otherwise RatingError 'missing_dynamic_price' or 'interval_spans_price_slots' lists each such interval.
 */
export function dynamicEnergyLines(piece: PieceContext): PricedLine[] {
  const slots = piece.tariff.dynamicPrices;
  if (slots.length === 0) return [];
  const byPrice = new Map<string, { rate: Dec; mwh: bigint }>();
  const missing: string[] = [];
  const spanning: string[] = [];
  let s = 0;
  for (const interval of piece.intervals) {
    if (isZeroMwh(interval.importMwh)) continue;
    while (s < slots.length && slots[s].end <= interval.start) s++;
    const slot = slots[s];
    if (!slot || slot.start > interval.start) missing.push(new Date(interval.start).toISOString());
    else if (interval.end > slot.end) spanning.push(new Date(interval.start).toISOString());
    else {
      const key = formatDecimal(slot.price);
      const sum = byPrice.get(key) ?? { rate: slot.price, mwh: 0n };
      sum.mwh += BigInt(interval.importMwh);
      byPrice.set(key, sum);
    }
  }
  if (missing.length)
    throw new RatingError('missing_dynamic_price', `no dynamic price for ${missing.length} intervals`, missing);
  if (spanning.length)
    throw new RatingError('interval_spans_price_slots', `${spanning.length} intervals span two price slots`, spanning);
  return [...byPrice.entries()].map(([rateText, { rate, mwh }]) => {
    const quantity = fromMilli(mwh);
    const { amount, text } = price(quantity, rate, piece.tariff.minorUnit);
    const line: EnergyLine = {
      type: 'energy',
      period: 'dynamic',
      tier: 1,
      quantity: formatDecimal(quantity),
      unit: 'kWh',
      rate: rateText,
      amount: text,
      tariffId: piece.tariffId,
    };
    return { line, amount };
  });
}

/**
 * Export credited at each period's `sell` rate; a period without one credits nothing. A period whose tiers
 * state their own sell rates credits per tier: exports fill the tiers as imports do (same limits, same
 * scope, cumulative export), each tier at its sell rate, one line per tier.
 */
export function exportCreditLines(piece: PieceContext, classes: InstantClass[]): PricedLine[] {
  const { tariff } = piece;
  if (tariff.energyPeriods.length === 0) return [];
  const perTier = tariff.energyPeriods.some((p) => p.sellPerTier);
  const exported = perTier
    ? tierQuantities(piece, classes, 'exportMwh')
    : sumByPeriod(piece, classes, 'exportMwh').map((mwh) => [{ index: 0, mwh }]);
  return tariff.energyPeriods.flatMap((period, p) =>
    exported[p].flatMap(({ index, mwh }) => {
      const sell = period.sellPerTier ? period.tiers[index].sell : period.sell;
      if (sell === null || mwh === 0n) return [];
      const quantity = fromMilli(mwh);
      const { amount, text } = price(quantity, sell, tariff.minorUnit, true);
      const line: ExportCreditLine = {
        type: 'export_credit',
        period: period.id,
        ...(period.sellPerTier ? { tier: index + 1 } : {}),
        quantity: formatDecimal(quantity),
        unit: 'kWh',
        rate: formatDecimal(sell),
        amount: text,
        tariffId: piece.tariffId,
      };
      return [{ line, amount }];
    }),
  );
}

/** mWh per energy period, exact (numbers while provably exact, else bigints: see mwh.ts). */
function sumByPeriod(piece: PieceContext, classes: InstantClass[], field: 'importMwh' | 'exportMwh'): bigint[] {
  const periods = piece.tariff.energyPeriods.length;
  if (periods === 0) return [];
  const { intervals } = piece;
  if (piece.numeric) {
    const sums = new Float64Array(periods); // no number boxed per addition
    let i = 0;
    for (; i < intervals.length; i++) {
      const p = classes[i].energyPeriod;
      if (!(p >= 0 && p < periods)) break; // cannot happen with a valid schedule; the bigint path below reports it as it always did
      sums[p] += intervals[i][field] as number;
    }
    if (i === intervals.length && allExact(sums)) return Array.from(sums, (mwh) => BigInt(mwh));
  }
  const sums = piece.tariff.energyPeriods.map(() => 0n);
  for (let i = 0; i < intervals.length; i++) sums[classes[i].energyPeriod] += BigInt(intervals[i][field]);
  return sums;
}
