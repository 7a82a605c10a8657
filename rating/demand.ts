/**
 * Demand charges: the maximum demand (kW) in each time-of-use demand period and in each flat demand
 * charge's seasons over the billing window, split across the charge's tiers by their `max`.
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
import { price, splitTiers } from './lines.js';
import { MINUTE_MS } from './local-time.js';
import { formatDecimal, fromMilli } from './money.js';
import { allExact, type Mwh } from './mwh.js';

const MS_PER_HOUR = 3_600_000;

export function demandLines(piece: PieceContext, classes: InstantClass[]): PricedLine[] {
  const { tariff } = piece;
  if (tariff.demandPeriods.length === 0 && tariff.flatDemand.length === 0) return [];
  const { touMaximum, flatMaximum } = (piece.numeric && numberMaxima(piece, classes)) || bigintMaxima(piece, classes);
  return [
    ...tariff.demandPeriods.flatMap((period, p) =>
      tierLines(piece, touMaximum[p], period.tiers, { period: period.id }),
    ),
    ...tariff.flatDemand.flatMap((flat, f) =>
      tierLines(piece, flatMaximum[f], flat.tiers, { period: 'flat', flatDemandPeriod: flat.id }),
    ),
  ];
}

interface Maxima {
  /** mW per time-of-use demand period */
  touMaximum: bigint[];
  /** mW per flat demand charge */
  flatMaximum: bigint[];
}

/** The maxima with number arithmetic; null when one could have been rounded (see mwh.ts). */
function numberMaxima(piece: PieceContext, classes: InstantClass[]): Maxima | null {
  const { tariff } = piece;
  const touMaximum = tariff.demandPeriods.map(() => 0);
  const flatMaximum = tariff.flatDemand.map(() => 0);
  forEachDemand(piece, classes, 0, (mwh) => mwh as number, (a, b) => a + b, (mwh, perHour) => mwh * perHour, (milliwatts, instant) => {
    const period = instant.demandPeriod;
    if (period >= 0 && milliwatts > touMaximum[period]) touMaximum[period] = milliwatts;
    const flat = tariff.flatDemandOfSeason[instant.season];
    if (flat >= 0 && milliwatts > flatMaximum[flat]) flatMaximum[flat] = milliwatts;
  });
  // A demand value above 2^53 - 1 (rounded, or exact) that was never recorded cannot matter; one that was
  // shows in its maximum, and then the bigint path decides.
  if (!allExact(touMaximum) || !allExact(flatMaximum)) return null;
  return { touMaximum: touMaximum.map((mw) => BigInt(mw)), flatMaximum: flatMaximum.map((mw) => BigInt(mw)) };
}

/** The maxima with bigint arithmetic (the reference). */
function bigintMaxima(piece: PieceContext, classes: InstantClass[]): Maxima {
  const { tariff } = piece;
  const touMaximum = tariff.demandPeriods.map(() => 0n);
  const flatMaximum = tariff.flatDemand.map(() => 0n);
  forEachDemand(piece, classes, 0n, (mwh) => BigInt(mwh), (a, b) => a + b, (mwh, perHour) => mwh * BigInt(perHour), (milliwatts, instant) => {
    const period = instant.demandPeriod;
    if (period >= 0 && milliwatts > touMaximum[period]) touMaximum[period] = milliwatts;
    const flat = tariff.flatDemandOfSeason[instant.season];
    if (flat >= 0 && milliwatts > flatMaximum[flat]) flatMaximum[flat] = milliwatts;
  });
  return { touMaximum, flatMaximum };
}

/**
 * Calls `record` with each demand value (mW) of the piece and the classification of its start, in the
 * arithmetic given (`of` reads an interval's import, `plus` and `times` add and scale).
 */
function forEachDemand<T>(
  piece: PieceContext,
  classes: InstantClass[],
  zero: T,
  of: (mwh: Mwh) => T,
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
    for (let i = 0; i < intervals.length; i++) record(times(of(intervals[i].importMwh), perHour), classes[i]);
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
    blockMwh = plus(blockMwh, of(interval.importMwh));
  }
  record(times(blockMwh, perHour), tariff.classifier.classify(blockStart));
}

function tierLines(
  piece: PieceContext,
  maximum: bigint,
  tiers: CompiledTier[],
  label: Pick<DemandLine, 'period' | 'flatDemandPeriod'>,
): PricedLine[] {
  const prorated = !piece.share.eq(1);
  return splitTiers(maximum, tiers.map((t) => t.limit)).flatMap((milliwatts, t) => {
    if (milliwatts === 0n) return [];
    const measured = fromMilli(milliwatts);
    const quantity = prorated ? measured.mul(piece.share) : measured;
    const { amount, text } = price(quantity, tiers[t].rate, piece.tariff.minorUnit);
    const line: DemandLine = {
      type: 'demand',
      ...label,
      tier: t + 1,
      quantity: formatDecimal(quantity),
      unit: 'kW',
      rate: formatDecimal(tiers[t].rate),
      amount: text,
      tariffId: piece.tariffId,
      ...(prorated ? { measuredKw: formatDecimal(measured), prorationFactor: formatDecimal(piece.share) } : {}),
    };
    return [{ line, amount }];
  });
}
