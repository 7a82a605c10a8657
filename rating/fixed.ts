/**
 * Fixed charges, the minimum charge, and the day counts and proration factors behind them.
 *
 * Days are local calendar days in the tariff's zone, and a day belongs to the part of a span that holds
 * its first instant (midnight): a 23- or 25-hour DST day is one day, and splitting a window anywhere never
 * counts a day twice. Proration factors are ratios of such days rounded half-up to 6 decimals; a part
 * that covers the whole reference has exactly 1.
 */
import type { FixedLine, MinimumLine, PieceContext, PricedLine } from './lines.js';
import { price } from './lines.js';
import type { TimeSpan } from './intervals.js';
import { dayNumberOf, daysInMonth, type ZoneClock } from './local-time.js';
import { Dec, formatDecimal, formatMoney, roundMoney, ZERO } from './money.js';

const FACTOR_DECIMALS = 6;

/** `$/day` x days, `$/month` x months of the piece; a charge with quantity 0 gives no line. */
export function fixedChargeLines(piece: PieceContext): PricedLine[] {
  return piece.tariff.fixedCharges.flatMap((charge) => {
    const quantity = charge.per === 'day' ? new Dec(piece.days) : piece.months;
    if (quantity.isZero()) return [];
    const { amount, text } = price(quantity, charge.amount, piece.tariff.minorUnit);
    const line: FixedLine = {
      type: 'fixed',
      name: charge.name,
      quantity: formatDecimal(quantity),
      unit: charge.per,
      rate: formatDecimal(charge.amount),
      amount: text,
      tariffId: piece.tariffId,
    };
    return [{ line, amount }];
  });
}

/** The minimum line when the piece's subtotal is below its (prorated, rounded) minimum charge. */
export function minimumChargeLine(piece: PieceContext, subtotal: Dec): PricedLine[] {
  const minimumCharge = piece.tariff.minimumCharge;
  if (!minimumCharge) return [];
  const minorUnit = piece.tariff.minorUnit;
  const quantity = minimumCharge.per === 'day' ? new Dec(piece.days) : piece.months;
  const minimum = roundMoney(quantity.mul(minimumCharge.amount), minorUnit);
  if (subtotal.gte(minimum)) return [];
  const amount = minimum.minus(subtotal);
  const line: MinimumLine = {
    type: 'minimum',
    minimum: formatMoney(minimum, minorUnit),
    amount: formatMoney(amount, minorUnit),
    tariffId: piece.tariffId,
  };
  return [{ line, amount }];
}

/** days / ofDays rounded half-up to 6 decimals; exactly 1 when equal (or when `ofDays` is 0). */
export function prorationFactor(days: number, ofDays: number): Dec {
  if (days === ofDays || ofDays === 0) return new Dec(1);
  return new Dec(days).div(ofDays).toDecimalPlaces(FACTOR_DECIMALS, Dec.ROUND_HALF_UP);
}

/**
 * Share of the reference span (billing cycle, or window) during which a tariff document is in effect:
 * 1 when in effect throughout, else days in effect / days of the reference.
 */
export function shareOfReference(clock: ZoneClock, inEffect: TimeSpan, reference: TimeSpan): Dec {
  if (inEffect.from <= reference.from && inEffect.to >= reference.to) return new Dec(1);
  const from = Math.max(inEffect.from, reference.from);
  const to = Math.min(inEffect.to, reference.to);
  return prorationFactor(clock.daysStartingIn(from, to), clock.daysStartingIn(reference.from, reference.to));
}

/**
 * Months of a piece for `$/month` charges: its days / the billing cycle's days when a cycle is given;
 * otherwise, per local calendar month it touches, its days in that month / the month's days, summed
 * (rounded to 6 decimals unless whole).
 */
export function monthsOf(clock: ZoneClock, piece: TimeSpan, billingCycle: TimeSpan | undefined): Dec {
  if (billingCycle) {
    const cycleDays = clock.daysStartingIn(billingCycle.from, billingCycle.to);
    return prorationFactor(clock.daysStartingIn(piece.from, piece.to), cycleDays);
  }
  let months = ZERO;
  let { year, month } = clock.localTime(piece.from);
  for (let monthStart = clock.startOfDay(dayNumberOf(year, month, 1)); monthStart < piece.to; ) {
    const nextMonthStart = clock.startOfDay(dayNumberOf(year, month + 1, 1));
    const days = clock.daysStartingIn(Math.max(piece.from, monthStart), Math.min(piece.to, nextMonthStart));
    months = months.plus(new Dec(days).div(daysInMonth(year, month)));
    monthStart = nextMonthStart;
    [year, month] = month === 12 ? [year + 1, 1] : [year, month + 1];
  }
  return months.isInteger() ? months : months.toDecimalPlaces(FACTOR_DECIMALS, Dec.ROUND_HALF_UP);
}
