/**
 * Demand charges: the maximum demand (kW) in each time-of-use demand period, in each flat demand charge's
 * seasons and in each coincident demand period over the billing window, split across the charge's tiers by
 * their `max`; a flat charge bills the larger of its maximum and the ratchet (rate.ts). The highest demand
 * of the window (`peak`) is the billing demand that sizes kWh/kW tiers.
 *
 * Demand is computed exactly in integer milliwatts from interval energy:
 * - Without a demand window, or when the meter interval is at least the window: the demand of an
 *   interval = importWh / 1000 / (intervalSeconds / 3600) kW.
 * - When the meter interval is shorter than the window (e.g. 5-minute data, 15-minute window): block
 *   demand, the average over fixed windows aligned to the local clock (:00, :15, :30, :45 for 15 minutes;
 *   whole local hours for 60, so :30 UTC in Asia/Kolkata): energy of the window's intervals / window
 *   length. A missing interval contributes no energy. A window takes the period and season of its start.
 *
 * When a tariff document applies to part of the billing cycle only, each demand line's quantity is the
 * measured kW times its share of the cycle (`prorationFactor`), so amount = quantity x rate still holds.
 */
import type { InstantClass } from './classify.js';
import type { CompiledTier } from './compiled-tariff.js';
import type { DemandLine, PieceContext, PricedLine } from './lines.js';
import { price } from './lines.js';
import { isoUtc, MINUTE_MS } from './local-time.js';
import { Dec, formatDecimal, fromMilli, ZERO } from './money.js';
import type { WindowInterval } from './intervals.js';
import { allExact } from './mwh.js';

const MS_PER_HOUR = 3_600_000;

/** The demand a piece measured: maxima per charge, and the peak over every interval (mW). */
export interface Maxima {
  /** mW per time-of-use demand period */
  touMaximum: bigint[];
  /** mW per flat demand charge */
  flatMaximum: bigint[];
  /** mW per coincident demand period */
  coincidentMaximum: bigint[];
  /** mW: the highest demand of the piece, whatever its period or season */
  peak: bigint;
}

/** A ratchet that binds: the billing demand a preceding cycle's peak sets. */
export interface Ratchet {
  kw: Dec;
  from: number;
  to: number;
  peakKw: Dec;
  percent: Dec;
}

/** Whether the piece needs its demand measured (demand charges, kWh/kW tiers, a ratchet). */
export function needsDemand(piece: PieceContext): boolean {
  const t = piece.tariff;
  return t.demandPeriods.length > 0 || t.flatDemand.length > 0 || t.coincidentPeriods.length > 0 || t.demandSizedTiers || t.billingDemand !== null;
}

/** The maxima of the piece's demand (exact, see mwh.ts). */
export function measureDemand(piece: PieceContext, classes: InstantClass[]): Maxima {
  return (piece.numeric && numberMaxima(piece, classes)) || bigintMaxima(piece, classes);
}

/**
 * Demand lines: TOU periods, flat charges (billed at the larger of their maximum and the ratchet, when
 * one binds), coincident periods.
 */
export function demandLines(piece: PieceContext, maxima: Maxima, ratchet: Ratchet | null): PricedLine[] {
  const { tariff } = piece;
  return [
    ...tariff.demandPeriods.flatMap((period, p) => tierLines(piece, fromMilli(maxima.touMaximum[p]), period.tiers, { period: period.id }, null)),
    ...tariff.flatDemand.flatMap((flat, f) =>
      tierLines(piece, fromMilli(maxima.flatMaximum[f]), flat.tiers, { period: 'flat', flatDemandPeriod: flat.id }, ratchet),
    ),
    ...tariff.coincidentPeriods.flatMap((period, p) =>
      tierLines(piece, fromMilli(maxima.coincidentMaximum[p]), period.tiers, { period: 'coincident', coincidentPeriod: period.id }, null),
    ),
  ];
}

/** The maxima with number arithmetic; null when one could have been rounded (see mwh.ts). */
function numberMaxima(piece: PieceContext, classes: InstantClass[]): Maxima | null {
  const { tariff } = piece;
  const touMaximum = tariff.demandPeriods.map(() => 0);
  const flatMaximum = tariff.flatDemand.map(() => 0);
  const coincidentMaximum = tariff.coincidentPeriods.map(() => 0);
  const peak = [0];
  forEachDemand(piece, classes, 0, (interval) => interval.importMwh as number, (a, b) => a + b, (mwh, perHour) => mwh * perHour, (milliwatts, instant) => {
    const period = instant.demandPeriod;
    if (period >= 0 && milliwatts > touMaximum[period]) touMaximum[period] = milliwatts;
    const flat = tariff.flatDemandOfSeason[instant.season];
    if (flat >= 0 && milliwatts > flatMaximum[flat]) flatMaximum[flat] = milliwatts;
    const coincident = instant.coincidentPeriod;
    if (coincident >= 0 && milliwatts > coincidentMaximum[coincident]) coincidentMaximum[coincident] = milliwatts;
    if (milliwatts > peak[0]) peak[0] = milliwatts;
  });
  // A demand value above 2^53 - 1 (rounded, or exact) that was never recorded cannot matter; one that was
  // shows in the peak, and then the bigint path decides.
  if (!allExact(peak)) return null;
  const big = (values: number[]) => values.map((mw) => BigInt(mw));
  return { touMaximum: big(touMaximum), flatMaximum: big(flatMaximum), coincidentMaximum: big(coincidentMaximum), peak: BigInt(peak[0]) };
}

/** The maxima with bigint arithmetic (the reference). */
function bigintMaxima(piece: PieceContext, classes: InstantClass[]): Maxima {
  const { tariff } = piece;
  const touMaximum = tariff.demandPeriods.map(() => 0n);
  const flatMaximum = tariff.flatDemand.map(() => 0n);
  const coincidentMaximum = tariff.coincidentPeriods.map(() => 0n);
  let peak = 0n;
  forEachDemand(piece, classes, 0n, (interval) => BigInt(interval.importMwh), (a, b) => a + b, (mwh, perHour) => mwh * BigInt(perHour), (milliwatts, instant) => {
    const period = instant.demandPeriod;
    if (period >= 0 && milliwatts > touMaximum[period]) touMaximum[period] = milliwatts;
    const flat = tariff.flatDemandOfSeason[instant.season];
    if (flat >= 0 && milliwatts > flatMaximum[flat]) flatMaximum[flat] = milliwatts;
    const coincident = instant.coincidentPeriod;
    if (coincident >= 0 && milliwatts > coincidentMaximum[coincident]) coincidentMaximum[coincident] = milliwatts;
    if (milliwatts > peak) peak = milliwatts;
  });
  return { touMaximum, flatMaximum, coincidentMaximum, peak };
}

/**
 * Calls `record` with each demand value (mW, or mvar for reactive energy) of the piece and the
 * classification of its start, in the arithmetic given (`of` reads an interval's energy: import for
 * demand, reactive import for reactive demand; `plus` and `times` add and scale).
 */
export function forEachDemand<T>(
  piece: PieceContext,
  classes: InstantClass[],
  zero: T,
  of: (interval: WindowInterval) => T,
  plus: (a: T, b: T) => T,
  times: (mwh: T, perHour: number) => T,
  record: (milliwatts: T, instant: InstantClass) => void,
): void {
  const { intervals, tariff } = piece;
  if (intervals.length === 0) return;
  const intervalMs = intervals[0].seconds * 1000;
  const windowMs = (tariff.demandWindowMinutes ?? 0) * MINUTE_MS;
  if (windowMs <= intervalMs) {
    const perHour = MS_PER_HOUR / intervalMs;
    for (let i = 0; i < intervals.length; i++) record(times(of(intervals[i]), perHour), classes[i]);
    return;
  }
  const perHour = MS_PER_HOUR / windowMs;
  const clock = tariff.classifier.clock;
  let blockStart = Number.NaN;
  let blockMwh = zero;
  for (const interval of intervals) {
    const wall = interval.start + clock.offsetAt(interval.start);
    const start = interval.start - (((wall % windowMs) + windowMs) % windowMs);
    if (start !== blockStart) {
      if (!Number.isNaN(blockStart)) record(times(blockMwh, perHour), tariff.classifier.classify(blockStart));
      blockStart = start;
      blockMwh = zero;
    }
    blockMwh = plus(blockMwh, of(interval));
  }
  record(times(blockMwh, perHour), tariff.classifier.classify(blockStart));
}

function tierLines(
  piece: PieceContext,
  measured: Dec,
  tiers: CompiledTier[],
  label: Pick<DemandLine, 'period' | 'flatDemandPeriod' | 'coincidentPeriod'>,
  ratchet: Ratchet | null,
): PricedLine[] {
  const prorated = !piece.share.eq(1);
  const ratcheted = ratchet !== null && ratchet.kw.gt(measured);
  const billed = ratcheted ? ratchet.kw : measured;
  let lower = ZERO;
  return tiers.flatMap((tier, t) => {
    const limit = tier.limit === null ? null : fromMilli(tier.limit);
    const upper = limit === null || limit.gt(billed) ? billed : limit;
    if (!upper.gt(lower)) return [];
    const inTier = upper.minus(lower);
    const measuredInTier = Dec.max(Dec.min(measured, upper).minus(lower), ZERO);
    lower = upper;
    const quantity = prorated ? inTier.mul(piece.share) : inTier;
    const { amount, text } = price(quantity, tier.rate, piece.tariff.minorUnit);
    const line: DemandLine = {
      type: 'demand',
      ...label,
      tier: t + 1,
      quantity: formatDecimal(quantity),
      unit: 'kW',
      rate: formatDecimal(tier.rate),
      amount: text,
      tariffId: piece.tariffId,
      ...(prorated || ratcheted ? { measuredKw: formatDecimal(measuredInTier) } : {}),
      ...(prorated ? { prorationFactor: formatDecimal(piece.share) } : {}),
      ...(ratcheted
        ? {
            billingDemandSetBy: {
              from: isoUtc(ratchet.from),
              to: isoUtc(ratchet.to),
              peakKw: formatDecimal(ratchet.peakKw),
              lookbackPercent: formatDecimal(ratchet.percent),
            },
          }
        : {}),
    };
    return [{ line, amount }];
  });
}
