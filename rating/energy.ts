/**
 * Energy charges on gross import (time-of-use periods with tiers, and dynamic prices) and export credits.
 *
 * Tiers: a tier `max` is cumulative kWh of its period within the billing window, so the kWh of a period
 * fill tier 1 first, then tier 2, in time order; with fixed prices per tier the split depends only on the
 * period's total. When a tariff document applies to part of the billing cycle only, its tier limits are
 * multiplied by its share of the cycle (`PieceContext.share`) and rounded half-up to the mWh.
 */
import type { InstantClass } from './classify.js';
import { RatingError } from './errors.js';
import type { EnergyLine, ExportCreditLine, PieceContext, PricedLine } from './lines.js';
import { price, splitTiers } from './lines.js';
import { type Dec, formatDecimal, fromMilli, toMilli } from './money.js';
import { allExact, isZeroMwh } from './mwh.js';

/** One energy line per (period, tier) with import, periods in tariff order. */
export function energyLines(piece: PieceContext, classes: InstantClass[]): PricedLine[] {
  const { tariff } = piece;
  const imported = sumByPeriod(piece, classes, 'importMwh');
  return tariff.energyPeriods.flatMap((period, p) => {
    const limits = period.tiers.map((t) => (t.limit === null ? null : prorated(t.limit, piece.share)));
    return splitTiers(imported[p], limits).flatMap((mwh, t) => {
      if (mwh === 0n) return [];
      const quantity = fromMilli(mwh);
      const rate = period.tiers[t].rate;
      const { amount, text } = price(quantity, rate, tariff.minorUnit);
      const line: EnergyLine = {
        type: 'energy',
        period: period.id,
        tier: t + 1,
        quantity: formatDecimal(quantity),
        unit: 'kWh',
        rate: formatDecimal(rate),
        amount: text,
        tariffId: piece.tariffId,
      };
      return [{ line, amount }];
    });
  });
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

/** Export credited at each period's `sell` rate; a period without one credits nothing. */
export function exportCreditLines(piece: PieceContext, classes: InstantClass[]): PricedLine[] {
  const { tariff } = piece;
  const exported = sumByPeriod(piece, classes, 'exportMwh');
  return tariff.energyPeriods.flatMap((period, p) => {
    if (period.sell === null || exported[p] === 0n) return [];
    const quantity = fromMilli(exported[p]);
    const { amount, text } = price(quantity, period.sell, tariff.minorUnit, true);
    const line: ExportCreditLine = {
      type: 'export_credit',
      period: period.id,
      quantity: formatDecimal(quantity),
      unit: 'kWh',
      rate: formatDecimal(period.sell),
      amount: text,
      tariffId: piece.tariffId,
    };
    return [{ line, amount }];
  });
}

/** A tier limit (mWh) times the document's share of the cycle, rounded half-up to the mWh. */
function prorated(limit: bigint, share: Dec): bigint {
  return share.eq(1) ? limit : toMilli(fromMilli(limit).mul(share));
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
