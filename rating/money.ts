/**
 * Exact decimal arithmetic for money and energy, and the ISO 4217 minor units that fix how money rounds.
 *
 * Every amount the rating core produces goes through {@link roundMoney}: half-up, i.e. a tie rounds away
 * from zero (2.345 -> 2.35, -2.345 -> -2.35), to the currency's minor unit. Energy is carried as integer
 * milliwatt-hours (bigint) and only becomes a decimal kWh at the edge, so sums never drift.
 */
import Decimal from 'decimal.js';

/**
 * The decimal type of the rating core: 50 significant digits (a quantity of 15 digits times a rate of 15
 * digits stays exact) and half-up rounding. Plain notation in `toString` for any magnitude we handle.
 */
export const Dec = Decimal.clone({
  precision: 50,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -60,
  toExpPos: 60,
});
export type Dec = Decimal;

export const ZERO = new Dec(0);
const MILLI_PER_KILO = new Dec(1_000_000);

/**
 * ISO 4217 currencies whose minor unit is not 2 digits. Every other active code has 2. Funds and
 * precious metals (XAU, XDR, ...) have no minor unit and are refused by {@link iso4217MinorUnit}.
 */
const MINOR_UNIT_EXCEPTIONS: Readonly<Record<string, number>> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0,
  VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
};
const NO_MINOR_UNIT = new Set([
  'XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XPD', 'XPT', 'XSU', 'XTS', 'XUA', 'XXX',
]);
const KNOWN_CURRENCIES = new Set([...Intl.supportedValuesOf('currency'), ...Object.keys(MINOR_UNIT_EXCEPTIONS)]);

/** Minor unit digits of an ISO 4217 currency code (USD 2, JPY 0, KWD 3), or undefined when not a currency. */
export function iso4217MinorUnit(code: string): number | undefined {
  if (!KNOWN_CURRENCIES.has(code) || NO_MINOR_UNIT.has(code)) return undefined;
  return MINOR_UNIT_EXCEPTIONS[code] ?? 2;
}

/** Rounds half-up (ties away from zero) to `minorUnit` decimal places. */
export function roundMoney(value: Dec, minorUnit: number): Dec {
  return value.toDecimalPlaces(minorUnit, Dec.ROUND_HALF_UP);
}

/** Money as the contract writes it: exactly `minorUnit` decimals ("32.53", "-0.82", "1234" for JPY; never "-0.00"). */
export function formatMoney(value: Dec, minorUnit: number): string {
  return value.toFixed(minorUnit);
}

/** A quantity or rate as an exact decimal string without trailing zeros ("412.337", "0.5"). */
export function formatDecimal(value: Dec): string {
  return value.toFixed();
}

/** Integer milli-units -> exact kilo-units: mWh -> kWh, mW -> kW. */
export function fromMilli(milli: bigint): Dec {
  return new Dec(milli.toString()).div(MILLI_PER_KILO);
}

/** Kilo-units -> integer milli-units (kWh -> mWh, kW -> mW), rounding half-up below a milli-unit. */
export function toMilli(kilo: Dec): bigint {
  return BigInt(kilo.mul(MILLI_PER_KILO).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toFixed());
}
